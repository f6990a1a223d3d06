//go:build amd64

package onnx

/*
#include <xmmintrin.h>

// trustid_ftz_on sets flush-to-zero and denormals-are-zero on this thread
// and returns the control word it replaced.
static unsigned int trustid_ftz_on(void) {
	unsigned int prev = _mm_getcsr();
	_mm_setcsr(prev | 0x8040);
	return prev;
}

static void trustid_csr_restore(unsigned int prev) { _mm_setcsr(prev); }
*/
import "C"

import "runtime"

// flushDenormals runs f on one OS thread with subnormal floats flushed to
// zero (MXCSR FTZ and DAZ), then restores the thread's control word, so Go
// code that runs on the thread later keeps IEEE subnormals.
func flushDenormals(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.trustid_ftz_on()
	defer C.trustid_csr_restore(prev)
	return f()
}
