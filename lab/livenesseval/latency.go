package livenesseval

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/media/libav"
)

// lvLatency is the latency report of `eval-liveness -parts latency`: whole
// decisions on one 3 s GRID clip as the service makes them (in-process
// decode, speech, synthetic voice, face engine on the key frames, face
// mesh, checks), then the CPU of each stage run alone, with the load and
// the commit so that two binaries can be paired in one run.
type lvLatency struct {
	Runs      int     `json:"runs"`
	WallP50MS float64 `json:"wall_p50_ms"`
	WallP90MS float64 `json:"wall_p90_ms"`
	WallP99MS float64 `json:"wall_p99_ms"`
	// WallMinMS is the least contended run: the closest this shared
	// machine gets to an idle one.
	WallMinMS float64 `json:"wall_min_ms"`
	// WallDecodeFirstP50MS is the median wall of the same decisions made
	// with the whole clip decoded before any analysis (the decoder's
	// DecodeAudioFirst hidden), alternated with the timed ones: the
	// ratio to WallP50MS is what running the audio checks while the
	// frames decode saves, paired under the same load.
	WallDecodeFirstP50MS float64 `json:"wall_decode_first_p50_ms"`
	// WallSavedP50MS is the median over the pairs of the decode-first
	// decision's wall minus the timed one's (positive: the timed one was
	// faster), steadier than the difference of the medians.
	WallSavedP50MS float64 `json:"wall_saved_p50_ms"`
	// CPUP50MS is the median CPU (user+system, this process and its
	// children) of one decision.
	CPUP50MS float64 `json:"cpu_p50_ms"`
	// CPUBreakdown is the CPU time of each stage run alone (median of 5);
	// ffmpeg_spawn_decode_cpu_ms is the ffmpeg child process the service
	// used before, for comparison (not in the decision).
	CPUBreakdown map[string]float64 `json:"cpu_breakdown_ms"`
	Includes     string             `json:"includes"`
	// LoadAvg before and after the timed decisions.
	LoadAvg      string `json:"load_average"`
	LoadAvgAfter string `json:"load_average_after"`
	Cores        int    `json:"cores"`
	// Timeline is the median time since the decision began at which each
	// stage ended (liveness.Config.OnStage), over the timed runs.
	Timeline   map[string]float64 `json:"timeline_p50_ms"`
	Commit     string             `json:"commit"`
	Speech     string             `json:"speech"`
	LastResult any                `json:"last_result_checks"`
}

func lvMeasureLatency(ctx context.Context, faces liveness.FaceAnalyzer, models, file string, ref []float32, keys, workers int, fps, threshold, spoofThr float64, runs int) (*lvLatency, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	sp, err := lvSpeech(models)
	if err != nil {
		return nil, err
	}
	mouths, err := lvMouths(models)
	if err != nil {
		return nil, err
	}
	// The timed decisions report when each stage ends (Config.OnStage).
	var tl lvTimeline
	v, mgr, err := lvBuildWith(faces, sp, mouths, map[string][]float32{"subject": ref}, keys, workers, threshold, spoofThr,
		func(c *liveness.Config) { c.OnStage = tl.mark })
	if err != nil {
		return nil, err
	}
	first, firstMgr, err := lvBuildWith(faces, sp, mouths, map[string][]float32{"subject": ref}, keys, workers, threshold, spoofThr,
		func(c *liveness.Config) { c.Video = lvDecodeFirst{c.Video.(*libav.Decoder)} })
	if err != nil {
		return nil, err
	}
	load0 := lvLoad()
	var walls, cpus, firstWalls, saved []float64
	var last liveness.Result
	for i := 0; i < runs+1; i++ {
		var res, fres liveness.Result
		var wall, cpu, firstWall float64
		timed := func() (err error) {
			c0 := lvCPU()
			t0 := time.Now()
			res, err = lvAttempt(ctx, v, mgr, liveness.Request{Video: bytes.NewReader(b)})
			wall, cpu = float64(time.Since(t0).Microseconds())/1000, float64((lvCPU()-c0).Microseconds())/1000
			return err
		}
		decodeFirst := func() (err error) {
			t0 := time.Now()
			fres, err = lvAttempt(ctx, first, firstMgr, liveness.Request{Video: bytes.NewReader(b)})
			firstWall = float64(time.Since(t0).Microseconds()) / 1000
			return err
		}
		order := []func() error{timed, decodeFirst}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			if err := f(); err != nil {
				return nil, err
			}
		}
		if a, b := lvDigitFree(fres.Checks), lvDigitFree(res.Checks); a != b {
			return nil, fmt.Errorf("decode first: checks %s, audio first %s", a, b)
		}
		if i == 0 {
			tl.reset()
			continue // warm-up
		}
		walls, cpus, firstWalls = append(walls, wall), append(cpus, cpu), append(firstWalls, firstWall)
		saved = append(saved, firstWall-wall)
		last = res
	}
	load1 := lvLoad()
	breakdown, err := lvStageCPU(ctx, faces, models, b, keys, fps)
	if err != nil {
		return nil, err
	}
	return &lvLatency{
		CPUBreakdown: breakdown,
		Runs:         runs, WallP50MS: lvRound(lvMedian(walls)), WallP90MS: lvRound(lvQuantile(walls, 0.9)), WallP99MS: lvRound(lvQuantile(walls, 0.99)),
		WallMinMS: lvRound(lvQuantile(walls, 0)), CPUP50MS: lvRound(lvMedian(cpus)), WallDecodeFirstP50MS: lvRound(lvMedian(firstWalls)),
		WallSavedP50MS: lvRound(lvMedian(saved)), Timeline: tl.medians(),
		Includes: "challenge consume, in-process decode (liveness/media/libav) of the " + filepath.Base(file) + " file at " + fmt.Sprint(fps) +
			" fps, speech, synthetic voice, face engine on key frames, lip sync, face mesh (every third frame and where the lips close), viseme checks, reference match",
		LoadAvg: load0, LoadAvgAfter: load1, Cores: runtime.NumCPU(), Commit: lvCommit(), Speech: lvSpeechCache.kind, LastResult: last.Checks,
	}, nil
}

