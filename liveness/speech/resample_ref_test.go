package speech

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestResampleMatchesReference: Resample gives, bit for bit, what the
// one-tap-at-a-time loop below (the code before the interior fast path and
// the four outputs at once) gives, for the rate pairs the service and the synthetic-voice check use,
// on noise, a loud tone and inputs shorter than the filter.
func TestResampleMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, rates := range [][2]int{{16000, 8000}, {8000, 16000}, {16000, 4000}, {44100, 16000}, {48000, 16000}, {22050, 16000}, {16000, 11025}} {
		for _, n := range []int{5, 100, 300, 16000, 16003} {
			pcm := make([]int16, n)
			for i := range pcm {
				if i%2 == 0 {
					pcm[i] = int16(rng.IntN(65536) - 32768)
				} else {
					pcm[i] = int16(30000 * math.Sin(float64(i)*0.3))
				}
			}
			got, err := Resample(pcm, rates[0], rates[1])
			if err != nil {
				t.Fatal(err)
			}
			want, err := resampleReference(pcm, rates[0], rates[1])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%v, %d samples: %d out, want %d", rates, n, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%v, %d samples: sample %d = %d, want %d", rates, n, i, got[i], want[i])
				}
			}
		}
	}
}

func BenchmarkResample16kTo8k(b *testing.B) {
	pcm := make([]int16, 3*SampleRate)
	for i := range pcm {
		pcm[i] = int16(20000 * math.Sin(float64(i)*0.05))
	}
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			if _, err := resampleReference(pcm, SampleRate, 8000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("four at once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Resample(pcm, SampleRate, 8000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func resampleReference(pcm []int16, from, to int) ([]int16, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("speech: resample %d Hz -> %d Hz: rates must be positive", from, to)
	}
	if from == to {
		return append([]int16(nil), pcm...), nil
	}
	g := gcd(from, to)
	up, down := to/g, from/g // output n sits at input position n*down/up
	if up > 4096 {
		return nil, fmt.Errorf("speech: resample %d Hz -> %d Hz: ratio too awkward", from, to)
	}
	const zeros = 32
	const beta = 8.6
	// Cut-off in cycles per input sample.
	fc := 0.5 * 0.95
	if to < from {
		fc *= float64(to) / float64(from)
	}
	half := int(math.Ceil(zeros / (2 * fc)))
	taps := 2*half + 1
	// bank[phase][k] weighs input sample base-half+k for output phase.
	bank := make([][]float64, up)
	i0b := besselI0(beta)
	for ph := range up {
		frac := float64(ph) / float64(up) // fractional input position
		row := make([]float64, taps)
		var sum float64
		for k := range taps {
			x := float64(k-half) - frac
			r := x / float64(half+1)
			if r <= -1 || r >= 1 {
				continue
			}
			w := besselI0(beta*math.Sqrt(1-r*r)) / i0b
			s := 2 * fc
			if x != 0 {
				s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
			}
			row[k] = s * w
			sum += row[k]
		}
		for k := range row {
			row[k] /= sum // unity gain at DC
		}
		bank[ph] = row
	}
	n := int(int64(len(pcm)) * int64(up) / int64(down))
	out := make([]int16, n)
	for i := range n {
		pos := int64(i) * int64(down)
		base := int(pos / int64(up))
		row := bank[pos%int64(up)]
		var acc float64
		start := base - half
		for k, w := range row {
			j := start + k
			if j < 0 || j >= len(pcm) {
				continue
			}
			acc += w * float64(pcm[j])
		}
		out[i] = clip16(acc)
	}
	return out, nil
}

func BenchmarkResample8kTo16k(b *testing.B) {
	pcm := make([]int16, 3*8000)
	for i := range pcm {
		pcm[i] = int16(20000 * math.Sin(float64(i)*0.05))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resample(pcm, 8000, SampleRate); err != nil {
			b.Fatal(err)
		}
	}
}
