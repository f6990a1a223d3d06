package livenesseval

import (
	"math"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/viseme"
)

// TestSlotSync builds a clip of three words with different loudness
// shapes (one long syllable, two short ones, a short one) and a mouth that
// opens with the sound. A mouth following its own slot's sound scores
// above zero; a mouth that says the first word's shape in the second
// word's slot (its frames swapped) scores below zero; a still mouth or a
// slot without frames is not scored.
func TestSlotSync(t *testing.T) {
	const rate = 16000
	type span struct{ a, b float64 }
	wordA := []span{{0.40, 0.72}}
	wordB := []span{{1.20, 1.32}, {1.44, 1.56}}
	wordC := []span{{2.10, 2.26}}
	var loud []span
	loud = append(append(append(loud, wordA...), wordB...), wordC...)
	audio := make([]int16, 3*rate)
	seed := uint32(1)
	for _, s := range loud {
		for i := int(s.a * rate); i < int(s.b*rate); i++ {
			seed = seed*1664525 + 1013904223
			audio[i] = int16(int32(seed>>16)%8000 - 4000)
		}
	}
	in := func(spans []span, shift float64) []float64 {
		open := make([]float64, 75)
		for i := range open {
			ti := float64(i)*0.04 - shift
			for _, s := range spans {
				if ti >= s.a && ti < s.b {
					open[i] = 0.3
				}
			}
		}
		return open
	}
	clip := func(open []float64, slot viseme.Slot) viseme.Input {
		v := viseme.Input{Audio: audio, Rate: rate, Digits: "7", Slots: []viseme.Slot{slot}}
		for i, o := range open {
			v.Times = append(v.Times, time.Duration(i)*40*time.Millisecond)
			v.Shapes = append(v.Shapes, viseme.Shape{Opening: o, Width: 1, OK: true})
		}
		return v
	}
	slotB := viseme.Slot{Start: 1200 * time.Millisecond, End: 1560 * time.Millisecond}
	genuine := in(loud, 0)
	// The first word's mouth moved into the second word's slot (and the
	// second's into the first's), as lab's real-video-dub swaps frames.
	swapped := append([]float64(nil), genuine...)
	a := in(wordA, 0)
	b := in(wordB, 0)
	aInB := in(wordA, 0.80) // word A's shape starting at 1.20 s
	bInA := in(wordB, -0.80)
	for i := range swapped {
		swapped[i] += aInB[i] + bInA[i] - a[i] - b[i]
	}
	still := make([]float64, 75)
	tests := []struct {
		name      string
		in        viseme.Input
		wantSlots int
		positive  bool
	}{
		{"genuine", clip(genuine, slotB), 1, true},
		{"frames swapped", clip(swapped, slotB), 1, false},
		{"still mouth", clip(still, slotB), 0, false},
		{"slot outside the clip", clip(genuine, viseme.Slot{Start: 5 * time.Second, End: 6 * time.Second}), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := SlotSync(tc.in)
			if r.Slots != tc.wantSlots {
				t.Fatalf("slots = %d, want %d (%+v)", r.Slots, tc.wantSlots, r)
			}
			if tc.wantSlots == 0 {
				if !math.IsNaN(r.Score) {
					t.Fatalf("score = %v, want NaN", r.Score)
				}
				return
			}
			if (r.Score > 0) != tc.positive {
				t.Fatalf("score = %.3f (own %.3f, elsewhere %.3f, offset %v), want positive=%v", r.Score, r.Own, r.Elsewhere, r.Offset, tc.positive)
			}
		})
	}
}
