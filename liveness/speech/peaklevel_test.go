package speech

import (
	"math/rand/v2"
	"testing"
)

// peakLevelFull is PeakLevel as one histogram of every level (the
// implementation before the two-pass one), kept as its reference.
func peakLevelFull(pcm []int16) int {
	var hist [32769]int
	for _, v := range pcm {
		hist[abs16(v)]++
	}
	skip := len(pcm) / 1000
	for a := len(hist) - 1; a > 0; a-- {
		if skip -= hist[a]; skip < 0 {
			return a
		}
	}
	return 0
}

// TestPeakLevelMatchesFullHistogram: the same level as one full histogram
// for silence, clicks, full-scale and -32768 samples, short recordings
// (skip 0) and random speech-like levels.
func TestPeakLevelMatchesFullHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := [][]int16{nil, make([]int16, 999), make([]int16, 48000), {-32768}, {32767, -32768, 5}, {127, 128, -129}}
	click := make([]int16, 48000)
	click[100], click[200] = 32767, -32768
	cases = append(cases, click)
	for range 200 {
		n := 1 + rng.IntN(600000)
		amp := 1 + rng.IntN(32768)
		x := make([]int16, n)
		for i := range x {
			x[i] = int16(max(-32768, min(32767, int(rng.NormFloat64()*float64(amp)/4))))
		}
		cases = append(cases, x)
	}
	for i, c := range cases {
		if got, want := PeakLevel(c), peakLevelFull(c); got != want {
			t.Fatalf("case %d (%d samples): PeakLevel %d, full histogram %d", i, len(c), got, want)
		}
		if got, want := peakLevelHistogram(c), peakLevelFull(c); got != want {
			t.Fatalf("case %d (%d samples): peakLevelHistogram %d, full histogram %d", i, len(c), got, want)
		}
	}
}

func BenchmarkPeakLevel3s(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]int16, 48000)
	for i := range x {
		x[i] = int16(rng.NormFloat64() * 3000)
	}
	b.ReportAllocs()
	for b.Loop() {
		PeakLevel(x)
	}
}

func BenchmarkPeakLevelFull3s(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]int16, 48000)
	for i := range x {
		x[i] = int16(rng.NormFloat64() * 3000)
	}
	b.ReportAllocs()
	for b.Loop() {
		peakLevelFull(x)
	}
}
