package speech

import (
	"math"
	"testing"
)

// goertzelPower is the power of x at frequency f (Hz) for sample rate sr.
func goertzelPower(x []int16, f float64, sr int) float64 {
	w := 2 * math.Pi * f / float64(sr)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + 2*math.Cos(w)*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - 2*math.Cos(w)*s1*s2
}

func sine(f float64, sr, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*f*float64(i)/float64(sr)))
	}
	return out
}

func TestResampleKeepsFrequency(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		f        float64
	}{
		{"8k to 16k, 1 kHz", 8000, 16000, 1000},
		{"8k to 16k, 3.1 kHz", 8000, 16000, 3100},
		{"22.05k to 16k, 440 Hz", 22050, 16000, 440},
		{"16k to 8k, 2 kHz", 16000, 8000, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sine(tt.f, tt.from, tt.from/2, 10000)
			out, err := Resample(in, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(in) * tt.to / tt.from; len(out) != want {
				t.Fatalf("len = %d, want %d", len(out), want)
			}
			// Skip the filter's edge transient.
			mid := out[len(out)/8 : len(out)*7/8]
			at := goertzelPower(mid, tt.f, tt.to)
			// Energy at a wrong frequency (an octave up, or the image
			// around the old Nyquist for up-sampling) must be tiny.
			wrong := []float64{tt.f * 1.5}
			if tt.to > tt.from {
				wrong = append(wrong, float64(tt.from)-tt.f)
			}
			for _, w := range wrong {
				if p := goertzelPower(mid, w, tt.to); p > at*1e-4 {
					t.Errorf("power at %.0f Hz is %.2g of the power at %.0f Hz", w, p/at, tt.f)
				}
			}
			// Amplitude is kept (RMS of a 10000 sine is 7071).
			var s float64
			for _, v := range mid {
				s += float64(v) * float64(v)
			}
			if rms := math.Sqrt(s / float64(len(mid))); math.Abs(rms-7071) > 150 {
				t.Errorf("rms = %.0f, want about 7071", rms)
			}
		})
	}
}

func TestResampleErrors(t *testing.T) {
	if _, err := Resample([]int16{1}, 0, 16000); err == nil {
		t.Error("rate 0 accepted")
	}
	if got, err := Resample([]int16{1, 2}, 16000, 16000); err != nil || len(got) != 2 {
		t.Errorf("same rate: %v %v", got, err)
	}
}
