// Package memory is the in-process ephemeral.Store: a mutex-guarded map with
// per-key expiry and a janitor goroutine that drops expired keys (stopped by
// Close). It is the zero-config default for a single node; several nodes
// need the redis backend.
//
// Allow is an exact sliding-window log: each key keeps the timestamps of the
// events it allowed within the last window (at most limit of them), so the
// decision and retryAfter are exact, not a two-bucket approximation. Memory
// per rate-limit key is O(limit).
package memory

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

var _ ephemeral.Store = (*Store)(nil)

// Options configures a Store. The zero value is valid.
type Options struct {
	// Now returns the current time; defaults to time.Now. Tests inject a fake clock.
	Now func() time.Time
	// JanitorInterval is how often expired keys are swept; defaults to one
	// minute. Zero or less with a nil Now uses the default; expired keys are
	// never returned either way, the janitor only bounds memory.
	JanitorInterval time.Duration
}

type entry struct {
	value   []byte
	expires time.Time
}

// window is the sliding-window log of one Allow key: ascending event times.
type window struct {
	events []time.Time
	length time.Duration
}

// Store is an in-memory ephemeral.Store. Create it with New and Close it to
// stop the janitor. Methods keep working after Close (without the janitor).
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	items   map[string]entry
	windows map[string]*window

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an empty Store and starts its janitor.
func New(opts Options) *Store {
	s := &Store{
		now:     opts.Now,
		items:   make(map[string]entry),
		windows: make(map[string]*window),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	interval := opts.JanitorInterval
	if interval <= 0 {
		interval = time.Minute
	}
	go s.janitor(interval)
	return s
}

func (s *Store) janitor(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes every expired key and every rate-limit window with no event
// left in it. The janitor calls it periodically; tests may call it directly.
func (s *Store) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, e := range s.items {
		if !now.Before(e.expires) {
			delete(s.items, k)
		}
	}
	for k, w := range s.windows {
		if len(w.events) == 0 || !now.Before(w.events[len(w.events)-1].Add(w.length)) {
			delete(s.windows, k)
		}
	}
}

// Len reports the number of keys held (including expired ones not yet swept),
// for tests and metrics.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items) + len(s.windows)
}

// Clear deletes every key and rate-limit window, as a restarted process or
// a flushed Redis would have them (redis.Store.Clear is the same for a
// prefix); tests use it to lose the store's memory.
func (s *Store) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.items)
	clear(s.windows)
	return nil
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: %s: ttl %v: %w", op, ttl, ephemeral.ErrInvalid)
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}

// get returns the live entry at key; the caller holds mu.
func (s *Store) get(key string, now time.Time) (entry, bool) {
	e, ok := s.items[key]
	if !ok {
		return entry{}, false
	}
	if !now.Before(e.expires) {
		delete(s.items, key)
		return entry{}, false
	}
	return e, true
}

// put stores value under key until now+ttl; s.mu must be held.
func (s *Store) put(key string, value []byte, ttl time.Duration, now time.Time) {
	s.items[key] = entry{value: clone(value), expires: now.Add(ttl)}
}

// Set implements ephemeral.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, value, ttl, s.now())
	return nil
}

// SetNX implements ephemeral.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, ok := s.get(key, now); ok {
		return false, nil
	}
	s.put(key, value, ttl, now)
	return true, nil
}

// SetUnless implements ephemeral.Store: the guard check and every write
// happen under one hold of the lock.
func (s *Store) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	for _, ws := range [][]ephemeral.Write{guarded, plain} {
		for _, w := range ws {
			if err := checkTTL("setunless", w.TTL); err != nil {
				return false, err
			}
		}
	}
	if err := ephemeral.CheckSlot(guard, guarded); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, w := range plain {
		s.put(w.Key, w.Value, w.TTL, now)
	}
	if _, ok := s.get(guard, now); ok {
		return false, nil
	}
	for _, w := range guarded {
		s.put(w.Key, w.Value, w.TTL, now)
	}
	return true, nil
}

// Get implements ephemeral.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key, s.now())
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	return clone(e.value), nil
}

// Take implements ephemeral.Store.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key, s.now())
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	delete(s.items, key)
	// The entry leaves the map, so its slice can be handed out uncopied.
	return e.value, nil
}

// Delete implements ephemeral.Store. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, key)
	return nil
}

// Incr implements ephemeral.Store.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e, ok := s.get(key, now)
	var n int64
	if ok {
		var err error
		n, err = strconv.ParseInt(string(e.value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memory: incr %q: value is not an integer: %w", key, ephemeral.ErrInvalid)
		}
		if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
			return 0, fmt.Errorf("memory: incr %q: overflow: %w", key, ephemeral.ErrInvalid)
		}
	} else {
		e.expires = now.Add(ttl)
	}
	n += delta
	e.value = strconv.AppendInt(nil, n, 10)
	s.items[key] = e
	return n, nil
}

// Allow implements ephemeral.Store with an exact sliding-window log.
func (s *Store) Allow(ctx context.Context, key string, limit int, win time.Duration) (bool, time.Duration, error) {
	if win <= 0 || limit < 1 {
		return false, 0, fmt.Errorf("memory: allow: limit %d window %v: %w", limit, win, ephemeral.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	w := s.windows[key]
	if w == nil {
		w = &window{}
		s.windows[key] = w
	}
	w.length = win
	// Drop events that left the window: an event at t counts while now < t+win.
	i := 0
	for i < len(w.events) && !now.Before(w.events[i].Add(win)) {
		i++
	}
	w.events = w.events[i:]
	if len(w.events) < limit {
		w.events = append(w.events, now)
		return true, 0, nil
	}
	// Refused: the next event is allowed once enough events leave the window
	// for the count to drop to limit-1, i.e. when event len-limit expires.
	retry := w.events[len(w.events)-limit].Add(win).Sub(now)
	return false, retry, nil
}

// Ping implements ephemeral.Store; the memory store is always reachable.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close stops the janitor and waits for it to exit. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}
