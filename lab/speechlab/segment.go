package speechlab

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/trustid/trustid/liveness/speech"
)

// frameSpans returns, per span, the frames [start, end) that FrameLabels
// gives that span (the nearest span centre within the label reach).
func frameSpans(frames int, spans []Span) [][2]int {
	return frameSpansStep(frames, spans, speech.EmbeddingStep)
}

// frameSpansStep is frameSpans for embeddings step mel frames apart.
func frameSpansStep(frames int, spans []Span, step int) [][2]int {
	out := make([][2]int, len(spans))
	for i := range out {
		out[i] = [2]int{-1, -1}
	}
	for t := range frames {
		c := speech.FrameCentreSample(t, step)
		bi, best := -1, math.MaxInt
		for i, s := range spans {
			if c >= s.Start-labelReach && c < s.End+labelReach {
				if d := abs(c - (s.Start+s.End)/2); d < best {
					best, bi = d, i
				}
			}
		}
		if bi < 0 {
			continue
		}
		if out[bi][0] < 0 {
			out[bi][0] = t
		}
		out[bi][1] = t + 1
	}
	return out
}

// fitSegments trains the segment head on every labelled digit segment of
// the training utterances, each once as labelled and twice with both ends
// moved by -1..+1 frames (alignments are not exact), with AdamW on
// mini-batches of 64 (lr 3e-3 cosine, decoupled weight decay wd, 40
// epochs).
func fitSegments(ctx context.Context, rng *rand.Rand, h *speech.Head, exs []example, wd float64, log func(epoch int, loss, acc float64)) *speech.SegmentHead {
	s := &speech.SegmentHead{Margin: 1}
	var xs [][]float32
	var ys []int
	for _, ex := range exs {
		z := h.Standardise(ex.emb)
		for i, sp := range ex.segs {
			if sp[1] <= sp[0] {
				continue
			}
			for r := range 3 {
				a, b := sp[0], sp[1]
				if r > 0 {
					a += rng.IntN(3) - 1
					b += rng.IntN(3) - 1
					if b <= a {
						continue
					}
				}
				x := make([]float32, speech.SegFeatures)
				s.Pool(x, z, [2]int{a, b})
				xs = append(xs, x)
				ys = append(ys, ex.digits[i])
			}
		}
	}
	s.Mean = make([]float32, speech.SegFeatures)
	s.Std = make([]float32, speech.SegFeatures)
	for i := range speech.SegFeatures {
		var sum, sq float64
		for _, x := range xs {
			sum += float64(x[i])
			sq += float64(x[i]) * float64(x[i])
		}
		n := float64(len(xs))
		m := sum / n
		s.Mean[i] = float32(m)
		s.Std[i] = float32(math.Sqrt(max(sq/n-m*m, 1e-8)))
	}
	for _, x := range xs {
		for i := range x {
			x[i] = (x[i] - s.Mean[i]) / s.Std[i]
		}
	}
	s.W = make([]float32, 10*speech.SegFeatures)
	s.B = make([]float32, 10)
	gw := make([]float64, len(s.W))
	gb := make([]float64, 10)
	m1w, m2w := make([]float64, len(s.W)), make([]float64, len(s.W))
	m1b, m2b := make([]float64, 10), make([]float64, 10)
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	const epochs, batch, lr0 = 40, 64, 3e-3
	const b1, b2, eps = 0.9, 0.999, 1e-8
	var out [10]float64
	step := 0
	for epoch := range epochs {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		var loss float64
		var correct int
		for start := 0; start < len(idx); start += batch {
			if ctx.Err() != nil {
				return s
			}
			end := min(start+batch, len(idx))
			clear(gw)
			clear(gb)
			for _, i := range idx[start:end] {
				s.Logits(xs[i], &out)
				loss -= out[ys[i]]
				if argmax(out[:]) == ys[i] {
					correct++
				}
				for c := range 10 {
					g := math.Exp(out[c])
					if c == ys[i] {
						g--
					}
					gb[c] += g
					row := gw[c*speech.SegFeatures : (c+1)*speech.SegFeatures]
					for k, f := range xs[i] {
						row[k] += g * float64(f)
					}
				}
			}
			step++
			bs := float64(end - start)
			lr := lr0 * 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/epochs))
			c1 := 1 - math.Pow(b1, float64(step))
			c2 := 1 - math.Pow(b2, float64(step))
			adam := func(p []float32, g, m1, m2 []float64, decay bool) {
				for i := range p {
					gi := g[i] / bs
					m1[i] = b1*m1[i] + (1-b1)*gi
					m2[i] = b2*m2[i] + (1-b2)*gi*gi
					u := (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + eps)
					if decay {
						u += wd * float64(p[i])
					}
					p[i] -= float32(lr * u)
				}
			}
			adam(s.W, gw, m1w, m2w, true)
			adam(s.B, gb, m1b, m2b, false)
		}
		if log != nil {
			log(epoch+1, loss/float64(len(xs)), float64(correct)/float64(len(xs)))
		}
	}
	return s
}
