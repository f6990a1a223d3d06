package onnx

// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
const mxcsrFTZDAZ = 1<<15 | 1<<6

// getMXCSR and setMXCSR read and write the calling thread's SSE/AVX
// control and status register (mxcsr_amd64.s).
func getMXCSR() uint32
func setMXCSR(v uint32)

// flushDenormals sets the calling OS thread's SSE/AVX unit to flush
// subnormal results to zero and to read subnormal operands as zero, and
// returns the previous mode for restoreDenormals. The caller keeps the
// goroutine on its OS thread in between (runtime.LockOSThread), so no other
// goroutine runs in that mode.
func flushDenormals() uint32 {
	old := getMXCSR()
	setMXCSR(old | mxcsrFTZDAZ)
	return old
}

func restoreDenormals(old uint32) { setMXCSR(old) }

// denormalsFlushed reports whether the calling thread flushes subnormals
// (tests).
func denormalsFlushed() bool { return getMXCSR()&mxcsrFTZDAZ == mxcsrFTZDAZ }
