package challenge

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// fakeStore is an in-memory ephemeral.Store driven by a fake clock.
type fakeStore struct {
	mu     sync.Mutex
	now    func() time.Time
	vals   map[string]fakeEntry
	events map[string][]time.Time
}

type fakeEntry struct {
	v   []byte
	exp time.Time
}

var _ ephemeral.Store = (*fakeStore)(nil)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, vals: map[string]fakeEntry{}, events: map[string][]time.Time{}}
}

func (s *fakeStore) live(key string) (fakeEntry, bool) {
	e, ok := s.vals[key]
	if ok && !s.now().Before(e.exp) {
		delete(s.vals, key)
		return e, false
	}
	return e, ok
}

func (s *fakeStore) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("fake: bad ttl")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key] = fakeEntry{append([]byte(nil), value...), s.now().Add(ttl)}
	return nil
}

func (s *fakeStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	_, ok := s.live(key)
	s.mu.Unlock()
	if ok {
		return false, nil
	}
	return true, s.Set(ctx, key, value, ttl)
}

func (s *fakeStore) SetUnless(_ context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range append(append([]ephemeral.Write(nil), guarded...), plain...) {
		if w.TTL <= 0 {
			return false, errors.New("fake: bad ttl")
		}
	}
	for _, w := range plain {
		s.vals[w.Key] = fakeEntry{append([]byte(nil), w.Value...), s.now().Add(w.TTL)}
	}
	if _, ok := s.live(guard); ok {
		return false, nil
	}
	for _, w := range guarded {
		s.vals[w.Key] = fakeEntry{append([]byte(nil), w.Value...), s.now().Add(w.TTL)}
	}
	return true, nil
}

func (s *fakeStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	return e.v, nil
}

func (s *fakeStore) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	delete(s.vals, key)
	return e.v, nil
}

func (s *fakeStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vals, key)
	return nil
}

func (s *fakeStore) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	var n int64
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(e.v), 10, 64); err != nil {
			return 0, err
		}
	} else {
		e.exp = s.now().Add(ttl)
	}
	n += delta
	s.vals[key] = fakeEntry{[]byte(strconv.FormatInt(n, 10)), e.exp}
	return n, nil
}

func (s *fakeStore) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var kept []time.Time
	for _, t := range s.events[key] {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	if len(kept)+1 > limit {
		s.events[key] = kept
		retry := window
		if len(kept) > 0 {
			retry = kept[0].Add(window).Sub(now)
		}
		return false, retry, nil
	}
	s.events[key] = append(kept, now)
	return true, 0, nil
}

func (s *fakeStore) Ping(context.Context) error { return nil }
func (s *fakeStore) Close() error               { return nil }
