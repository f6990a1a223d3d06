package speechlab

import (
	"context"
	"testing"

	"github.com/trustid/trustid/liveness/speech"
)

func TestFrameSpansMatchLabels(t *testing.T) {
	spans := []Span{{Digit: 3, Start: 4000, End: 9000}, {Digit: 3, Start: 9500, End: 15000}, {Digit: 7, Start: 20000, End: 26000}}
	const frames = 60
	labels := FrameLabels(frames, spans)
	fs := frameSpans(frames, spans)
	for i, sp := range fs {
		if sp[1] <= sp[0] {
			t.Fatalf("span %d has no frames: %v", i, sp)
		}
		for f := sp[0]; f < sp[1]; f++ {
			if labels[f] != spans[i].Digit {
				t.Errorf("frame %d of span %d labelled %d", f, i, labels[f])
			}
		}
	}
	if fs[0][1] > fs[1][0] || fs[1][1] > fs[2][0] {
		t.Errorf("spans overlap or are out of order: %v", fs)
	}
}

// TestFrameLabelsStep: at a 40 ms hop, frame 2i has frame i's centre at 80 ms.
func TestFrameLabelsStep(t *testing.T) {
	spans := []Span{{Digit: 3, Start: 4000, End: 9000}, {Digit: 7, Start: 9500, End: 15000}}
	l8 := FrameLabels(30, spans)
	l4 := frameLabels(60, spans, 4)
	for i, y := range l8 {
		if l4[2*i] != y {
			t.Errorf("frame %d: step 8 label %d, step 4 frame %d label %d", i, y, 2*i, l4[2*i])
		}
	}
	s4 := frameSpansStep(60, spans, 4)
	for i, sp := range s4 {
		for f := sp[0]; f < sp[1]; f++ {
			if l4[f] != spans[i].Digit {
				t.Errorf("step 4: frame %d of span %d labelled %d", f, i, l4[f])
			}
		}
	}
}

// separable makes utterances whose digit segments carry the digit in
// embedding dimension d (value 3, noise elsewhere).
func separable(n int) []example {
	rng := NewRand(9)
	var exs []example
	for range n {
		var ex example
		for range 3 {
			d := rng.IntN(10)
			start := len(ex.emb)
			for range 4 {
				var e [speech.EmbeddingDim]float32
				for i := range e {
					e[i] = float32(rng.NormFloat64())
				}
				e[d] += 3
				ex.emb = append(ex.emb, e)
			}
			ex.segs = append(ex.segs, [2]int{start, start + 4})
			ex.digits = append(ex.digits, d)
		}
		exs = append(exs, ex)
	}
	return exs
}

func TestFitSegmentsLearns(t *testing.T) {
	h := &speech.Head{Mean: make([]float32, speech.EmbeddingDim), Std: make([]float32, speech.EmbeddingDim)}
	for i := range h.Std {
		h.Std[i] = 1
	}
	s := fitSegments(context.Background(), NewRand(1), h, separable(100), DefaultSegmentDecay, nil)
	test := separable(20)
	correct, total := 0, 0
	for _, ex := range test {
		for i, sp := range ex.segs {
			lp := s.LogProbs(ex.emb, sp)
			if argmax(lp[:]) == ex.digits[i] {
				correct++
			}
			total++
		}
	}
	if acc := float64(correct) / float64(total); acc < 0.9 {
		t.Errorf("segment accuracy %.2f on a separable problem", acc)
	}
}
