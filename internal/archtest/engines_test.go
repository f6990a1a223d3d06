package archtest

import (
	"strings"
	"testing"
)

// TestDecisionTakesEnginesThroughInterfaces: the liveness decision
// (package liveness) declares small interfaces for its engines (speech,
// synthetic voice, faces) and cmd/ plugs the engines in, so the decision
// links neither ONNX Runtime nor OpenCV nor the engine packages that do.
func TestDecisionTakesEnginesThroughInterfaces(t *testing.T) {
	banned := []string{
		"github.com/yalue/onnxruntime_go", "gocv.io/x/gocv",
		module + "/internal/onnx", module + "/liveness/speech", module + "/liveness/synthvoice", module + "/authn/face",
	}
	for _, p := range listPackages(t) {
		if rel(p.path) != "liveness" {
			continue
		}
		for _, d := range p.deps {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("liveness depends on %s (engines come in through its interfaces)", d)
				}
			}
		}
		return
	}
	t.Fatal("package liveness not found")
}
