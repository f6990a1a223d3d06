//go:build !amd64

package onnx

// flushDenormals runs f as it is: the subnormal penalty measured on x86-64
// (ftz.go) has not been measured elsewhere.
func flushDenormals(f func() error) error { return f() }
