package memory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/ephemeraltest"
)

func TestConformance(t *testing.T) {
	ephemeraltest.Run(t, func(t *testing.T) ephemeral.Store {
		s := New(Options{JanitorInterval: 20 * time.Millisecond})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFake(t *testing.T) (*Store, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	// A long janitor interval: tests call Sweep themselves.
	s := New(Options{Now: clk.Now, JanitorInterval: time.Hour})
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

// TestAllowExact checks the sliding-window log with a fake clock, so the
// decisions and retryAfter values are exact.
func TestAllowExact(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(t)
	const limit, window = 3, 10 * time.Second
	steps := []struct {
		name      string
		advance   time.Duration
		wantOK    bool
		wantRetry time.Duration
	}{
		{"t=0 first", 0, true, 0},
		{"t=2 second", 2 * time.Second, true, 0},
		{"t=5 third", 3 * time.Second, true, 0},
		{"t=6 refused, first leaves at 10", time.Second, false, 4 * time.Second},
		{"t=9.999 still refused", 3999 * time.Millisecond, false, time.Millisecond},
		{"t=10 first left", time.Millisecond, true, 0},
		{"t=10 refused, second leaves at 12", 0, false, 2 * time.Second},
		{"t=12 second left", 2 * time.Second, true, 0},
		{"t=40 all left", 28 * time.Second, true, 0},
		{"t=40 second of fresh window", 0, true, 0},
		{"t=40 third of fresh window", 0, true, 0},
		{"t=40 refused", 0, false, window},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		ok, retry, err := s.Allow(ctx, "k", limit, window)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if ok != st.wantOK || retry != st.wantRetry {
			t.Fatalf("%s: Allow = %v, %v; want %v, %v", st.name, ok, retry, st.wantOK, st.wantRetry)
		}
	}
}

// TestAllowLoweredLimit checks retryAfter when a key's limit shrinks below
// the number of events already in its window.
func TestAllowLoweredLimit(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(t)
	for range 4 {
		if ok, _, _ := s.Allow(ctx, "k", 4, time.Minute); !ok {
			t.Fatal("refused below the limit")
		}
		clk.Advance(time.Second)
	}
	// Events at 0,1,2,3 s; now 4 s. With limit 2 the count must drop to 1,
	// so three must leave: the third (at 2 s) leaves at 62 s.
	ok, retry, err := s.Allow(ctx, "k", 2, time.Minute)
	if err != nil || ok || retry != 58*time.Second {
		t.Fatalf("Allow = %v, %v, %v; want refused, 58s", ok, retry, err)
	}
}

func TestExpiryExact(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(t)
	if err := s.Set(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second - time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get just before expiry: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != ephemeral.ErrNotFound {
		t.Fatalf("Get at expiry: %v, want ErrNotFound", err)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set(ctx, "short", []byte("v"), time.Second))
	must(s.Set(ctx, "long", []byte("v"), time.Hour))
	_, err := s.Incr(ctx, "n", 1, time.Second)
	must(err)
	_, _, err = s.Allow(ctx, "rl", 5, time.Second)
	must(err)
	if got := s.Len(); got != 4 {
		t.Fatalf("Len = %d, want 4", got)
	}
	clk.Advance(2 * time.Second)
	s.Sweep()
	if got := s.Len(); got != 1 {
		t.Fatalf("Len after sweep = %d, want 1 (only the long key)", got)
	}
}

func TestClear(t *testing.T) {
	ctx := context.Background()
	s, _ := newFake(t)
	if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Allow(ctx, "rl", 1, time.Hour); !ok || err != nil {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 0 {
		t.Fatalf("Len after Clear = %d, want 0", got)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Get after Clear = %v, want ErrNotFound", err)
	}
	if ok, _, err := s.Allow(ctx, "rl", 1, time.Hour); !ok || err != nil {
		t.Fatalf("Allow after Clear = %v, %v; want a fresh window", ok, err)
	}
}

func TestJanitorSweeps(t *testing.T) {
	ctx := context.Background()
	s := New(Options{JanitorInterval: 5 * time.Millisecond})
	defer s.Close()
	if err := s.Set(ctx, "k", []byte("v"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("janitor never removed the expired key")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s := New(Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func BenchmarkAllow(b *testing.B) {
	s := New(Options{})
	defer s.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = s.Allow(ctx, "k", 100, time.Second)
	}
}

func BenchmarkSetTake(b *testing.B) {
	s := New(Options{})
	defer s.Close()
	ctx := context.Background()
	v := []byte("challenge")
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Set(ctx, "k", v, time.Minute)
		_, _ = s.Take(ctx, "k")
	}
}
