package synthvoice

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// tone is a 220 Hz tone with a little noise, at rate for secs seconds.
func tone(rate int, secs, amp float64) []float32 {
	n := int(secs * float64(rate))
	out := make([]float32, n)
	var x uint32 = 7
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = float32(amp*math.Sin(2*math.Pi*220*float64(i)/float64(rate)) + amp*0.01*float64(int32(x>>8))/float64(1<<23))
	}
	return out
}

func TestPrepareBounds(t *testing.T) {
	nan := tone(16000, 2, 0.3)
	nan[100] = float32(math.NaN())
	inf := tone(16000, 2, 0.3)
	inf[5] = float32(math.Inf(-1))
	tests := []struct {
		name string
		pcm  []float32
		rate int
		want error
	}{
		{"empty", nil, 16000, ErrInput},
		{"too short", tone(16000, 0.5, 0.3), 16000, ErrInput},
		{"too long", tone(16000, 12.5, 0.3), 16000, ErrInput},
		{"too long at 48 kHz", tone(48000, 12.1, 0.3), 48000, ErrInput},
		{"rate too low", tone(4000, 2, 0.3), 4000, ErrInput},
		{"rate too high", tone(96000, 2, 0.3), 96000, ErrInput},
		{"rate zero", tone(16000, 2, 0.3), 0, ErrInput},
		{"odd rate", tone(47998, 2, 0.3), 47998, ErrInput},
		{"NaN", nan, 16000, ErrInput},
		{"Inf", inf, 16000, ErrInput},
		{"all zero", make([]float32, 32000), 16000, ErrNoSpeech},
		{"ok 16 kHz", tone(16000, 2, 0.3), 16000, nil},
		{"ok 8 kHz", tone(8000, 2, 0.3), 8000, nil},
		{"ok 44.1 kHz", tone(44100, 2, 0.3), 44100, nil},
		{"ok 48 kHz int16 scale", tone(48000, 2, 9000), 48000, nil},
		{"ok at the upper bound", tone(16000, 12, 0.3), 16000, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := Prepare(tc.pcm, tc.rate)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Prepare: err %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			want := int(float64(len(tc.pcm)) * 16000 / float64(tc.rate))
			if d := len(x) - want; d < -4 || d > 4 {
				t.Errorf("%d samples at 16 kHz, want about %d", len(x), want)
			}
		})
	}
}

