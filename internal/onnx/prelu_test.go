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
		if out, k, err := RewritePRelu(mel); err != nil || k != 0 || string(out) != string(mel) {
			t.Errorf("mel model: rewrote %d (%v), same bytes %v", k, err, string(out) == string(mel))
		}
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} {
		if _, _, err := RewritePRelu(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

// ops counts a model's nodes by operator and its initializers.
func ops(t *testing.T, model []byte) (map[string]int, int) {
	t.Helper()
	top, err := fields(model)
	if err != nil {
		t.Fatal(err)
	}
	n, inits := map[string]int{}, 0
	for _, f := range top {
		if f.num != 7 {
			continue
		}
		gf, err := fields(f.val)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gf {
			switch g.num {
			case 1:
				nd, err := parseNode(g.val)
				if err != nil {
					t.Fatal(err)
				}
				n[nd.op]++
			case 5:
				inits++
			}
		}
	}
	return n, inits
}

// TestRewritePReluFaceNets: every PRelu of the recognition and anti-spoof nets is
// rewritten (their slopes dropped, four new constants each), the other
// nets are left alone, and bytes that are no model are refused. That the
// rewritten nets compute what the originals do is authn/face's
// TestRuntimesAgree and TestGolden (ONNX Runtime runs the rewritten ones).
func TestRewritePReluFaceNets(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	if _, err := os.Stat(filepath.Join(dir, "fr_feature.onnx")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no face models in TRUSTID_MODELS (%q): %v", dir, err)
		}
		t.Skipf("no face models in TRUSTID_MODELS (%q): %v", dir, err)
	}
	for _, c := range []struct {
		file  string
		prelu int
	}{{"fr_feature.onnx", 33}, {"fr_liveness.onnx", 33}, {"fr_detect.onnx", 0}, {"fr_landmark.onnx", 0}} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			before, initsBefore := ops(t, b)
			out, k, err := RewritePRelu(b)
			if err != nil {
				t.Fatal(err)
			}
			after, initsAfter := ops(t, out)
			if k != c.prelu || before["PRelu"] != c.prelu || after["PRelu"] != 0 {
				t.Fatalf("rewrote %d; PRelu before %d, after %d; want %d, 0", k, before["PRelu"], after["PRelu"], c.prelu)
			}
			if after["BatchNormalization"]-before["BatchNormalization"] != 2*k || after["Add"]-before["Add"] != k ||
				after["Relu"]-before["Relu"] != k || after["Conv"] != before["Conv"] {
				t.Errorf("ops before %v, after %v", before, after)
			}
			if initsAfter != initsBefore+3*k { // the slope goes, a, 1-a, zeros and variance come
				t.Errorf("initializers: %d before, %d after %d rewrites", initsBefore, initsAfter, k)
			}
		})
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} {
		if _, _, err := RewritePRelu(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
