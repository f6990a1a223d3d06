//go:build !amd64

package onnx

// Off amd64 Config.DenormalsAreZero does nothing: the slow subnormal
// arithmetic it avoids was measured on x86.
func flushDenormals() uint32  { return 0 }
func restoreDenormals(uint32) {}
func denormalsFlushed() bool  { return false }
