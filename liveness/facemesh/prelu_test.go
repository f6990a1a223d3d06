package facemesh

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/onnx"
)

// TestRewritesAgree: the model as New loads it (onnx.NCHWc: its channel
// paddings as 1x1 convolutions, its PRelus rewritten) gives the same mesh
// as the converted file run as it is, to within float rounding, on a
// face-like input and on noise; and against the model with only its
// PRelus rewritten, to within 1e-4 of a crop pixel.
func TestRewritesAgree(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	model := filepath.Join(dir, ModelFile)
	raw, err := os.ReadFile(model)
	if err != nil {
		t.Skipf("no face mesh model: %v", err)
	}
	rewritten, k, err := onnx.RewritePRelu(raw)
	if err != nil {
		t.Fatal(err)
	}
	if k != 23 {
		t.Errorf("rewrote %d PRelus, want the model's 23", k)
	}
	open := func(data []byte) *onnx.Session {
		s, err := onnx.Open(onnx.Config{Library: filepath.Join(dir, onnx.LibraryName), Model: model, ModelData: data,
			Inputs: []string{inputName}, Outputs: []string{pointsName, presenceName}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if _, pads, err := onnx.RewriteChannelPad(rewritten); err != nil || pads != 3 {
		t.Errorf("rewrote %d channel paddings (%v), want the model's 3", pads, err)
	}
	padded, err := onnx.NCHWc(raw)
	if err != nil {
		t.Fatal(err)
	}
	orig, prelu, fast := open(raw), open(rewritten), open(padded)
	in := make([]float32, InputSize*InputSize*3)
	for y := range InputSize {
		for x := range InputSize {
			dx, dy := float64(x-96), float64(y-100)
			r := math.Sqrt(dx*dx + dy*dy)
			o := (y*InputSize + x) * 3
			in[o] = float32(255-y) / 255
			in[o+1] = float32(x) / 255
			in[o+2] = float32(128+100*math.Cos(r/9)) / 255
		}
	}
	noise := make([]float32, len(in))
	s := uint32(7)
	for i := range noise {
		s = s*1664525 + 1013904223
		noise[i] = float32(s>>8) / (1 << 24)
	}
	// compare fails when an output of got is more than tol from want's and
	// returns the largest difference.
	compare := func(got, want []onnx.Tensor, tol float64, what string) float64 {
		var worst float64
		for o := range want {
			for i := range want[o].Float {
				d := math.Abs(float64(want[o].Float[i] - got[o].Float[i]))
				worst = max(worst, d)
				if d > tol {
					t.Fatalf("output %d[%d]: %v rewritten, %v %s", o, i, got[o].Float[i], want[o].Float[i], what)
				}
			}
		}
		return worst
	}
	var worst, worstPad float64
	for _, x := range [][]float32{in, noise} {
		tensor := onnx.Tensor{Shape: []int64{1, InputSize, InputSize, 3}, Float: x}
		out := make([][]onnx.Tensor, 3)
		for k, s := range []*onnx.Session{orig, prelu, fast} {
			if out[k], err = s.Run(tensor); err != nil {
				t.Fatal(err)
			}
		}
		worstPad = max(worstPad, compare(out[2], out[1], 1e-4, "with the PRelus alone rewritten"))
		// Points are in 192-pixel crop units: 1e-3 of a crop pixel.
		worst = max(worst, compare(out[2], out[0], 1e-3, "as converted"))
	}
	t.Logf("largest difference: %g (against the PRelu rewrite alone: %g)", worst, worstPad)
}
