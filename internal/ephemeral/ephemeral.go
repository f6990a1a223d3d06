// Package ephemeral defines TrustID's short-lived key-value state (login
// sessions, challenges, replay caches, rate limits). Backends: memory (one
// process, the embedded default) and redis (any number of nodes). Both pass
// the conformance suite in ephemeraltest.
//
// Contract: safe for concurrent use; keys are opaque strings chosen by callers
// (prefix them by feature); a TTL (or window) of zero or less, or a limit
// below one, is an error wrapping ErrInvalid; expired keys are never
// returned. Counters written by Incr are stored as decimal strings, so Get
// on a counter returns e.g. "42", and Incr on a key holding anything else is
// an error. Allow keeps its windows in a namespace of its own: the same key
// string used with Allow and with Set/Get names two different things.
// Backends copy values in and out: callers may reuse their slices. A call
// with a canceled context fails with an error wrapping context.Canceled.
//
// Keys that a single atomic operation touches together (SetUnless's guard
// and guarded keys) must share a Redis Cluster hash slot: give them the same
// hash tag, a "{...}" part that is the first brace pair of the key (e.g.
// "feature:a:{id}" and "feature:b:{id}").
package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned by Get and Take for a missing or expired key.
var ErrNotFound = errors.New("ephemeral: not found")

// ErrUnavailable is wrapped by a backend's errors that are faults of the
// store itself (Redis down, refusing writes at its memory limit, read-only
// replica): callers answer them as "try again", never as a verdict. It has
// a method Unavailable() bool, which internal/httperr recognises.
var ErrUnavailable error = unavailable{}

type unavailable struct{}

func (unavailable) Error() string     { return "ephemeral: store unavailable" }
func (unavailable) Unavailable() bool { return true }

// ErrInvalid is returned (wrapped) for a TTL or window of zero or less, a
// limit below one, or Incr on a value that is not a decimal integer.
var ErrInvalid = errors.New("ephemeral: invalid argument")

// Write is one value for SetUnless to store under Key for TTL.
type Write struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// Store is a TTL key-value store with atomic take and rate-limit counters.
type Store interface {
	// Set stores value under key for ttl, replacing any previous value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key is absent; it reports whether it stored.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// SetUnless stores, in one round trip to the backend, every write of
	// plain and, atomically with the check, every write of guarded unless
	// the key guard exists; it reports whether guarded was stored (true
	// when guard is absent, even with no guarded writes). guard and the
	// guarded keys must share a hash slot (see the package doc); plain
	// writes may go anywhere and are not atomic with anything (on Redis
	// they are sent before the guarded ones). After an error any of the
	// writes may have been stored. A TTL of zero or less, or a guarded key
	// without guard's hash tag (CheckSlot), fails the call (ErrInvalid)
	// before anything is stored.
	SetUnless(ctx context.Context, guard string, guarded []Write, plain ...Write) (stored bool, err error)
	Get(ctx context.Context, key string) ([]byte, error)
	// Take atomically gets and deletes key: of concurrent takers exactly one wins.
	Take(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the counter at key and returns the new value; a new
	// counter expires after ttl (an existing counter keeps its expiry).
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Allow records one event in a sliding window of length window for key and
	// reports whether the number of events in the window (including this one)
	// is at most limit. A refused event is not counted. retryAfter says when
	// the next event would be allowed (zero if allowed).
	Allow(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, retryAfter time.Duration, err error)
	Ping(ctx context.Context) error
	Close() error
}

// SlotKey is the part of key that picks its Redis Cluster hash slot: the
// content of the first "{...}" pair when it is not empty, else the whole
// key (Redis Cluster specification, "Hash tags"). Backends refuse a
// SetUnless whose guard and guarded keys have different slot keys
// (ErrInvalid), single Redis and memory included, so a missing hash tag
// fails every test instead of only a cluster deployment.
func SlotKey(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// CheckSlot returns an error wrapping ErrInvalid unless every guarded key
// shares guard's slot key.
func CheckSlot(guard string, guarded []Write) error {
	g := SlotKey(guard)
	for _, w := range guarded {
		if SlotKey(w.Key) != g {
			return fmt.Errorf("ephemeral: setunless: %q and %q have no hash tag in common: %w", guard, w.Key, ErrInvalid)
		}
	}
	return nil
}
