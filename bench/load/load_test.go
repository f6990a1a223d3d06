package load

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRunMixAndReport(t *testing.T) {
	fail := errors.New("refused")
	ops := []Op{
		{Name: "fast", Weight: 3, Do: func(context.Context) error { time.Sleep(time.Millisecond); return nil }},
		{Name: "slow", Weight: 1, Do: func(context.Context) error { time.Sleep(3 * time.Millisecond); return nil }},
		{Name: "broken", Weight: 1, Do: func(context.Context) error { return fail }},
		{Name: "unused", Weight: 0, Do: func(context.Context) error { t.Error("weight 0 ran"); return nil }},
	}
	levels, err := Run(context.Background(), ops, []Level{{2, 300 * time.Millisecond, 0}, {4, 300 * time.Millisecond, 0}}, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(levels) != 2 || levels[1].Concurrency != 4 {
		t.Fatalf("levels = %+v", levels)
	}
	for _, l := range levels {
		fast, slow, broken := l.Ops[0], l.Ops[1], l.Ops[2]
		if fast.OK == 0 || slow.OK == 0 || fast.Failed+slow.Failed != 0 {
			t.Errorf("level %d: %+v %+v", l.Concurrency, fast, slow)
		}
		if broken.OK != 0 || broken.Failed == 0 || broken.FirstError != "refused" {
			t.Errorf("level %d: broken %+v", l.Concurrency, broken)
		}
		if fast.P50 < 1 || slow.P50 < 3 || fast.P50 > fast.P99 || fast.P99 > fast.Max {
			t.Errorf("level %d: percentiles fast %+v slow %+v", l.Concurrency, fast, slow)
		}
		// The mix by count: fast three times as often as slow (by weight).
		if r := float64(fast.OK+fast.Failed) / float64(slow.OK+slow.Failed); r < 1.5 {
			t.Errorf("level %d: fast/slow = %.2f, want about 3", l.Concurrency, r)
		}
	}
	r := &Report{Date: "2026-12-07", Commit: "abc", Machine: "test", Levels: levels}
	r.SetMix(ops)
	svg := r.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not XML: %v", err)
			}
			break
		}
	}
	if !strings.Contains(svg, ">fast<") || !strings.Contains(svg, ">slow<") || strings.Contains(svg, ">broken<") {
		t.Error("SVG legend: want the operations that succeeded")
	}
	if _, err := r.JSON(); err != nil {
		t.Fatal(err)
	}
	capped, err := Run(context.Background(), ops[:1], []Level{{Concurrency: 3, Duration: time.Minute, MaxRequests: 7}}, nil, 1)
	if err != nil || capped[0].Ops[0].OK != 7 {
		t.Errorf("MaxRequests 7: %+v, %v", capped, err)
	}
	if _, err := Run(context.Background(), []Op{{Name: "x", Weight: 0, Do: ops[0].Do}}, []Level{{1, time.Millisecond, 0}}, nil, 1); err == nil {
		t.Error("a mix without weight ran")
	}
}

func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	v, err := ProcCPU(os.Getpid())
	if err != nil || v <= 0 {
		t.Fatalf("ProcCPU = %v, %v", v, err)
	}
}
