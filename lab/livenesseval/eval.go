// Package livenesseval is the lab's liveness evaluation: it measures the
// liveness checks (lip sync, still-photo attack, anti-spoof, latency) on the
// shared test data (`trustid-lab eval-liveness`), cross-validates lip-sync
// candidates and learned sync models, and runs the browser tests' fake
// clips through the real verifier (`trustid-lab make-fake-clip -check`).
// The service never imports it.
package livenesseval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/media/libav"
	"github.com/trustid/trustid/liveness/speech"
	"github.com/trustid/trustid/liveness/synthvoice"
)

type lvPair struct {
	Video string  `json:"video"`
	Audio string  `json:"audio"`
	Score float64 `json:"score"`
	LagMS int64   `json:"lag_ms"`
	Pass  bool    `json:"pass"`
}

type lvLipSync struct {
	Config       string   `json:"config"`
	FPS          float64  `json:"fps"`
	KeyFrames    int      `json:"key_frames"`
	MinLagMS     int64    `json:"min_lag_ms"`
	MaxLagMS     int64    `json:"max_lag_ms"`
	WindowMS     int64    `json:"window_ms"`
	Threshold    float64  `json:"threshold"`
	Genuine      []lvPair `json:"genuine"`
	Swapped      []lvPair `json:"swapped"`
	GenuineFail  int      `json:"genuine_rejected"`
	SwappedPass  int      `json:"swapped_accepted"`
	GenuineMin   float64  `json:"genuine_min"`
	GenuineMed   float64  `json:"genuine_median"`
	SwappedMax   float64  `json:"swapped_max"`
	SwappedP90   float64  `json:"swapped_p90"`
	AUC          float64  `json:"auc"`
	BestErrors   int      `json:"min_total_errors"`
	BestErrorsAt float64  `json:"min_total_errors_threshold"`
}

type lvStill struct {
	Clip    string            `json:"clip"`
	Kind    string            `json:"kind"`
	Pass    bool              `json:"pass"`
	Reasons []liveness.Reason `json:"reasons"`
	Motion  float64           `json:"mouth_motion"`
}

type lvSpoofSet struct {
	Name       string  `json:"name"`
	Attack     bool    `json:"attack"`
	Images     int     `json:"images"`
	NoFace     int     `json:"no_face"`
	Accepted   int     `json:"accepted_as_real"`
	Rejected   int     `json:"rejected_as_attack"`
	ErrorRate  float64 `json:"error_rate"`
	MedianReal float64 `json:"median_real_probability"`
}

type lvReport struct {
	Date      string       `json:"date"`
	Command   string       `json:"command"`
	LipSync   *lvLipSync   `json:"lipsync,omitempty"`
	LipSyncCV *lvLipSyncCV `json:"lipsync_cross_validation,omitempty"`
	Learned   *lvLearned   `json:"lipsync_learned,omitempty"`
	Still     []lvStill    `json:"still_photo_attack,omitempty"`
	AntiSpoof []lvSpoofSet `json:"anti_spoof,omitempty"`
	SpoofThr  float64      `json:"anti_spoof_threshold"`
	Latency   *lvLatency   `json:"latency,omitempty"`
}

