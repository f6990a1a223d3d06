// Package bufpool reuses scratch slices from call to call: a recording's
// float copy, a model's input, running sums. The liveness decision used to
// allocate several of a recording's length per check, and on a VM where a
// fresh page costs an 11 us fault (liveness/RESULTS.md) that showed.
package bufpool

import "sync"

// Pool holds slices of T for reuse. The zero value is ready; it is safe
// for concurrent use.
type Pool[T any] struct{ p sync.Pool }

// Get returns a slice of length n: a pooled one with its old contents when
// one is large enough, else a new zeroed one. Give it back with Put.
func (p *Pool[T]) Get(n int) *[]T {
	if b, ok := p.p.Get().(*[]T); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]T, n)
	return &b
}

// Put gives b back; nothing may use it after.
func (p *Pool[T]) Put(b *[]T) { p.p.Put(b) }
