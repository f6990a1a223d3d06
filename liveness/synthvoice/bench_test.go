package synthvoice

import (
	"syscall"
	"testing"
)

// reportCPU reports the process's CPU time (user + system) per iteration
// as cpu-ms/op since start: on a shared machine it moves far less with the
// load than ns/op.
func reportCPU(b *testing.B, start syscall.Rusage) {
	end := rusage(b)
	ms := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e6
	}
	b.ReportMetric((ms(end)-ms(start))/float64(b.N), "cpu-ms/op")
}

func rusage(b *testing.B) syscall.Rusage {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		b.Fatal(err)
	}
	return r
}
