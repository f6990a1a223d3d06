package speech

import (
	"fmt"
	"math"

	"github.com/trustid/trustid/internal/bufpool"
)

// Scratch of a recording's length (a 3 s clip at 16 kHz is 48000 samples:
// 384 kB as float64, 192 kB as float32), reused instead of allocated per
// call: Resample's float64 copy of its input, and the float32 inputs of the
// mel and VAD models (which ONNX Runtime reads only during the run).
var (
	floatBufs   bufpool.Pool[float64]
	float32Bufs bufpool.Pool[float32]
)

// Resample converts mono 16-bit PCM from one sample rate to another with a
// polyphase Kaiser-windowed sinc filter (32 zero crossings, beta 8.6,
// cut-off at 95 % of the lower Nyquist frequency, i.e. ~80 dB stop band).
//
// Written by hand because no Go resampler is served here and the job is
// small: FSDD is 8 kHz and the speech embedding wants 16 kHz; linear
// interpolation would leave images of the 0-4 kHz band at 4-8 kHz that the
// mel front end would hear as speech energy.
func Resample(pcm []int16, from, to int) ([]int16, error) {
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
	// The samples as float64 once (exact), and no bounds test per tap where
	// the whole filter lies inside the input. Outputs i, i+up, i+2up and
	// i+3up use the same filter row at inputs down apart, so the interior
	// computes four at once: four independent sums, each of the same
	// products added in the same order as one output alone, so the same
	// output bit for bit (TestResampleMatchesReference), without waiting on
	// one addition chain.
	xp := floatBufs.Get(len(pcm))
	defer floatBufs.Put(xp)
	xs := *xp
	for i, v := range pcm {
		xs[i] = float64(v)
	}
	one := func(i int) {
		pos := int64(i) * int64(down)
		base := int(pos / int64(up))
		row := bank[pos%int64(up)]
		var acc float64
		start := base - half
		if start >= 0 && start+len(row) <= len(xs) {
			in := xs[start : start+len(row)]
			for k, w := range row {
				acc += w * in[k]
			}
		} else {
			for k, w := range row {
				j := start + k
				if j < 0 || j >= len(xs) {
					continue
				}
				acc += w * xs[j]
			}
		}
		out[i] = clip16(acc)
	}
	for i0 := 0; i0 < n; i0 += 4 * up {
		for i := i0; i < min(i0+up, n); i++ {
			pos := int64(i) * int64(down)
			start := int(pos/int64(up)) - half
			row := bank[pos%int64(up)]
			if i+3*up >= n || start < 0 || start+3*down+len(row) > len(xs) {
				for m := range 4 {
					if i+m*up < n {
						one(i + m*up)
					}
				}
				continue
			}
			in0 := xs[start:][:len(row)]
			in1 := xs[start+down:][:len(row)]
			in2 := xs[start+2*down:][:len(row)]
			in3 := xs[start+3*down:][:len(row)]
			var a0, a1, a2, a3 float64
			for k, w := range row {
				a0 += w * in0[k]
				a1 += w * in1[k]
				a2 += w * in2[k]
				a3 += w * in3[k]
			}
			out[i], out[i+up], out[i+2*up], out[i+3*up] = clip16(a0), clip16(a1), clip16(a2), clip16(a3)
		}
	}
	return out, nil
}

func clip16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// besselI0 is the zeroth-order modified Bessel function of the first kind
// (power series), for the Kaiser window.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}
