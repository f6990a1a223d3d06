package speech

import (
	"math/rand/v2"
	"testing"
)

// TestPeakLevelMatchesFullHistogram: the min-heap gives the level one
// histogram of every level gives (peakLevelHistogram, the implementation
// before it and its fallback for long recordings) for silence, clicks,
// full-scale and -32768 samples, short recordings (rank 1) and random
// speech-like levels up to 600k samples (past the heap's 512 levels).
func TestPeakLevelMatchesFullHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := [][]int16{nil, make([]int16, 999), make([]int16, 48000), {-32768}, {32767, -32768, 5}, {127, 128, -129}}
	click := make([]int16, 48000)
	click[100], click[200] = 32767, -32768
	cases = append(cases, click)
	for range 200 {
		cases = append(cases, speechLike(rng, 1+rng.IntN(600000), 1+rng.IntN(32768)))
	}
	for i, c := range cases {
		if got, want := PeakLevel(c), peakLevelHistogram(c); got != want {
			t.Fatalf("case %d (%d samples): PeakLevel %d, full histogram %d", i, len(c), got, want)
		}
	}
}

// speechLike is n Gaussian samples of standard deviation amp/4, clipped.
func speechLike(rng *rand.Rand, n, amp int) []int16 {
	x := make([]int16, n)
	for i := range x {
		x[i] = int16(max(-32768, min(32767, int(rng.NormFloat64()*float64(amp)/4))))
	}
	return x
}

// BenchmarkPeakLevel3s: the min-heap against the histogram on 3 s at 16 kHz.
func BenchmarkPeakLevel3s(b *testing.B) {
	x := speechLike(rand.New(rand.NewPCG(5, 6)), 48000, 12000)
	for _, bm := range []struct {
		name string
		f    func([]int16) int
	}{{"heap", PeakLevel}, {"histogram", peakLevelHistogram}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bm.f(x)
			}
		})
	}
}
