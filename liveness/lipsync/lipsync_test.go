package lipsync

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

const rate = 16000

// talk makes a syllable-like opening signal: random bumps 150-350 ms apart
// between 0.5 s and 2.5 s, closed before and after.
func talk(rng *rand.Rand) func(t float64) float64 {
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

// face builds landmarks whose lips are apart by open (relative units).
func face(open float64) *Landmarks {
	var lm Landmarks
	lm[36], lm[45] = Point{100, 100}, Point{200, 100}
	lm[48], lm[54] = Point{120, 200}, Point{180, 200}
	for i, p := range map[int]Point{49: {130, 195}, 53: {170, 195}, 59: {130, 205}, 55: {170, 205}, 60: {125, 200}, 64: {175, 200}} {
		lm[i] = p
	}
	g := float32(open * 20)
	for _, i := range []int{50, 51, 52} {
		lm[i] = Point{150, 192 - g}
	}
	for _, i := range []int{58, 57, 56} {
		lm[i] = Point{150, 208 + g}
	}
	for _, i := range []int{61, 62, 63} {
		lm[i] = Point{150, 199 - g}
	}
	for _, i := range []int{67, 66, 65} {
		lm[i] = Point{150, 201 + g}
	}
	return &lm
}

// voice is noise whose amplitude follows env, over a quiet floor.
func voice(rng *rand.Rand, env func(float64) float64, dur float64) []int16 {
	out := make([]int16, int(dur*rate))
	for i := range out {
		a := 200 + 8000*env(float64(i)/rate)
		out[i] = int16(max(-32767, min(32767, a*rng.NormFloat64())))
	}
	return out
}

// drawFrame paints a grey face with a dark mouth cavity open by open.
func drawFrame(open float64, noise *rand.Rand) media.Frame {
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

func frames(env func(float64) float64, fps float64, dur float64, noise *rand.Rand) Input {
	var fs []media.Frame
	var rois []Rect
	var in Input
	for t := 0.0; t < dur; t += 1 / fps {
		in.Times = append(in.Times, time.Duration(t*float64(time.Second)))
		o := env(t)
		fs = append(fs, drawFrame(max(0, o), noise))
		rois = append(rois, MouthROI(face(o)))
	}
	in.Contrast, in.Motion = FrameSeries(fs, rois)
	return in
}

func TestCheck(t *testing.T) {
	rngA := rand.New(rand.NewPCG(1, 2))
	rngB := rand.New(rand.NewPCG(3, 4))
	speakerA, speakerB := talk(rngA), talk(rngB)
	audioA := voice(rngA, speakerA, 3)
	audioB := voice(rngB, speakerB, 3)
	still := func(float64) float64 { return 0.3 }
	tests := []struct {
		name   string
		in     Input
		audio  []int16
		pass   bool
		reason error
	}{
		{"own audio", frames(speakerA, 25, 3, rngA), audioA, true, nil},
		{"own audio 60 ms late", frames(speakerA, 25, 3, rngA), append(make([]int16, 960), audioA...), true, nil},
		{"other audio", frames(speakerA, 25, 3, rngA), audioB, false, ErrNoCorrelation},
		{"still photo", frames(still, 25, 3, nil), audioA, false, ErrStillMouth},
		{"silent audio", frames(speakerA, 25, 3, rngA), make([]int16, 3*rate), false, ErrSilentAudio},
		{"no face", Input{Times: []time.Duration{0, time.Second}, Contrast: []float64{math.NaN(), math.NaN()}}, audioA, false, ErrTooFewFrames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Audio, in.Rate = tt.audio, rate
			r := Check(in, Config{})
			if r.Pass != tt.pass || !errors.Is(r.Reason, tt.reason) {
				t.Fatalf("pass=%v reason=%v score=%.3f motion=%.3f; want pass=%v reason=%v", r.Pass, r.Reason, r.Score, r.Motion, tt.pass, tt.reason)
			}
			if r.Pass && (r.Reason != nil || r.Score < DefaultConfig.Threshold) {
				t.Errorf("passed with reason %v and score %.3f", r.Reason, r.Score)
			}
		})
	}
}

func TestCheckFindsLag(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sp := talk(rng)
	audio := voice(rng, sp, 3)
	in := frames(sp, 25, 3, nil)
	in.Audio, in.Rate = append(make([]int16, 960), audio...), rate // audio 60 ms late
	r := Check(in, Config{})
	if !r.Pass || r.Lag < 40*time.Millisecond || r.Lag > 80*time.Millisecond {
		t.Errorf("lag %s score %.3f, want about 60 ms", r.Lag, r.Score)
	}
}

func TestFrameSeries(t *testing.T) {
	fs := []media.Frame{drawFrame(0, nil), drawFrame(0.5, nil), drawFrame(0.5, nil)}
	roi := MouthROI(face(0))
	contrast, motion := FrameSeries(fs, []Rect{roi, roi, {X0: 400, Y0: 0, X1: 500, Y1: 10}})
	if contrast[0] != 0 || contrast[1] <= 10 {
		t.Errorf("contrast closed %.3f open %.3f", contrast[0], contrast[1])
	}
	if motion[0] != 0 || motion[1] <= 1 {
		t.Errorf("motion %v", motion)
	}
	if !math.IsNaN(contrast[2]) || !math.IsNaN(motion[2]) {
		t.Errorf("region outside the frame: contrast %v motion %v", contrast[2], motion[2])
	}
}

func TestMouthOf(t *testing.T) {
	m, ok := MouthOf(face(0.5))
	if !ok {
		t.Fatal("not ok")
	}
	// inner gap 2+20 px, outer 16+20, eyes 100, width 60
	if math.Abs(m.Inner-0.22) > 1e-6 || math.Abs(m.Outer-0.36) > 1e-6 || math.Abs(m.Aspect-0.6) > 1e-6 {
		t.Errorf("got %+v", m)
	}
	if _, ok := MouthOf(&Landmarks{}); ok {
		t.Error("degenerate landmarks accepted")
	}
}

func TestEnvelopeEdges(t *testing.T) {
	a := make([]int16, rate)
	for i := range a {
		a[i] = 16384
	}
	e := Envelope(a, rate, []time.Duration{-time.Second, 0, 500 * time.Millisecond, 2 * time.Second}, 0, 100*time.Millisecond)
	if e[0] != -90 || e[3] != -90 {
		t.Errorf("outside the audio: %v", e)
	}
	if math.Abs(e[2]-(-6.02)) > 0.05 {
		t.Errorf("half-scale DC level %.2f dB, want -6.02", e[2])
	}
	if math.Abs(e[1]-(-9.03)) > 0.05 { // half the window is outside
		t.Errorf("edge level %.2f dB, want -9.03", e[1])
	}
}

func TestBandPass(t *testing.T) {
	tone := func(hz float64) []int16 {
		a := make([]int16, rate)
		for i := range a {
			a[i] = int16(16000 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		}
		return a
	}
	win := hann(960)
	level := func(hz float64, lo, hi float64) float64 {
		x := BandPass(tone(hz), rate, lo, hi)
		return energyDB(x, rate, []time.Duration{500 * time.Millisecond}, 0, win)[0]
	}
	tests := []struct {
		name     string
		hz       float64
		lo, hi   float64
		min, max float64 // dB relative to the unfiltered tone
	}{
		{"in band", 1700, 1000, 3000, -2.5, 0}, // both skirts: about -1.8 dB
		{"voicing below", 200, 1000, 3000, -100, -50},
		{"fricative above", 6000, 1000, 3000, -100, -30},
		{"edge", 1000, 1000, 3000, -7, -5},
		{"whole band", 200, 0, -1, -0.1, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := level(tt.hz, tt.lo, tt.hi) - level(tt.hz, 0, -1)
			if d < tt.min || d > tt.max {
				t.Errorf("%.0f Hz through %.0f-%.0f Hz: %.1f dB, want %.0f..%.1f", tt.hz, tt.lo, tt.hi, d, tt.min, tt.max)
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sp := talk(rng)
	in := frames(sp, 25, 3, rng)
	in.Audio, in.Rate = voice(rng, sp, 3), rate
	// The lab's experiment options are benchmarked with its variant
	// (lab/livenesseval BenchmarkLvCheck).
	b.Run("default", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Check(in, Config{})
		}
	})
}
