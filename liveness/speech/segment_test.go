package speech

import (
	"context"
	"errors"
	"math"
	"testing"
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

func TestSegmentPool(t *testing.T) {
	z := make([][EmbeddingDim]float32, 6)
	for i := range z {
		z[i][0] = float32(i)
	}
	tests := []struct {
		name          string
		margin        int
		sp            [2]int
		mean, mx, std float64
	}{
		{"inside", 0, [2]int{1, 4}, 2, 3, math.Sqrt(2.0 / 3)},
		{"margin clipped", 1, [2]int{0, 2}, 1, 2, math.Sqrt(2.0 / 3)},
		{"empty span", 0, [2]int{2, 2}, 2, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &SegmentHead{Margin: tc.margin}
			x := make([]float32, SegFeatures)
			s.pool(x, z, tc.sp)
			got := []float64{float64(x[0]), float64(x[EmbeddingDim]), float64(x[2*EmbeddingDim])}
			for i, w := range []float64{tc.mean, tc.mx, tc.std} {
				if math.Abs(got[i]-w) > 1e-5 {
					t.Errorf("feature %d = %v, want %v", i, got[i], w)
				}
			}
		})
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
				var e [EmbeddingDim]float32
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
	h := &Head{Mean: make([]float32, EmbeddingDim), Std: make([]float32, EmbeddingDim)}
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
		p := Path{Digits: ex.digits, Spans: ex.segs}
		if ll := s.pathLogLik(ex.emb, p); ll > 0 || math.IsNaN(ll) {
			t.Errorf("path log-likelihood %v", ll)
		}
	}
	if acc := float64(correct) / float64(total); acc < 0.9 {
		t.Errorf("segment accuracy %.2f on a separable problem", acc)
	}
	// JSON round trip inside a head.
	h.Context, h.Hidden = 0, 1
	h.W1, h.B1 = make([]float32, EmbeddingDim), make([]float32, 1)
	h.W2, h.B2 = make([]float32, NumClasses), make([]float32, NumClasses)
	h.Segment = s
	b, err := h.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var g Head
	if err := g.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if g.Segment == nil || g.Segment.Margin != s.Margin || g.Segment.W[17] != s.W[17] || g.Segment.Std[5] != s.Std[5] {
		t.Error("segment head changed in a JSON round trip")
	}
	bad := []byte(`{"version":1,"classes":11,"context":0,"hidden":1,` +
		`"mean_f32le_b64":"` + encF32(h.Mean) + `","std_f32le_b64":"` + encF32(h.Std) + `",` +
		`"w1_f32le_b64":"` + encF32(h.W1) + `","b1_f32le_b64":"` + encF32(h.B1) + `",` +
		`"w2_f32le_b64":"` + encF32(h.W2) + `","b2_f32le_b64":"` + encF32(h.B2) + `",` +
		`"segment":{"margin":1,"w_f32le_b64":"AAAA"}}`)
	if err := g.UnmarshalJSON(bad); !errors.Is(err, ErrModel) {
		t.Errorf("malformed segment head: err = %v, want ErrModel", err)
	}
}
