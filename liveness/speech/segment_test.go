package speech

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

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
			s.Pool(x, z, tc.sp)
			got := []float64{float64(x[0]), float64(x[EmbeddingDim]), float64(x[2*EmbeddingDim])}
			for i, w := range []float64{tc.mean, tc.mx, tc.std} {
				if math.Abs(got[i]-w) > 1e-5 {
					t.Errorf("feature %d = %v, want %v", i, got[i], w)
				}
			}
		})
	}
}

// TestSegmentHeadJSON: a segment classifier gives log-likelihoods, survives
// a JSON round trip inside a head, and a malformed one is ErrModel.
func TestSegmentHeadJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	s := &SegmentHead{Margin: 1, Mean: vec(SegFeatures), Std: vec(SegFeatures), W: vec(10 * SegFeatures), B: vec(10)}
	h := &Head{Context: 0, Hidden: 1, Mean: vec(EmbeddingDim), Std: vec(EmbeddingDim),
		W1: vec(EmbeddingDim), B1: vec(1), W2: vec(NumClasses), B2: vec(NumClasses), Segment: s}
	z := make([][EmbeddingDim]float32, 6)
	for i := range z {
		copy(z[i][:], vec(EmbeddingDim))
	}
	if ll := s.pathLogLik(z, Path{Digits: []int{3, 7}, Spans: [][2]int{{0, 3}, {3, 6}}}); ll > 0 || math.IsNaN(ll) {
		t.Errorf("path log-likelihood %v", ll)
	}
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
