package sqlstore

import (
	"context"
	"sync"
	"time"
)

// A coalescer runs calls of one kind (reading an OAuth record, rotating
// one) in batches, one statement per batch: group commit at the level of
// the statement. A call starts its batch at once while fewer than limit
// batches are running, so an idle store adds no wait; otherwise it queues,
// and when a running batch ends, the queued calls (up to size) run as the
// next batch, led by the first of them. Under load a batch holds the calls
// that arrived while the previous ones ran: one round trip, one plan and
// one commit (one WAL flush) for all of them, fewer system calls on both
// sides, and the database's share of the CPU falls as the load grows.
//
// A queued call waits for its batch whatever its context says (the batch
// it joined may already be running); a batch runs on its leader's context
// values without the leader's cancellation or deadline, bounded by
// batchTimeout.
type coalescer[In, Out any] struct {
	limit, size int
	// run does the batch's work and fills each call's out and err.
	run func(ctx context.Context, calls []*call[In, Out])

	mu      sync.Mutex
	running int
	queue   []*call[In, Out]
}

// call is one caller's part of a batch.
type call[In, Out any] struct {
	in  In
	out Out
	err error
	// wake receives when out and err are set, or when lead is set: this
	// call leads the next batch.
	wake chan struct{}
	lead []*call[In, Out]
}

// batchTimeout bounds a batch's statement.
const batchTimeout = 30 * time.Second

func newCoalescer[In, Out any](limit, size int, run func(context.Context, []*call[In, Out])) *coalescer[In, Out] {
	return &coalescer[In, Out]{limit: max(1, limit), size: max(1, size), run: run}
}

// do runs in as part of a batch and returns its result.
func (c *coalescer[In, Out]) do(ctx context.Context, in In) (Out, error) {
	me := &call[In, Out]{in: in, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.running < c.limit {
		c.running++
		c.mu.Unlock()
		c.runAndHandOff(ctx, []*call[In, Out]{me})
		return me.out, me.err
	}
	c.queue = append(c.queue, me)
	c.mu.Unlock()
	<-me.wake
	if me.lead != nil {
		c.runAndHandOff(ctx, me.lead)
	}
	return me.out, me.err
}

// runAndHandOff runs batch (its first call is the caller's), wakes the
// others of it, and passes the running slot to the next queued batch.
func (c *coalescer[In, Out]) runAndHandOff(ctx context.Context, batch []*call[In, Out]) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	c.run(bctx, batch)
	cancel()
	for _, o := range batch[1:] {
		o.wake <- struct{}{}
	}
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.running--
		c.mu.Unlock()
		return
	}
	n := min(len(c.queue), c.size)
	next := make([]*call[In, Out], n)
	copy(next, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	c.mu.Unlock()
	next[0].lead = next
	next[0].wake <- struct{}{}
}
