package speech

import "math"

// SegFeatures is the width of a pooled segment: mean, max and standard
// deviation of the standardised embeddings over the segment's frames.
const SegFeatures = 3 * EmbeddingDim

// SegmentHead is the second-stage classifier: multinomial logistic
// regression over the pooled embeddings of one aligned digit segment
// (widened by Margin frames each side), with a softmax over the 10 digits.
// A whole segment is classified at once, which the frame head cannot do.
type SegmentHead struct {
	Margin int
	Mean   []float32 // per pooled feature
	Std    []float32
	W      []float32 // 10 x SegFeatures, row-major
	B      []float32 // 10
}

type segmentJSON struct {
	Margin int    `json:"margin"`
	Mean   string `json:"mean_f32le_b64"`
	Std    string `json:"std_f32le_b64"`
	W      string `json:"w_f32le_b64"`
	B      string `json:"b_f32le_b64"`
}

func (s *SegmentHead) toJSON() *segmentJSON {
	if s == nil {
		return nil
	}
	return &segmentJSON{Margin: s.Margin, Mean: encF32(s.Mean), Std: encF32(s.Std), W: encF32(s.W), B: encF32(s.B)}
}

func (j *segmentJSON) decode() (*SegmentHead, error) {
	if j == nil {
		return nil, nil
	}
	s := &SegmentHead{Margin: min(max(j.Margin, 0), 4)}
	for _, f := range []struct {
		dst *[]float32
		src string
		n   int
	}{{&s.Mean, j.Mean, SegFeatures}, {&s.Std, j.Std, SegFeatures}, {&s.W, j.W, 10 * SegFeatures}, {&s.B, j.B, 10}} {
		v, err := decF32(f.src, f.n)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	return s, nil
}

// Pool writes the pooled features of frames [sp[0]-Margin, sp[1]+Margin)
// of z (clipped to z) into x (length SegFeatures), standardised by Mean and
// Std when they are set.
func (s *SegmentHead) Pool(x []float32, z [][EmbeddingDim]float32, sp [2]int) {
	a, b := max(sp[0]-s.Margin, 0), min(sp[1]+s.Margin, len(z))
	if b <= a {
		a, b = min(max(sp[0], 0), len(z)-1), min(max(sp[0], 0), len(z)-1)+1
	}
	n := float32(b - a)
	for d := range EmbeddingDim {
		var sum, sq float32
		mx := float32(math.Inf(-1))
		for t := a; t < b; t++ {
			v := z[t][d]
			sum += v
			sq += v * v
			mx = max(mx, v)
		}
		m := sum / n
		x[d] = m
		x[EmbeddingDim+d] = mx
		x[2*EmbeddingDim+d] = float32(math.Sqrt(float64(max(sq/n-m*m, 0))))
	}
	if s.Mean != nil {
		for i := range x {
			x[i] = (x[i] - s.Mean[i]) / s.Std[i]
		}
	}
}

// Logits computes the log-softmax over the 10 digits for pooled features x
// (Pool).
func (s *SegmentHead) Logits(x []float32, out *[10]float64) {
	for c := range 10 {
		w := s.W[c*SegFeatures : (c+1)*SegFeatures]
		v := s.B[c]
		for i, f := range x {
			v += w[i] * f
		}
		out[c] = float64(v)
	}
	logSoftmax(out[:])
}

// LogProbs returns the log probability of each digit for the segment
// [sp[0], sp[1]) of the standardised embeddings z.
func (s *SegmentHead) LogProbs(z [][EmbeddingDim]float32, sp [2]int) [10]float64 {
	x := make([]float32, SegFeatures)
	s.Pool(x, z, sp)
	var out [10]float64
	s.Logits(x, &out)
	return out
}

// pathLogLik sums the segment log probabilities of a path's digits.
func (s *SegmentHead) pathLogLik(z [][EmbeddingDim]float32, p Path) float64 {
	var sum float64
	for k, sp := range p.Spans {
		if sp[1] <= sp[0] || k >= len(p.Digits) {
			return math.Inf(-1)
		}
		lp := s.LogProbs(z, sp)
		sum += lp[p.Digits[k]]
	}
	return sum
}