// lvTimeline collects the stage times of decisions (liveness.Config.OnStage).
type lvTimeline struct {
	mu sync.Mutex
	at map[string][]float64
}

func (t *lvTimeline) mark(stage string, since time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.at == nil {
		t.at = map[string][]float64{}
	}
	t.at[stage] = append(t.at[stage], float64(since.Microseconds())/1000)
}

func (t *lvTimeline) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.at = nil
}

func (t *lvTimeline) medians() map[string]float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]float64{}
	for stage, at := range t.at {
		out[stage] = lvRound(lvMedian(at))
	}
	return out
}

// lvDigitFree prints the checks that do not depend on the challenge's
// digits (each attempt is issued new ones).
func lvDigitFree(cs []liveness.CheckResult) string {
	var out []liveness.CheckResult
	for _, c := range cs {
		switch c.Name {
		case liveness.CheckSpeech, liveness.CheckViseme, liveness.CheckMouthVoice:
		default:
			out = append(out, c)
		}
	}
	return fmt.Sprint(out)
}

// lvDecodeFirst hides a decoder's DecodeAudioFirst: the Verifier then
// decodes the whole clip before it starts any check.
type lvDecodeFirst struct{ liveness.VideoDecoder }

// lvStageCPU is the CPU of each stage of a decision run alone on the clip
// data (median of 5 runs).
func lvStageCPU(ctx context.Context, faces liveness.FaceAnalyzer, models string, data []byte, keys int, fps float64) (map[string]float64, error) {
	stage := func(f func() error) (float64, error) {
		var cs []float64
		for i := 0; i < 5; i++ {
			c0 := lvCPU()
			if err := f(); err != nil {
				return 0, err
			}
			cs = append(cs, float64((lvCPU()-c0).Microseconds())/1000)
		}
		return lvRound(lvMedian(cs)), nil
	}
	out := map[string]float64{}
	var err error
	dec := libav.New()
	dec.FPS, dec.Timeout = fps, 2*time.Minute
	var clip *media.Clip
	// Each decode but the last gives its frames back, as the Verifier
	// does once a decision is made (media.FramePool).
	if out["decode_cpu_ms"], err = stage(func() (err error) { clip.Release(); clip, err = dec.Decode(ctx, data); return err }); err != nil {
		return nil, err
	}
	spawn := media.NewDecoder()
	spawn.FPS, spawn.Timeout = fps, 2*time.Minute
	if out["ffmpeg_spawn_decode_cpu_ms"], err = stage(func() error { _, err := spawn.DecodeVideo(ctx, bytes.NewReader(data)); return err }); err != nil {
		return nil, err
	}
	// As in the decision: the synthetic-voice check, then the speech check
	// with the voice activity the voice check found.
	voice, _, err := lvVoiceCheck(models)
	if err != nil {
		return nil, err
	}
	pcm := make([]float32, len(clip.Audio.Samples))
	for i, s := range clip.Audio.Samples {
		pcm[i] = float32(s) / 32768
	}
	var activity []float32
	if out["synthetic_voice_cpu_ms"], err = stage(func() (err error) {
		_, activity, err = voice.Synthetic(pcm, clip.Audio.Rate)
		return err
	}); err != nil {
		return nil, err
	}
	sp, err := lvSpeech(models)
	if err != nil {
		return nil, err
	}
	if out["speech_cpu_ms"], err = stage(func() error {
		_, err := sp.CheckDigits(ctx, clip.Audio.Samples, "4829", activity)
		return err
	}); err != nil {
		return nil, err
	}
	// The key frames as the decision analyses them: the anti-spoof score
	// on liveness.SpoofKeys of them.
	kf := liveness.KeyFrames(len(clip.Frames), keys)
	spoof := liveness.SpoofKeys(len(kf), liveness.DefaultSpoofKeyFrames)
	var first liveness.FaceResult
	if out["face_key_frames_cpu_ms"], err = stage(func() error {
		for k, i := range kf {
			r, err := faces.Analyze(ctx, clip.Frames[i], liveness.FaceOptions{Embedding: true, AntiSpoof: spoof[k]})
			if err != nil {
				return err
			}
			if k == 0 {
				first = r
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	mouths, err := lvMouths(models)
	if err != nil {
		return nil, err
	}
	if out["face_mesh_cpu_ms"], err = stage(func() error {
		_, err := mouths.TrackMouth(ctx, clip.Frames, kf[0], first.Landmarks)
		return err
	}); err != nil {
		return nil, err
	}
	return out, nil
}

func lvLoad() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// lvCommit is the commit the binary was built from: the build's VCS stamp,
// else the working tree's HEAD (builds here use -buildvcs=false).
func lvCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		return strings.TrimSpace(string(out)) + " (working tree)"
	}
	return "unknown"
}
