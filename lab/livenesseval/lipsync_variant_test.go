package livenesseval

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// The synthetic clips below are liveness/lipsync's test clips.

const lvRate = 16000

// lvTalk makes a syllable-like opening signal: random bumps 150-350 ms
// apart between 0.5 s and 2.5 s, closed before and after.
func lvTalk(rng *rand.Rand) func(t float64) float64 {
	var centres []float64
	for c := 0.6; c < 2.5; c += 0.15 + 0.2*rng.Float64() {
		centres = append(centres, c)
	}
	return func(t float64) float64 {
		var v float64
		for _, c := range centres {
			d := (t - c) / 0.06
			v += math.Exp(-d * d)
		}
		return min(v, 1.2)
	}
}

// lvFace builds landmarks whose lips are apart by open (relative units).
func lvFace(open float64) *lipsync.Landmarks {
	var lm lipsync.Landmarks
	lm[36], lm[45] = lipsync.Point{X: 100, Y: 100}, lipsync.Point{X: 200, Y: 100}
	lm[48], lm[54] = lipsync.Point{X: 120, Y: 200}, lipsync.Point{X: 180, Y: 200}
	g := float32(open * 20)
	for _, i := range []int{50, 51, 52} {
		lm[i] = lipsync.Point{X: 150, Y: 192 - g}
	}
	for _, i := range []int{58, 57, 56} {
		lm[i] = lipsync.Point{X: 150, Y: 208 + g}
	}
	for _, i := range []int{61, 62, 63} {
		lm[i] = lipsync.Point{X: 150, Y: 199 - g}
	}
	for _, i := range []int{67, 66, 65} {
		lm[i] = lipsync.Point{X: 150, Y: 201 + g}
	}
	for i, p := range map[int]lipsync.Point{49: {X: 130, Y: 195}, 53: {X: 170, Y: 195}, 59: {X: 130, Y: 205}, 55: {X: 170, Y: 205}, 60: {X: 125, Y: 200}, 64: {X: 175, Y: 200}} {
		lm[i] = p
	}
	return &lm
}

// lvVoice is noise whose amplitude follows env, over a quiet floor.
func lvVoice(rng *rand.Rand, env func(float64) float64, dur float64) []int16 {
	out := make([]int16, int(dur*lvRate))
	for i := range out {
		a := 200 + 8000*env(float64(i)/lvRate)
		out[i] = int16(max(-32767, min(32767, a*rng.NormFloat64())))
	}
	return out
}

// lvDrawFrame paints a grey face with a dark mouth cavity open by open.
func lvDrawFrame(open float64, noise *rand.Rand) media.Frame {
	const w, h = 320, 240
	f := media.Frame{Width: w, Height: h, BGR: make([]byte, w*h*3)}
	half := open * 20
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 150.0
			if x >= 128 && x < 172 && float64(y) >= 200-half && float64(y) < 200+half {
				v = 30
			}
			if noise != nil {
				v += 2 * noise.NormFloat64()
			}
			b := byte(max(0, min(255, v)))
			o := (y*w + x) * 3
			f.BGR[o], f.BGR[o+1], f.BGR[o+2] = b, b, b
		}
	}
	return f
}

func lvFrames(env func(float64) float64, fps float64, dur float64, noise *rand.Rand) lvInput {
	var fs []media.Frame
	var rois []lipsync.Rect
	var in lvInput
	for t := 0.0; t < dur; t += 1 / fps {
		in.Times = append(in.Times, time.Duration(t*float64(time.Second)))
		o := env(t)
		fs = append(fs, lvDrawFrame(max(0, o), noise))
		rois = append(rois, lipsync.MouthROI(lvFace(o)))
	}
	in.Contrast, in.Motion = lipsync.FrameSeries(fs, rois)
	in.Dark, in.Grey = lvMouthMeasures(fs, rois)
	return in
}

// TestLvCheckMatchesCheck: without the experiment options, the lab's
// variant is the service's Check.
func TestLvCheckMatchesCheck(t *testing.T) {
	rngA := rand.New(rand.NewPCG(1, 2))
	rngB := rand.New(rand.NewPCG(3, 4))
	speakerA, speakerB := lvTalk(rngA), lvTalk(rngB)
	audioA, audioB := lvVoice(rngA, speakerA, 3), lvVoice(rngB, speakerB, 3)
	moving := lvFrames(speakerA, 25, 3, rngA)
	still := lvFrames(func(float64) float64 { return 0.3 }, 25, 3, nil)
	noFace := lvInput{Input: lipsync.Input{Times: []time.Duration{0, time.Second}, Contrast: []float64{math.NaN(), math.NaN()}}}
	clips := []struct {
		name  string
		in    lvInput
		audio []int16
	}{
		{"own audio", moving, audioA},
		{"own audio 60 ms late", moving, append(make([]int16, 960), audioA...)},
		{"other audio", moving, audioB},
		{"still", still, audioA},
		{"silent", moving, make([]int16, 3*lvRate)},
		{"no face", noFace, audioA},
	}
	whole := lipsync.DefaultConfig
	whole.BandLow, whole.BandHigh, whole.MinLag = 0, -1, -40*time.Millisecond
	cfgs := []struct {
		name string
		cfg  lipsync.Config
	}{{"zero", lipsync.Config{}}, {"default", lipsync.DefaultConfig}, {"whole band, lags from -40 ms", whole}, {"threshold 0.2", lipsync.Config{Threshold: 0.2}}}
	for _, c := range clips {
		for _, k := range cfgs {
			t.Run(c.name+"/"+k.name, func(t *testing.T) {
				in := c.in
				in.Audio, in.Rate = c.audio, lvRate
				want := lipsync.Check(in.Input, k.cfg)
				got := lvCheck(in, lvSyncConfig{Config: k.cfg})
				same := got.Pass == want.Pass && got.Reason == want.Reason && got.Lag == want.Lag &&
					got.Motion == want.Motion && got.Frames == want.Frames &&
					(got.Score == want.Score || math.IsNaN(got.Score) && math.IsNaN(want.Score))
				if !same {
					t.Errorf("lvCheck %+v, Check %+v", got.Result, want)
				}
				if !math.IsNaN(want.Score) && got.Peak != want.Score {
					t.Errorf("peak %v, want the score %v", got.Peak, want.Score)
				}
			})
		}
	}
}

