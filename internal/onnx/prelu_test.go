package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRewritePReluFaceMesh: the face mesh's 23 PRelus (slopes [1,C,1,1],
// as internal/tfliteconv writes them) are all rewritten, models without
// PRelu are left byte for byte, and bytes that are no model are refused.
// That the rewritten mesh computes what the original does is
// liveness/facemesh's TestPReluRewriteAgrees.
func TestRewritePReluFaceMesh(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	b, err := os.ReadFile(filepath.Join(dir, "face_mesh.onnx"))
	if err != nil {
		t.Skipf("no face mesh model in TRUSTID_MODELS (%q): %v", dir, err)
	}
	out, k, err := RewritePRelu(b)
	if err != nil {
		t.Fatal(err)
	}
	if k != 23 {
		t.Errorf("rewrote %d PRelus, want 23", k)
	}
	if _, again, err := RewritePRelu(out); err != nil || again != 0 {
		t.Errorf("rewriting the rewritten model: %d PRelus, %v", again, err)
	}
	if mel, err := os.ReadFile(filepath.Join(dir, "melspectrogram.onnx")); err == nil {
		if _, k, err := RewritePRelu(mel); err != nil || k != 0 {
			t.Errorf("mel model: rewrote %d, %v", k, err)
		}
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} {
		if _, _, err := RewritePRelu(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
