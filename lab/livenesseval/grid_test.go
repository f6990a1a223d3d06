package livenesseval

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// lvNeed returns $TRUSTID_MODELS and $TRUSTID_TESTDATA, skipping (failing
// in CI) when either is missing.
func lvNeed(t testing.TB) (models, data string) {
	t.Helper()
	models, data = os.Getenv("TRUSTID_MODELS"), os.Getenv("TRUSTID_TESTDATA")
	_, errM := os.Stat(filepath.Join(models, "fr_detect.onnx"))
	_, errD := os.Stat(filepath.Join(data, "talking", "grid"))
	if models == "" || data == "" || errM != nil || errD != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("models (%q) or test data (%q) missing", models, data)
		}
		t.Skip("models or test data missing")
	}
	return models, data
}

var lvEngine struct {
	once sync.Once
	eng  *face.Engine
	err  error
}

func lvFaces(t testing.TB, models string) facelogin.Faces {
	lvEngine.once.Do(func() { lvEngine.eng, lvEngine.err = face.New(face.Config{ModelDir: models, Workers: 2}) })
	if lvEngine.err != nil {
		t.Fatal(lvEngine.err)
	}
	return facelogin.Faces{Engine: lvEngine.eng}
}

type lvGrid struct {
	name string
	clip *media.Clip
	keys []int
	lms  []*lipsync.Landmarks
	emb  []float32
}

func lvLoadGrid(t *testing.T, faces facelogin.Faces, data string) []lvGrid {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(data, "talking", "grid", "*.mpg"))
	if len(files) < 2 {
		t.Fatalf("%d GRID clips", len(files))
	}
	dec := media.NewDecoder()
	dec.FPS = 25
	dec.Timeout = 2 * time.Minute // evaluation on a shared machine; the service keeps the default
	var out []lvGrid
	for _, f := range files {
		clip, err := dec.DecodeFile(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		g := lvGrid{name: filepath.Base(f), clip: clip}
		for _, i := range liveness.KeyFrames(len(clip.Frames), liveness.DefaultKeyFrames) {
			r, err := faces.Analyze(context.Background(), clip.Frames[i], liveness.FaceOptions{Embedding: true})
			if err != nil {
				t.Fatalf("%s frame %d: %v", g.name, i, err)
			}
			lm := r.Landmarks
			g.keys, g.lms = append(g.keys, i), append(g.lms, &lm)
			if g.emb == nil {
				g.emb = r.Embedding
			}
		}
		out = append(out, g)
	}
	return out
}

