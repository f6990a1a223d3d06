// Package cputime reads the CPU time this process has used, for
// benchmarks that report it per operation: on a shared machine CPU time
// moves far less with the load than wall time does.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is the CPU time (user + system, every thread) this process has
// used so far; 0 if the kernel does not say.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportPerOp reports on b the CPU time since start per iteration, as
// cpu-ms/op. Call it after b.Loop has finished.
func ReportPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(Process()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
