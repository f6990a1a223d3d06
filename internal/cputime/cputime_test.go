package cputime

import (
	"testing"
	"time"
)

// TestProcessAdvances: spinning for 30 ms of wall time adds CPU time.
func TestProcessAdvances(t *testing.T) {
	c0 := Process()
	x := 0
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
		x++
	}
	if d := Process() - c0; d <= 0 {
		t.Fatalf("CPU time moved by %v after a 30 ms spin (%d turns)", d, x)
	}
}
