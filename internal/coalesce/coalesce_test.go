package coalesce

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroup runs many concurrent calls through a Group whose run
// takes a while: every call gets its own result, never more than limit
// batches run at once, no batch is larger than size, and calls that arrive
// while batches run share them.
func TestGroup(t *testing.T) {
	const calls, limit, size = 200, 2, 16
	var running, maxRunning, batches atomic.Int64
	var mu sync.Mutex
	sizes := map[int]int{}
	c := New(limit, size, func(ctx context.Context, cs []*Call[int, int]) {
		if ctx.Err() != nil {
			t.Error("batch context canceled")
		}
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		batches.Add(1)
		mu.Lock()
		sizes[len(cs)]++
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		for _, x := range cs {
			if x.In%7 == 0 {
				x.Err = errors.New("seven")
			} else {
				x.Out = x.In * 10
			}
		}
		running.Add(-1)
	})
	var wg sync.WaitGroup
	// A caller's cancellation after it joined does not reach the batch.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { time.Sleep(time.Millisecond); cancel() }()
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Do(ctx, i)
			switch {
			case errors.Is(err, context.Canceled):
				// joined after the cancellation: refused before running
			case i%7 == 0 && err == nil:
				t.Errorf("call %d: no error", i)
			case i%7 != 0 && (err != nil || out != i*10):
				t.Errorf("call %d: got %d, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	if m := maxRunning.Load(); m > limit {
		t.Errorf("%d batches ran at once, limit %d", m, limit)
	}
	for n := range sizes {
		if n > size {
			t.Errorf("a batch of %d calls, size %d", n, size)
		}
	}
	if b := batches.Load(); b >= calls/2 {
		t.Errorf("%d batches for %d concurrent calls: they were not shared (sizes %v)", b, calls, sizes)
	}
	if c.running != 0 || len(c.queue) != 0 {
		t.Errorf("left running=%d queued=%d", c.running, len(c.queue))
	}
	if _, err := c.Do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a canceled context: %v", err)
	}
	// Idle again: a lone call runs at once, alone.
	before := batches.Load()
	if out, err := c.Do(context.Background(), 1); err != nil || out != 10 || batches.Load() != before+1 {
		t.Errorf("lone call: %d %v", out, err)
	}
}

// TestGroupSurvivesPanic: a run that panics fails its batch's calls with
// ErrBatchPanicked, the panic reaches the goroutine that ran it, and the
// group goes on serving calls.
func TestGroupSurvivesPanic(t *testing.T) {
	release := make(chan struct{})
	c := New(1, 8, func(ctx context.Context, cs []*Call[int, int]) {
		if cs[0].In == 0 {
			<-release // hold the slot until the others queue
			return
		}
		for _, x := range cs {
			if x.In == 13 {
				panic("thirteen")
			}
			x.Out = x.In
		}
	})
	go c.Do(context.Background(), 0)
	for {
		c.mu.Lock()
		r := c.running
		c.mu.Unlock()
		if r == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	results := make(chan error, 2)
	panics := make(chan any, 2)
	for _, in := range []int{13, 14} {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					panics <- p
				}
			}()
			_, err := c.Do(context.Background(), in)
			results <- err
		}()
	}
	for {
		c.mu.Lock()
		q := len(c.queue)
		c.mu.Unlock()
		if q == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	// 13 leads the batch {13, 14}: it panics, 14 gets the error.
	if p := <-panics; p != "thirteen" {
		t.Errorf("panic %v", p)
	}
	if err := <-results; !errors.Is(err, ErrBatchPanicked) {
		t.Errorf("the other call got %v", err)
	}
	if out, err := c.Do(context.Background(), 5); err != nil || out != 5 {
		t.Errorf("after the panic: %d %v", out, err)
	}
}

// TestLeaderLetsReadyCallersJoin: on one processor, callers that are all
// ready to run reach an idle Group together. The first one leads, but
// yields before it runs, so the others join its batch instead of waiting
// for a second one (without the yield the first batch holds only its
// leader). The scheduler may resume the leader early, so the test looks
// for it in any of a few rounds.
func TestLeaderLetsReadyCallersJoin(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const callers = 8
	joined := false
	for round := 0; round < 5 && !joined; round++ {
		var first atomic.Int64
		c := New(1, 16, func(_ context.Context, cs []*Call[int, int]) {
			first.CompareAndSwap(0, int64(len(cs)))
			for _, x := range cs {
				x.Out = x.In
			}
		})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if out, err := c.Do(context.Background(), i); err != nil || out != i {
					t.Errorf("call %d: %d, %v", i, out, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		joined = first.Load() > 1
	}
	if !joined {
		t.Fatal("the first batch held only its leader in every round")
	}
}