// The score must not depend on the recording level: Prepare brings ±1
// floats and int16-scale floats to the same samples.
func TestPrepareLevelInvariant(t *testing.T) {
	a, err := Prepare(tone(16000, 2, 0.01), 16000)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prepare(tone(16000, 2, 20000), 16000)
	if err != nil {
		t.Fatal(err)
	}
	var diff int
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > 2 || d < -2 {
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%d samples differ between levels", diff)
	}
	var peak int16
	for _, v := range a {
		peak = max(peak, v, -v)
	}
	if peak < 14000 || peak > 20000 {
		t.Errorf("peak %d, want about half of full scale", peak)
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add([]byte{}, 16000)
	f.Add(make([]byte, 4*16000), 16000)
	f.Add(binary.LittleEndian.AppendUint32(make([]byte, 4*9000), math.Float32bits(float32(math.NaN()))), 8000)
	f.Add(make([]byte, 4*9000), 8000)
	f.Add(make([]byte, 4*20000), 44100)
	f.Fuzz(func(t *testing.T, b []byte, rate int) {
		pcm := make([]float32, len(b)/4)
		for i := range pcm {
			pcm[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		x, err := Prepare(pcm, rate)
		if err != nil {
			if !errors.Is(err, ErrInput) && !errors.Is(err, ErrNoSpeech) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(x) < 15000 || len(x) > 12*16000+16 {
			t.Fatalf("%d samples out of bounds", len(x))
		}
	})
}

func TestNormalise(t *testing.T) {
	quiet := make([]int16, 16000)
	for i := range quiet {
		quiet[i] = int16(100 * math.Sin(float64(i)/5))
	}
	var in, peak int16
	for _, v := range quiet {
		in = max(in, v, -v)
	}
	for _, v := range Normalise(quiet) {
		peak = max(peak, v, -v)
	}
	if peak != 64*in { // the maximum gain
		t.Errorf("quiet recording peak %d -> %d after normalising, want the gain capped at 64", in, peak)
	}
	if z := Normalise(make([]int16, 10)); slices.ContainsFunc(z, func(v int16) bool { return v != 0 }) {
		t.Error("silence changed")
	}
}

func TestModelArithmetic(t *testing.T) {
	n := len(FeatureNames())
	m := &Model{Features: FeatureNames(), Mean: make([]float64, n), Scale: make([]float64, n), W: make([]float64, n), Threshold: 0.5}
	for i := range m.Scale {
		m.Scale[i] = 2
	}
	m.W[0], m.W[n-1], m.Bias = 1, -2, 0.5
	x := make([]float64, n)
	x[0], x[n-1] = 4, 1
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	// z = (2, ..., 0.5): logit = 2 - 1 + 0.5.
	if got := m.Logit(x); math.Abs(got-1.5) > 1e-12 {
		t.Errorf("logistic regression logit %v, want 1.5", got)
	}
	m.Hidden = [][]float64{make([]float64, n), make([]float64, n)}
	m.Hidden[0][0], m.Hidden[1][0] = 1, -1
	m.HiddenBias = []float64{0, 0.25}
	m.W = []float64{3, 1}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	// hidden = relu(2), relu(-2+0.25) = 2, 0: logit = 6 + 0.5.
	if got := m.Logit(x); math.Abs(got-6.5) > 1e-12 {
		t.Errorf("hidden-layer logit %v, want 6.5", got)
	}
	if p := m.Prob(x); math.Abs(p-1/(1+math.Exp(-6.5))) > 1e-12 {
		t.Errorf("prob %v", p)
	}
	if Sigmoid(-1000) != 0 || Sigmoid(1000) != 1 || math.IsNaN(Sigmoid(-1000)) {
		t.Error("sigmoid not stable at the extremes")
	}
}

func TestModelValidate(t *testing.T) {
	good, err := DefaultModel()
	if err != nil {
		t.Fatalf("committed model: %v", err)
	}
	if good.Threshold <= 0 || good.Threshold >= 1 {
		t.Errorf("committed threshold %v not in (0,1)", good.Threshold)
	}
	if good.Meta.Command == "" || good.Meta.ThresholdRule == "" {
		t.Error("committed model does not say how it was made")
	}
	tests := []struct {
		name   string
		mutate func(m *Model)
	}{
		{"feature renamed", func(m *Model) { m.Features[3] = "x" }},
		{"feature missing", func(m *Model) { m.Features = m.Features[1:] }},
		{"short mean", func(m *Model) { m.Mean = m.Mean[1:] }},
		{"zero scale", func(m *Model) { m.Scale[0] = 0 }},
		{"NaN weight", func(m *Model) { m.W[0] = math.NaN() }},
		{"short weights", func(m *Model) { m.W = m.W[1:] }},
		{"hidden without biases", func(m *Model) { m.Hidden = [][]float64{make([]float64, len(m.Features))} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseModel(defaultModelJSON)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(m)
			if err := m.Validate(); !errors.Is(err, ErrModel) {
				t.Errorf("Validate: %v, want ErrModel", err)
			}
		})
	}
	if _, err := ParseModel([]byte("{")); !errors.Is(err, ErrModel) {
		t.Errorf("truncated JSON: %v", err)
	}
	if _, err := New(Config{Model: good, Threshold: 1.5, Frontend: nopFront{}}); !errors.Is(err, ErrModel) {
		t.Errorf("threshold 1.5: %v", err)
	}
}
