//go:build amd64

package onnx

import (
	"math"
	"runtime"
	"testing"
)

//go:noinline
func halve(x float32) float32 { return x * 0.5 }

// TestFlushDenormals: inside flushDenormals a subnormal result is flushed
// to zero (so the MXCSR bits took effect on the thread that runs the
// model); after it, the same thread computes IEEE subnormals again.
func TestFlushDenormals(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tiny := float32(math.SmallestNonzeroFloat32 * 4) // subnormal
	if halve(tiny) == 0 {
		t.Fatal("subnormals already flushed before the call")
	}
	var inside float32 = -1
	if err := flushDenormals(func() error { inside = halve(tiny); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != 0 {
		t.Fatalf("inside: %g, want 0 (flushed)", inside)
	}
	if got := halve(tiny); got == 0 {
		t.Fatal("after: subnormal flushed; the control word was not restored")
	}
}
