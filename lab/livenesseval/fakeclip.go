package livenesseval

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/lab/fakeclip"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media"
)

// MakeFakeClip (`trustid-lab make-fake-clip`) builds the fake camera/microphone feeds for the browser
// tests (lab/fakeclip) and, with -check, runs each through the real
// liveness verifier (face engine, speech recogniser, lip sync) as WebM, the
// way a browser would upload it, and prints the decisions as JSON.
func MakeFakeClip(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("make-fake-clip", flag.ContinueOnError)
	var (
		data   = fs.String("testdata", os.Getenv("TRUSTID_TESTDATA"), "shared test data directory")
		grid   = fs.String("grid", "sbwe5n.mpg", "GRID clip under talking/grid")
		digits = fs.String("digits", "4729", "digits of the genuine clip (the fixed challenge)")
		other  = fs.String("other", "8153", "digits of the mismatched clip")
		out    = fs.String("out", "fakeclip", "output directory")
		env    = fs.Float64("envelope", 0.7, "weight of the GRID 1-3 kHz band contour imposed on the digit speech (0..1)")
		check  = fs.Bool("check", false, "run the clips through the liveness verifier and print JSON")
		models = fs.String("models", os.Getenv("TRUSTID_MODELS"), "model directory (for -check)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := fakeclip.Build(ctx, fakeclip.Options{Grid: filepath.Join(*data, "talking", "grid", *grid), Digits: *digits, Other: *other, Dir: *out, EnvelopeWeight: *env})
	if err != nil {
		return err
	}
	rep := map[string]any{"clips": c, "command": "trustid-lab make-fake-clip " + fmt.Sprint(args)}
	if *check {
		res, err := checkFakeClips(ctx, c, *models, *digits, *out, filepath.Join(*data, "talking", "grid", *grid))
		if err != nil {
			return err
		}
		rep["verifier"] = res
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

type fakeClipResult struct {
	Clip    string                 `json:"clip"`
	Pass    bool                   `json:"pass"`
	Reasons []liveness.Reason      `json:"reasons"`
	Checks  []liveness.CheckResult `json:"checks"`
}

func checkFakeClips(ctx context.Context, c *fakeclip.Clips, models, digits, dir, grid string) ([]fakeClipResult, error) {
	eng, err := face.New(face.Config{ModelDir: models, Workers: 2})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	faces := facelogin.Faces{Engine: eng}
	photo, err := os.ReadFile(c.Photo)
	if err != nil {
		return nil, err
	}
	img, err := media.DecodeJPEG(photo)
	if err != nil {
		return nil, err
	}
	ref, err := faces.Analyze(ctx, img, liveness.FaceOptions{Embedding: true})
	if err != nil {
		return nil, fmt.Errorf("register photo: %w", err)
	}
	sp, err := lvSpeech(models)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	copy(secret, "trustid make-fake-clip check key")
	mgr, err := challenge.New(challenge.Config{Store: memory.New(memory.Options{}), Secret: secret, FixedDigits: digits,
		SubjectIssueLimit: 1 << 20, AddressIssueLimit: 1 << 20, MaxFailures: 1 << 20,
		SubjectMaxFailures: 1 << 20, AddressMaxFailures: 1 << 20})
	if err != nil {
		return nil, err
	}
	mouths, err := lvMouths(models)
	if err != nil {
		return nil, err
	}
	voice, voiceThr, err := lvVoiceCheck(models)
	if err != nil {
		return nil, err
	}
	dec := media.NewDecoder()
	dec.Timeout = 2 * time.Minute
	v, err := liveness.New(liveness.Config{Challenges: mgr, Faces: faces, Speech: sp, Mouths: mouths,
		Voice: voice, VoiceThreshold: voiceThr,
		References: facelogin.MemoryRefs{Refs: map[string][]float32{"subject": ref.Embedding}, Threshold: 0.34}, Video: dec})
	if err != nil {
		return nil, err
	}
	var out []fakeClipResult
	// The GRID clip itself comes first as the reference point: its lips
	// and voice are genuinely in sync (its speech is not the challenge).
	for _, k := range []struct{ name, y4m, wav string }{
		{"grid_original", "", ""}, {"genuine", c.GenuineY4M, c.GenuineWAV}, {"still", c.StillY4M, c.StillWAV}, {"mismatch", c.MismatchY4M, c.MismatchWAV},
	} {
		webm := grid
		if k.y4m != "" {
			webm = filepath.Join(dir, k.name+".webm")
			if err := fakeclip.Mux(ctx, "", k.y4m, k.wav, webm); err != nil {
				return nil, err
			}
		}
		f, err := os.Open(webm)
		if err != nil {
			return nil, err
		}
		res, err := lvAttempt(ctx, v, mgr, liveness.Request{Video: f})
		f.Close()
		if err != nil && !errors.Is(err, liveness.ErrNoSpeech) {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
		out = append(out, fakeClipResult{Clip: k.name, Pass: res.Pass, Reasons: res.Reasons, Checks: res.Checks})
	}
	return out, nil
}
