package face

import (
	"os"
	"path/filepath"
	"testing"
)

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

// TestRewritePRelu: every PRelu of the recognition and anti-spoof nets is
// rewritten (their slopes dropped, four new constants each), the other
// nets are left alone, and bytes that are no model are refused. That the
// rewritten nets compute what the originals do is TestRuntimesAgree's and
// TestGolden's (ONNX Runtime runs the rewritten ones).
func TestRewritePRelu(t *testing.T) {
	dir := need(t, "TRUSTID_MODELS")
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
			out, k, err := rewritePRelu(b)
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
		if _, _, err := rewritePRelu(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