// TestLivenessGRID checks the lip-sync separation on GRID (genuine vs
// audio swapped between clips) and that a still photo made into a video
// with the clip's real speech fails the whole decision as a still mouth.
func TestLivenessGRID(t *testing.T) {
	models, data := lvNeed(t)
	faces := lvFaces(t, models)
	grid := lvLoadGrid(t, faces, data)

	t.Run("lip sync genuine vs swapped", func(t *testing.T) {
		var gen, sw []float64
		for _, v := range grid {
			in := liveness.LipSyncInput(v.clip, v.keys, v.lms)
			for _, a := range grid {
				in.Audio = a.clip.Audio.Samples
				r := lipsync.Check(in, lipsync.Config{})
				if r.Reason == lipsync.ErrStillMouth || r.Reason == lipsync.ErrTooFewFrames {
					t.Errorf("%s with %s audio: %v", v.name, a.name, r.Reason)
				}
				if v.name == a.name {
					gen = append(gen, r.Score)
				} else {
					sw = append(sw, r.Score)
				}
			}
		}
		// The measured separation (RESULTS.md) is partial: AUC 0.87. Hold
		// the code to it so a regression shows.
		wins := 0.0
		for _, g := range gen {
			for _, s := range sw {
				if g > s {
					wins++
				}
			}
		}
		auc := wins / float64(len(gen)*len(sw))
		t.Logf("AUC genuine vs swapped %.3f (genuine median %.3f, swapped median %.3f)", auc, lvMedian(gen), lvMedian(sw))
		if auc < 0.75 {
			t.Errorf("AUC %.3f < 0.75", auc)
		}
		if lvMedian(gen) <= lvQuantile(sw, 0.75) {
			t.Errorf("genuine median %.3f not above the swapped 75th percentile %.3f", lvMedian(gen), lvQuantile(sw, 0.75))
		}
	})

	t.Run("lab variant is Check on real clips", func(t *testing.T) {
		for _, v := range grid[:3] {
			in := lvLipSyncInput(v.clip, v.keys, v.lms)
			for _, a := range grid[:3] {
				in.Audio = a.clip.Audio.Samples
				want := lipsync.Check(in.Input, lipsync.DefaultConfig)
				got := lvCheck(in, lvSyncConfig{Config: lipsync.DefaultConfig})
				if got.Score != want.Score || got.Lag != want.Lag || got.Pass != want.Pass || got.Reason != want.Reason {
					t.Errorf("%s with %s audio: lvCheck %+v, Check %+v", v.name, a.name, got.Result, want)
				}
			}
		}
	})

	// The face mesh (liveness/facemesh through facelogin.Mouths) follows
	// the lips of every real GRID speaker through every frame from the
	// first key frame, and the mouth checks of liveness/viseme pass every
	// clip with its own voice (#17: genuine mouth_voice 0.08-0.24, no lips
	// shut; RESULTS.md), with the speech alignment left out.
	t.Run("face mesh and mouth checks on the genuine clips", func(t *testing.T) {
		mouths, err := lvMouths(models)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grid {
			sh, err := mouths.TrackMouth(context.Background(), g.clip.Frames, g.keys[0], *g.lms[0])
			if err != nil {
				t.Fatal(err)
			}
			in := viseme.Input{Shapes: sh, Audio: g.clip.Audio.Samples, Rate: g.clip.Audio.Rate}
			lost := 0
			for i, s := range sh {
				in.Times = append(in.Times, g.clip.Frames[i].T)
				if !s.OK || s.Width < 10 || s.Width > float64(g.clip.Frames[i].Width)/2 {
					lost++
				}
			}
			if lost > len(sh)/20 {
				t.Errorf("%s: mouth lost or implausible in %d of %d frames", g.name, lost, len(sh))
			}
			if r := viseme.Check(in, viseme.Config{}); !r.Pass {
				t.Errorf("%s with its own voice: %+v", g.name, r)
			}
		}
	})

	t.Run("still photo", func(t *testing.T) {
		for _, g := range grid[:3] {
			still := &media.Clip{FPS: g.clip.FPS, Audio: g.clip.Audio}
			for _, f := range g.clip.Frames {
				still.Frames = append(still.Frames, media.Frame{T: f.T, Width: f.Width, Height: f.Height, BGR: g.clip.Frames[0].BGR})
			}
			v, mgr, err := lvVerifierWith(faces, lvHears{}, nil, map[string][]float32{"subject": g.emb})
			if err != nil {
				t.Fatal(err)
			}
			res, err := lvAttempt(context.Background(), v, mgr, liveness.Request{Clip: still})
			if err != nil {
				t.Fatal(err)
			}
			if res.Pass || !res.Has(liveness.ReasonStillMouth) {
				t.Errorf("%s as a still photo: pass=%v reasons %v", g.name, res.Pass, res.Reasons)
			}
			if res.Public().Pass || res.Public().Hint != liveness.HintRetry {
				t.Errorf("public %+v", res.Public())
			}
		}
	})
}

// lvHears is a speech checker that accepts any digits: it isolates the
// face and lip checks from speech (GRID sentences are not digit strings).
type lvHears struct{}

func (lvHears) CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (liveness.SpeechResult, error) {
	return liveness.SpeechResult{Match: true, Score: 1}, nil
}

// BenchmarkLivenessDecision times one whole decision on a 3 s GRID clip:
// challenge, ffmpeg demux, the real face engine on the key frames, lip
// sync, the face mesh on every frame and the viseme check, the real speech
// recogniser when it loads, and the reference match.
func BenchmarkLivenessDecision(b *testing.B) {
	models, data := lvNeed(b)
	faces := lvFaces(b, models)
	file := filepath.Join(data, "talking", "grid", "bbaf2n.mpg")
	raw, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	d := media.NewDecoder()
	d.Timeout = 2 * time.Minute
	clip, err := d.DecodeFile(context.Background(), file)
	if err != nil {
		b.Fatal(err)
	}
	r, err := faces.Analyze(context.Background(), clip.Frames[0], liveness.FaceOptions{Embedding: true})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := lvSpeech(models)
	if err != nil {
		b.Logf("speech recogniser unavailable (%v): using a stand-in", err)
		sp = lvHears{}
	}
	mouths, err := lvMouths(models)
	if err != nil {
		b.Fatal(err)
	}
	v, mgr, err := lvVerifierWith(faces, sp, mouths, map[string][]float32{"subject": r.Embedding})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	// CPU of this process and its children per decision, and the wall
	// median: a decision's budget is both (#21). Per-stage CPU:
	// `trustid-lab eval-liveness -parts latency`.
	var walls []float64
	c0 := lvCPU()
	for b.Loop() {
		t0 := time.Now()
		if _, err := lvAttempt(context.Background(), v, mgr, liveness.Request{Video: bytes.NewReader(raw)}); err != nil {
			b.Fatal(err)
		}
		walls = append(walls, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(float64((lvCPU()-c0).Microseconds())/1000/float64(len(walls)), "cpu-ms/op")
	b.ReportMetric(lvMedian(walls), "wall-p50-ms")
}
