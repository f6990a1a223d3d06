// Package coalesce runs the calls of concurrent callers in batches, one
// round trip per batch: group commit for any backend (a database, Redis).
package coalesce

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// A Group runs calls of one kind (reading an OAuth record, rotating one,
// storing tokens) in batches, one round trip per batch. A call starts its
// batch at once while fewer than limit batches are running (after letting
// callers that are ready to run join it, see Do), so an idle store adds no
// wait; otherwise it queues,
// and when a running batch ends, the queued calls (up to size) run as the
// next batch, led by the first of them. Under load a batch holds the calls
// that arrived while the previous ones ran: one round trip (for a database
// one plan and one commit) for all of them, fewer system calls on both
// sides, and the backend's share of the CPU falls as the load grows.
//
// A queued call waits for its batch whatever its context says (the batch
// it joined may already be running); a batch runs on its leader's context
// values without the leader's cancellation or deadline, bounded by
// batchTimeout.
type Group[In, Out any] struct {
	limit, size int
	run         func(ctx context.Context, calls []*Call[In, Out])

	mu      sync.Mutex
	running int
	queue   []*Call[In, Out]
}

// Call is one caller's part of a batch: run reads In and sets Out and Err.
type Call[In, Out any] struct {
	In  In
	Out Out
	Err error
	// wake receives when Out and Err are set, or when lead is set: this
	// call leads the next batch.
	wake chan struct{}
	lead []*Call[In, Out]
}

// batchTimeout bounds a batch's statement.
const batchTimeout = 30 * time.Second

// New returns a Group running at most limit batches at once, each of at
// most size calls; run does a batch's work, setting every call's Out and
// Err (a batch of one is the idle case: run it as a single call).
func New[In, Out any](limit, size int, run func(context.Context, []*Call[In, Out])) *Group[In, Out] {
	return &Group[In, Out]{limit: max(1, limit), size: max(1, size), run: run}
}

// Do runs in as part of a batch and returns its result. A call whose
// context is already done fails at once with the context's error.
func (c *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	if err := ctx.Err(); err != nil {
		var zero Out
		return zero, err
	}
	me := &Call[In, Out]{In: in, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.running < c.limit {
		// Lead a batch, after yielding the processor once: callers that
		// are ready to run (requests a moment behind this one) reach Do
		// meanwhile and queue, and join this batch instead of waiting for
		// the next. Under load batches grow without any timed wait; on an
		// idle server Gosched returns at once.
		c.running++
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		batch := append([]*Call[In, Out]{me}, c.take(c.size-1)...)
		c.mu.Unlock()
		c.runAndHandOff(ctx, batch)
		return me.Out, me.Err
	}
	c.queue = append(c.queue, me)
	c.mu.Unlock()
	<-me.wake
	if me.lead != nil {
		c.runAndHandOff(ctx, me.lead)
	}
	return me.Out, me.Err
}

// ErrBatchPanicked is the error of the calls of a batch whose run
// panicked; the panic itself goes on in the goroutine that ran it.
var ErrBatchPanicked = errors.New("coalesce: the batch's run panicked")

// runAndHandOff runs batch (its first call is the caller's), wakes the
// others of it, and passes the running slot to the next queued batch,
// even when run panics: a stuck slot would stall every later call.
func (c *Group[In, Out]) runAndHandOff(ctx context.Context, batch []*Call[In, Out]) {
	done := false
	defer func() {
		if !done {
			for _, o := range batch {
				var zero Out
				o.Out, o.Err = zero, ErrBatchPanicked
			}
		}
		for _, o := range batch[1:] {
			o.wake <- struct{}{}
		}
		c.handOff()
	}()
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	c.run(bctx, batch)
	done = true
}

// handOff gives the running slot to the next queued batch, or frees it.
func (c *Group[In, Out]) handOff() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.running--
		c.mu.Unlock()
		return
	}
	next := c.take(c.size)
	c.mu.Unlock()
	next[0].lead = next
	next[0].wake <- struct{}{}
}

// take removes up to n calls from the head of the queue and returns them;
// c.mu must be held.
func (c *Group[In, Out]) take(n int) []*Call[In, Out] {
	n = min(len(c.queue), n)
	out := make([]*Call[In, Out], n)
	copy(out, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	return out
}
