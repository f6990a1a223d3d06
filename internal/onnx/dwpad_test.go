package onnx_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/onnx"
)

// TestRewriteDepthwisePad: the anti-spoof net's 15 bottlenecks whose
// channels do not fill 16-float blocks are padded, and its logits stay
// those of the pinned bytes to within float rounding on ONNX Runtime (with
// the PRelu rewrite after it, as authn/face loads it); the other models
// have none and are left byte for byte.
func TestRewriteDepthwisePad(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	raw, err := os.ReadFile(filepath.Join(dir, "fr_liveness.onnx"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no fr_liveness.onnx in TRUSTID_MODELS (%q): %v", dir, err)
		}
		t.Skipf("no fr_liveness.onnx in TRUSTID_MODELS (%q): %v", dir, err)
	}
	padded, k, err := onnx.RewriteDepthwisePad(raw)
	if err != nil || k != 15 {
		t.Fatalf("padded %d bottlenecks (%v), want 15", k, err)
	}
	if _, again, err := onnx.RewriteDepthwisePad(padded); err != nil || again != 0 {
		t.Errorf("padding the padded model: %d, %v", again, err)
	}
	fast, _, err := onnx.RewritePRelu(padded)
	if err != nil {
		t.Fatal(err)
	}
	open := func(data []byte) *onnx.Session {
		s, err := onnx.Open(onnx.Config{Library: filepath.Join(dir, onnx.LibraryName), Model: "fr_liveness.onnx", ModelData: data,
			Inputs: []string{"input"}, Outputs: []string{"output"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	orig, rewritten := open(raw), open(fast)
	in := make([]float32, 3*128*128)
	s := uint32(11)
	for i := range in {
		s = s*1664525 + 1013904223
		in[i] = float32(int32(s>>8)%256-128) / 128 // like the engine's (x-127.5)/128 input
	}
	for _, x := range [][]float32{in, make([]float32, len(in))} {
		tensor := onnx.Tensor{Shape: []int64{1, 3, 128, 128}, Float: x}
		a, err := orig.Run(tensor)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rewritten.Run(tensor)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a[0].Float {
			if d := math.Abs(float64(a[0].Float[i] - b[0].Float[i])); d > 1e-4 {
				t.Errorf("logit %d: %v rewritten, %v pinned", i, b[0].Float[i], a[0].Float[i])
			}
		}
	}
	for _, f := range []string{"fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx", "face_mesh.onnx", "embedding_model.onnx"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if out, k, err := onnx.RewriteDepthwisePad(b); err != nil || k != 0 || string(out) != string(b) {
			t.Errorf("%s: padded %d (%v), same bytes %v", f, k, err, string(out) == string(b))
		}
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} {
		if _, _, err := onnx.RewriteDepthwisePad(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