// EvalLiveness (`trustid-lab eval-liveness`) measures the liveness checks on the shared test data and
// prints JSON (see liveness/RESULTS.md).
func EvalLiveness(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval-liveness", flag.ContinueOnError)
	var (
		models    = fs.String("models", os.Getenv("TRUSTID_MODELS"), "model directory")
		data      = fs.String("testdata", os.Getenv("TRUSTID_TESTDATA"), "shared test data directory")
		fps       = fs.Float64("fps", 25, "frame sampling rate")
		keys      = fs.Int("key-frames", liveness.DefaultKeyFrames, "frames per clip through the face engine")
		threshold = fs.Float64("threshold", lipsync.DefaultConfig.Threshold, "lip-sync accept threshold")
		spoofThr  = fs.Float64("spoof-threshold", 0.5, "anti-spoof real-probability threshold")
		padEvery  = fs.Int("pad-every", 1, "use every n-th image of pad/ sets")
		runs      = fs.Int("latency-runs", 20, "decisions timed for the latency figure")
		parts     = fs.String("parts", "lipsync,lipsync-cv,lipsync-learned,still,spoof,latency", "what to measure")
		workers   = fs.Int("workers", 2, "face engine workers (and parallel frame analyses)")
		manifest  = fs.String("manifest", "", "evaluate the clips of this manifest (PATH DIGITS genuine|attack:TYPE [SPEAKER] per line) instead: BPCER, APCER per attack type")
		verbose   = fs.Bool("v", false, "with -manifest: one line per decision on stderr")
		heldOutV  = fs.String("voice-heldout", "", "with -manifest: also retrain the synthetic-voice model leaving each speaker, the dub's engine, and both out, and decide the held-out clips with it; the value is train-synthvoice's corpus flags (\"-\" for its defaults; e.g. \"-feature-cache F -tts-cache D\")")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *manifest != "" {
		return evalManifest(ctx, *manifest, *models, *workers, args, *verbose, *heldOutV)
	}
	eng, err := face.New(face.Config{ModelDir: *models, Workers: *workers})
	if err != nil {
		return err
	}
	defer eng.Close()
	faces := facelogin.Faces{Engine: eng}
	dec := media.NewDecoder()
	dec.FPS = *fps
	dec.Timeout = 2 * time.Minute
	want := map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		want[strings.TrimSpace(p)] = true
	}
	rep := lvReport{Date: time.Now().UTC().Format(time.RFC3339), Command: "trustid-lab eval-liveness " + strings.Join(args, " "), SpoofThr: *spoofThr}

	gridFiles, _ := filepath.Glob(filepath.Join(*data, "talking", "grid", "*.mpg"))
	needGrid := want["lipsync"] || want["lipsync-cv"] || want["lipsync-learned"] || want["still"] || want["latency"]
	if needGrid && len(gridFiles) == 0 {
		return fmt.Errorf("no GRID clips under %s", filepath.Join(*data, "talking", "grid"))
	}
	type gridClip struct {
		name string
		clip *media.Clip
		keys []int
		lms  []*lipsync.Landmarks
		emb  []float32
	}
	var grid []gridClip
	if needGrid {
		for _, f := range gridFiles {
			clip, err := dec.DecodeFile(ctx, f)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			g := gridClip{name: filepath.Base(f), clip: clip}
			for _, i := range liveness.KeyFrames(len(clip.Frames), *keys) {
				r, err := faces.Analyze(ctx, clip.Frames[i], liveness.FaceOptions{Embedding: true})
				if errors.Is(err, liveness.ErrNoFace) {
					continue
				}
				if err != nil {
					return err
				}
				lm := r.Landmarks
				g.keys, g.lms = append(g.keys, i), append(g.lms, &lm)
				if g.emb == nil {
					g.emb = r.Embedding
				}
			}
			grid = append(grid, g)
		}
	}

	if want["lipsync"] {
		cfg := lipsync.DefaultConfig
		cfg.Threshold = *threshold
		ls := &lvLipSync{Config: lvConfigName(lvSyncConfig{Config: cfg}), FPS: *fps, KeyFrames: *keys, MinLagMS: cfg.MinLag.Milliseconds(), MaxLagMS: cfg.MaxLag.Milliseconds(), WindowMS: cfg.Window.Milliseconds(), Threshold: *threshold}
		for _, v := range grid {
			in := liveness.LipSyncInput(v.clip, v.keys, v.lms)
			for _, a := range grid {
				in.Audio, in.Rate = a.clip.Audio.Samples, a.clip.Audio.Rate
				r := lipsync.Check(in, cfg)
				p := lvPair{Video: v.name, Audio: a.name, Score: lvRound(r.Score), LagMS: r.Lag.Milliseconds(), Pass: r.Pass}
				if v.name == a.name {
					ls.Genuine = append(ls.Genuine, p)
					if !r.Pass {
						ls.GenuineFail++
					}
				} else {
					ls.Swapped = append(ls.Swapped, p)
					if r.Pass {
						ls.SwappedPass++
					}
				}
			}
		}
		summariseLipSync(ls)
		rep.LipSync = ls
	}

	if want["lipsync-cv"] {
		var names []string
		var inputs []lvInput
		var audio []media.Audio
		for _, g := range grid {
			names = append(names, g.name)
			inputs = append(inputs, lvLipSyncInput(g.clip, g.keys, g.lms))
			audio = append(audio, g.clip.Audio)
		}
		rep.LipSyncCV = lvLipSyncCrossValidate(names, inputs, audio)
	}

	if want["lipsync-learned"] {
		var names []string
		var clips []*media.Clip
		var keys [][]int
		var lms [][]*lipsync.Landmarks
		for _, g := range grid {
			names, clips, keys, lms = append(names, g.name), append(clips, g.clip), append(keys, g.keys), append(lms, g.lms)
		}
		rep.Learned = lvLipSyncLearned(names, clips, keys, lms)
	}

	if want["still"] {
		for _, g := range grid {
			still := &media.Clip{FPS: g.clip.FPS, Audio: g.clip.Audio}
			for _, f := range g.clip.Frames {
				still.Frames = append(still.Frames, media.Frame{T: f.T, Width: f.Width, Height: f.Height, BGR: g.clip.Frames[0].BGR})
			}
			v, mgr, err := lvVerifier(faces, *models, map[string][]float32{"subject": g.emb}, *keys, *workers, *threshold, *spoofThr)
			if err != nil {
				return err
			}
			res, err := lvAttempt(ctx, v, mgr, liveness.Request{Clip: still})
			if err != nil {
				return err
			}
			lk := liveness.KeyFrames(len(still.Frames), *keys)
			lms := make([]*lipsync.Landmarks, len(lk))
			for k := range lk {
				lms[k] = g.lms[0]
			}
			lr := lipsync.Check(liveness.LipSyncInput(still, lk, lms), lipsync.Config{})
			rep.Still = append(rep.Still, lvStill{Clip: g.name, Kind: "raw frames", Pass: res.Pass, Reasons: res.Reasons, Motion: lvRound(lr.Motion)})

			// The same attack as a real upload: the first frame looped into
			// an H.264 MP4 with the clip's own audio, through ffmpeg intake.
			mp4, err := lvStillVideo(ctx, filepath.Join(*data, "talking", "grid", g.name))
			if err != nil {
				return err
			}
			res, err = lvAttempt(ctx, v, mgr, liveness.Request{Video: bytes.NewReader(mp4)})
			if err != nil {
				return err
			}
			rep.Still = append(rep.Still, lvStill{Clip: g.name, Kind: "H.264 MP4 of the first frame + own audio", Pass: res.Pass, Reasons: res.Reasons})
		}
	}

	if want["spoof"] {
		sets := []struct {
			name, glob string
			attack     bool
		}{
			{"faces/spoof real (T)", "faces/spoof/image_T*.jpg", false},
			{"faces/spoof attack (F)", "faces/spoof/image_F*.jpg", true},
			{"pad/nuaa real", "pad/nuaa/real/*/*.jpg", false},
			{"pad/nuaa attack", "pad/nuaa/attack/*/*.jpg", true},
			{"pad/celebaspoof live", "pad/celebaspoof/live/*.jpg", false},
			{"pad/celebaspoof spoof", "pad/celebaspoof/spoof/*.jpg", true},
		}
		for _, s := range sets {
			files, _ := filepath.Glob(filepath.Join(*data, s.glob))
			sort.Strings(files)
			set := lvSpoofSet{Name: s.name, Attack: s.attack}
			var reals []float64
			for i, f := range files {
				if strings.HasPrefix(s.glob, "pad/") && i%*padEvery != 0 {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				fr, err := media.DecodeJPEG(b)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				set.Images++
				r, err := faces.Analyze(ctx, fr, liveness.FaceOptions{AntiSpoof: true})
				if errors.Is(err, liveness.ErrNoFace) {
					set.NoFace++
					continue
				}
				if err != nil {
					return err
				}
				reals = append(reals, r.Real)
				if r.Real >= *spoofThr {
					set.Accepted++
				} else {
					set.Rejected++
				}
			}
			// A missed face counts as rejected: the decision fails it.
			errs := set.Rejected + set.NoFace
			if s.attack {
				errs = set.Accepted
			}
			if set.Images > 0 {
				set.ErrorRate = lvRound(float64(errs) / float64(set.Images))
			}
			if len(reals) > 0 {
				set.MedianReal = lvRound(lvMedian(reals))
			}
			rep.AntiSpoof = append(rep.AntiSpoof, set)
		}
	}

	if want["latency"] {
		lat, err := lvMeasureLatency(ctx, faces, *models, gridFiles[0], grid[0].emb, *keys, *workers, *fps, *threshold, *spoofThr, *runs)
		if err != nil {
			return err
		}
		rep.Latency = lat
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// lvVerifier builds a Verifier on the real face engine, the real speech
// recogniser, an in-memory challenge store and in-memory references.
func lvVerifier(faces liveness.FaceAnalyzer, models string, refs map[string][]float32, keys, workers int, threshold, spoofThr float64) (*liveness.Verifier, *challenge.Manager, error) {
	sp, err := lvSpeech(models)
	if err != nil {
		return nil, nil, err
	}
	mouths, err := lvMouths(models)
	if err != nil {
		return nil, nil, err
	}
	return lvBuild(faces, sp, mouths, refs, keys, workers, threshold, spoofThr)
}

// lvVerifierWith is lvVerifier with a given speech checker and mouth
// tracker (nil: no viseme check) and defaults.
func lvVerifierWith(faces liveness.FaceAnalyzer, sp liveness.SpeechChecker, mouths liveness.MouthTracker, refs map[string][]float32) (*liveness.Verifier, *challenge.Manager, error) {
	return lvBuild(faces, sp, mouths, refs, 4, 2, 0, 0)
}

func lvBuild(faces liveness.FaceAnalyzer, sp liveness.SpeechChecker, mouths liveness.MouthTracker, refs map[string][]float32, keys, workers int, threshold, spoofThr float64) (*liveness.Verifier, *challenge.Manager, error) {
	return lvBuildWith(faces, sp, mouths, refs, keys, workers, threshold, spoofThr, nil)
}

// lvBuildWith is lvBuild with tweak (when not nil) applied to the
// Verifier's configuration last (its Video is the in-process decoder).
func lvBuildWith(faces liveness.FaceAnalyzer, sp liveness.SpeechChecker, mouths liveness.MouthTracker, refs map[string][]float32, keys, workers int, threshold, spoofThr float64,
	tweak func(*liveness.Config)) (*liveness.Verifier, *challenge.Manager, error) {
	st := memory.New(memory.Options{})
	secret := make([]byte, 32)
	copy(secret, "trustid eval-liveness dev secret")
	mgr, err := challenge.New(challenge.Config{Store: st, Secret: secret, SubjectIssueLimit: 1 << 20, AddressIssueLimit: 1 << 20, MaxFailures: 1 << 20,
		SubjectMaxFailures: 1 << 20, AddressMaxFailures: 1 << 20})
	if err != nil {
		return nil, nil, err
	}
	// In process, as the service runs it (cmd/trustid).
	dec := libav.New()
	dec.Timeout = 2 * time.Minute // evaluation on a shared machine; the service keeps the default
	cfg := liveness.Config{
		Challenges: mgr, Faces: faces, Speech: sp,
		References: facelogin.MemoryRefs{Refs: refs, Threshold: 0.34},
		Video:      dec, KeyFrames: keys, Parallel: workers,
		LipSync: lipsync.Config{Threshold: threshold}, SpoofThreshold: spoofThr,
		Mouths: mouths,
	}
	if sp == lvSpeechCache.checker && lvSpeechCache.rec != nil {
		// The real recogniser: the service's synthetic-voice check runs too.
		if cfg.Voice, cfg.VoiceThreshold, err = lvVoiceFrom(lvSpeechCache.rec); err != nil {
			return nil, nil, err
		}
	}
	if tweak != nil {
		tweak(&cfg)
	}
	v, err := liveness.New(cfg)
	return v, mgr, err
}

var lvMouthsCache struct {
	sync.Mutex
	m liveness.MouthTracker
}

// lvMouths loads the face mesh once.
func lvMouths(models string) (liveness.MouthTracker, error) {
	lvMouthsCache.Lock()
	defer lvMouthsCache.Unlock()
	if lvMouthsCache.m != nil {
		return lvMouthsCache.m, nil
	}
	r, err := facemesh.New(facemesh.Config{ModelDir: models})
	if err != nil {
		return nil, fmt.Errorf("face mesh: %w", err)
	}
	lvMouthsCache.m = facelogin.Mouths{Runner: r}
	return lvMouthsCache.m, nil
}

var lvSpeechCache struct {
	checker liveness.SpeechChecker
	kind    string
	rec     *speech.EmbeddingRecognizer
}

// lvSpeech loads the embedding recogniser once.
func lvSpeech(models string) (liveness.SpeechChecker, error) {
	if lvSpeechCache.checker != nil {
		return lvSpeechCache.checker, nil
	}
	rec, err := speech.NewEmbeddingRecognizer(speech.Config{ModelDir: models})
	if err != nil {
		return nil, fmt.Errorf("speech recogniser: %w", err)
	}
	lvSpeechCache.checker, lvSpeechCache.kind = facelogin.Speech{Recognizer: rec}, "embedding recogniser ("+rec.Lang()+")"
	lvSpeechCache.rec = rec
	return lvSpeechCache.checker, nil
}

// lvVoiceCheck is the synthetic-voice check as the service runs it (sharing
// the recogniser's speech embedding), and its threshold.
func lvVoiceCheck(models string) (liveness.VoiceCheck, float64, error) {
	if _, err := lvSpeech(models); err != nil {
		return nil, 0, err
	}
	return lvVoiceFrom(lvSpeechCache.rec)
}

func lvVoiceFrom(rec *speech.EmbeddingRecognizer) (liveness.VoiceCheck, float64, error) {
	d, err := synthvoice.New(synthvoice.Config{Frontend: rec.Frontend()})
	if err != nil {
		return nil, 0, fmt.Errorf("synthetic-voice check: %w", err)
	}
	return facelogin.Voice{Detector: d}, d.Threshold(), nil
}

// lvStillVideo makes the still-photo attack video for a GRID clip.
func lvStillVideo(ctx context.Context, clip string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "trustid-still-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	png, out := filepath.Join(dir, "f.png"), filepath.Join(dir, "still.mp4")
	for _, args := range [][]string{
		{"-i", clip, "-frames:v", "1", png},
		{"-loop", "1", "-framerate", "25", "-i", png, "-i", clip, "-map", "0:v", "-map", "1:a", "-t", "3", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", out},
	} {
		cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ffmpeg: %v: %s", err, b)
		}
	}
	return os.ReadFile(out)
}

func lvAttempt(ctx context.Context, v *liveness.Verifier, mgr *challenge.Manager, req liveness.Request) (liveness.Result, error) {
	iss, err := mgr.Issue(ctx, "session", "subject", "127.0.0.1")
	if err != nil {
		return liveness.Result{}, err
	}
	req.ChallengeID, req.SessionID, req.Subject, req.ClientAddr = iss.ID, "session", "subject", "127.0.0.1"
	return v.Verify(ctx, req)
}

// lvCPU is the CPU time used by this process and its waited-for children
// (ffmpeg).
func lvCPU() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func summariseLipSync(ls *lvLipSync) {
	var gen, sw []float64
	for _, p := range ls.Genuine {
		gen = append(gen, p.Score)
	}
	for _, p := range ls.Swapped {
		sw = append(sw, p.Score)
	}
	if len(gen) == 0 || len(sw) == 0 {
		return
	}
	sort.Float64s(gen)
	sort.Float64s(sw)
	ls.GenuineMin, ls.GenuineMed = gen[0], lvRound(lvMedian(gen))
	ls.SwappedMax, ls.SwappedP90 = sw[len(sw)-1], lvRound(lvQuantile(sw, 0.9))
	ls.AUC = lvRound(lvAUC(gen, sw))
	ls.BestErrors = math.MaxInt
	for _, t := range append(append([]float64{}, gen...), sw...) {
		if fr, fa := lvErrors(gen, sw, t); fr+fa < ls.BestErrors {
			ls.BestErrors, ls.BestErrorsAt = fr+fa, t
		}
	}
}

func lvMedian(x []float64) float64 { return lvQuantile(x, 0.5) }

func lvQuantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	c := append([]float64(nil), x...)
	sort.Float64s(c)
	pos := q * float64(len(c)-1)
	lo := int(pos)
	hi := min(lo+1, len(c)-1)
	return c[lo] + (pos-float64(lo))*(c[hi]-c[lo])
}

func lvRound(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1e4) / 1e4
}