func TestLvCheckOffsetAndTilt(t *testing.T) {
	rngA := rand.New(rand.NewPCG(7, 8))
	rngB := rand.New(rand.NewPCG(9, 10))
	speakerA, speakerB := lvTalk(rngA), lvTalk(rngB)
	audioA, audioB := lvVoice(rngA, speakerA, 3), lvVoice(rngB, speakerB, 3)
	in := lvFrames(speakerA, 25, 3, rngA)
	ms := time.Millisecond
	cfgs := []struct {
		name string
		cfg  lvSyncConfig
	}{
		{"offset max", lvSyncConfig{Config: lipsync.Config{Threshold: 0.2}, Offset: &lvOffset{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvMax, Weight: 1}}},
		{"offset mean", lvSyncConfig{Config: lipsync.Config{Threshold: 0.4}, Offset: &lvOffset{MinShift: 200 * ms, MaxShift: 600 * ms, Step: 40 * ms, Stat: lvMean, Weight: 1}}},
		// The synthetic voice is white noise: its tilt does not follow the
		// mouth, so the averaged correlation is lower than the band's alone.
		{"tilt", lvSyncConfig{Config: lipsync.Config{Threshold: 0.3}, Tilt: true}},
		{"dark+grey", lvSyncConfig{Measures: []lvMeasure{lvDark, lvGrey}}},
	}
	for _, c := range cfgs {
		t.Run(c.name, func(t *testing.T) {
			own, other := in, in
			own.Audio, own.Rate = audioA, lvRate
			other.Audio, other.Rate = audioB, lvRate
			ro, rx := lvCheck(own, c.cfg), lvCheck(other, c.cfg)
			if !ro.Pass || rx.Pass {
				t.Errorf("own audio pass=%v score %.3f peak %.3f; other audio pass=%v score %.3f peak %.3f", ro.Pass, ro.Score, ro.Peak, rx.Pass, rx.Score, rx.Peak)
			}
			if c.cfg.Offset != nil && !(ro.Score < ro.Peak) {
				t.Errorf("offset contrast %.3f not below the peak %.3f", ro.Score, ro.Peak)
			}
		})
	}
}

func TestEnergyWrap(t *testing.T) {
	x := make([]float64, lvRate)
	for i := range x[:lvRate/10] {
		x[i] = 0.5 // loud first 100 ms, silence after
	}
	win := hann(480)
	at := []time.Duration{980 * time.Millisecond}
	if e := energyDB(x, lvRate, at, 40*time.Millisecond, win, false)[0]; e > -80 {
		t.Errorf("past the end without wrap: %.1f dB, want silence", e)
	}
	if e := energyDB(x, lvRate, at, 40*time.Millisecond, win, true)[0]; math.Abs(e-(-6.02)) > 0.1 {
		t.Errorf("past the end with wrap: %.1f dB, want the start's -6.02", e)
	}
}

func TestLvMouthMeasures(t *testing.T) {
	fs := []media.Frame{lvDrawFrame(0, nil), lvDrawFrame(0.5, nil), lvDrawFrame(0.5, nil)}
	roi := lipsync.MouthROI(lvFace(0))
	dark, grey := lvMouthMeasures(fs, []lipsync.Rect{roi, roi, {X0: 400, Y0: 0, X1: 500, Y1: 10}})
	if dark[0] != 0 || dark[1] <= 0.1 {
		t.Errorf("dark fraction closed %.3f open %.3f", dark[0], dark[1])
	}
	if grey[1] <= grey[0] {
		t.Errorf("negated grey should grow with the opening: %v", grey)
	}
	if !math.IsNaN(dark[2]) || !math.IsNaN(grey[2]) {
		t.Errorf("region outside the frame: dark %v grey %v", dark[2], grey[2])
	}
}

func BenchmarkLvCheck(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sp := lvTalk(rng)
	in := lvFrames(sp, 25, 3, rng)
	in.Audio, in.Rate = lvVoice(rng, sp, 3), lvRate
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		cfg  lvSyncConfig
	}{
		{"default", lvSyncConfig{}},
		// the costliest cross-validated candidate: 42 far offsets, two audio series
		{"tilt+offset", lvSyncConfig{Tilt: true, Offset: &lvOffset{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvMax, Weight: 1}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lvCheck(in, c.cfg)
			}
		})
	}
}
