package facemesh

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trustid/trustid/liveness/media"
)

// TestSampleMatchesReference: the crop sampler returns what the
// one-pixel-at-a-time bilinear sampler below returns, to within float
// rounding (the separable sum rounds differently: at most a few units in
// the last place of values in 0..1), for crops inside, across and outside
// the frame's edges, downsampled and upsampled.
func TestSampleMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := media.Frame{Width: 97, Height: 61, BGR: make([]byte, 97*61*3)}
	for i := range f.BGR {
		f.BGR[i] = byte(rng.IntN(256))
	}
	got := make([]float32, InputSize*InputSize*3)
	want := make([]float32, InputSize*InputSize*3)
	crops := []Box{{X: 10, Y: 5, W: 40, H: 40}, {X: -20, Y: -13.3, W: 70.7, H: 70.7}, {X: 80.2, Y: 50.9, W: 33, H: 33},
		{X: 0, Y: 0, W: 200, H: 200}, {X: -500, Y: -500, W: 300, H: 300}, {X: 3.25, Y: 2.75, W: 9, H: 9},
		{X: -100, Y: -150, W: 400, H: 400}}
	for range 50 {
		crops = append(crops, Box{X: rng.Float64()*140 - 40, Y: rng.Float64()*100 - 40, W: 5 + rng.Float64()*120})
	}
	for _, c := range crops {
		c.H = c.W
		sample(f, c, got)
		sampleReference(f, c, want)
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-6 {
				t.Fatalf("crop %+v: value %d = %v, reference %v (difference %.2g)", c, i, got[i], want[i], d)
			}
		}
	}
}

func BenchmarkSample(b *testing.B) {
	f := media.Frame{Width: 360, Height: 288, BGR: make([]byte, 360*288*3)}
	dst := make([]float32, InputSize*InputSize*3)
	for b.Loop() {
		sample(f, Box{X: 120, Y: 60, W: 150, H: 150}, dst)
	}
}

// sample fills dst (192x192x3, NHWC, RGB 0..1) with the crop of f,
// bilinearly interpolated at pixel centres; pixels outside f are black.
func sampleReference(f media.Frame, crop Box, dst []float32) {
	step := crop.W / InputSize
	w, h := f.Width, f.Height
	const inv = 1.0 / 255
	px := func(x, y int) (float32, float32, float32) {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 0, 0, 0
		}
		o := (y*w + x) * 3
		return float32(f.BGR[o+2]), float32(f.BGR[o+1]), float32(f.BGR[o])
	}
	for j := range InputSize {
		sy := crop.Y + (float64(j)+0.5)*step - 0.5
		y := int(math.Floor(sy))
		fy := float32(sy - float64(y))
		for i := range InputSize {
			sx := crop.X + (float64(i)+0.5)*step - 0.5
			x := int(math.Floor(sx))
			fx := float32(sx - float64(x))
			r00, g00, b00 := px(x, y)
			r10, g10, b10 := px(x+1, y)
			r01, g01, b01 := px(x, y+1)
			r11, g11, b11 := px(x+1, y+1)
			w00, w10, w01, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
			o := (j*InputSize + i) * 3
			dst[o] = (r00*w00 + r10*w10 + r01*w01 + r11*w11) * inv
			dst[o+1] = (g00*w00 + g10*w10 + g01*w01 + g11*w11) * inv
			dst[o+2] = (b00*w00 + b10*w10 + b01*w01 + b11*w11) * inv
		}
	}
}

func BenchmarkSampleReference(b *testing.B) {
	f := media.Frame{Width: 360, Height: 288, BGR: make([]byte, 360*288*3)}
	dst := make([]float32, InputSize*InputSize*3)
	for b.Loop() {
		sampleReference(f, Box{X: 120, Y: 60, W: 150, H: 150}, dst)
	}
}
