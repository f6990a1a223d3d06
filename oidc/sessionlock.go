package oidc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// A browser session is read, changed and written back by the
// authorizations given in it (rememberGrant) and read, revoked and
// deleted by logout. Without a lock two authorizations finishing at once
// lose one grant (whose access tokens then outlive the logout), and an
// authorization finishing during a logout re-creates the session it
// deleted. sessionLock serialises them per session: a key set by SetNX
// beside the session, holding a random token, that expires by itself
// after sessionLockTTL so a crashed node cannot wedge a session.
//
// The lock key is not touched atomically with the session key by any
// single store call, so it needs no hash tag (package ephemeral's doc):
// the session key predates hash tags and keeps its name for the sessions
// already stored.

// sessionLocker is the part of the ephemeral store a session lock needs.
type sessionLocker interface {
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
}

var _ sessionLocker = ephemeral.Store(nil)

const (
	// sessionLockTTL bounds how long a holder that died keeps the lock.
	// It is far above a critical section's few store round trips (and a
	// logout's revocations); a holder that overran it finds out (held) and
	// fails closed.
	sessionLockTTL = 5 * time.Second
	// sessionLockWait bounds the wait for a busy session's lock.
	sessionLockWait = 2 * time.Second
	// sessionLockBackoff is the longest pause between two tries.
	sessionLockBackoff = 50 * time.Millisecond
)

// errSessionBusy: the session's lock was not free within sessionLockWait.
// errSessionLockLost: the lock expired while held. Both are faults (503):
// nothing that depended on the lock may be reported as done.
var (
	errSessionBusy     = errors.New("oidc: browser session busy")
	errSessionLockLost = errors.New("oidc: browser session lock expired while held")
)

func sessionLockKey(id string) string { return hashKey("oidc:session-lock:", id) }

// sessionLock is a held lock on the browser session named by cookie id.
type sessionLock struct {
	eph   sessionLocker
	key   string
	token []byte
}

// lockSession takes the lock of the browser session named by cookie id,
// retrying with a jittered exponential backoff for at most
// sessionLockWait. A store error, a canceled request or a lock still busy
// after the wait is an error; the caller answers it as a fault.
func lockSession(ctx context.Context, eph sessionLocker, id string) (*sessionLock, error) {
	l := &sessionLock{eph: eph, key: sessionLockKey(id), token: []byte(randomID())}
	deadline := time.Now().Add(sessionLockWait)
	pause := 2 * time.Millisecond
	for {
		ok, err := eph.SetNX(ctx, l.key, l.token, sessionLockTTL)
		if err != nil {
			return nil, fmt.Errorf("oidc: lock session: %w", err)
		}
		if ok {
			return l, nil
		}
		d := pause/2 + rand.N(pause/2+1)
		if time.Now().Add(d).After(deadline) {
			return nil, errSessionBusy
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("oidc: lock session: %w", ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, sessionLockBackoff)
	}
}

// held returns nil if the lock is still this holder's: called before an
// effect that is only safe under the lock is reported as done.
func (l *sessionLock) held(ctx context.Context) error {
	v, err := l.eph.Get(ctx, l.key)
	switch {
	case errors.Is(err, ephemeral.ErrNotFound):
		return errSessionLockLost
	case err != nil:
		return fmt.Errorf("oidc: check session lock: %w", err)
	case !bytes.Equal(v, l.token):
		return errSessionLockLost
	}
	return nil
}

// unlock releases the lock if it is still this holder's. The store has
// no compare-and-delete, so this is a Get then a Delete: a lock that
// expired and was taken by another holder between the two (one round
// trip, at the very end of a TTL this holder already overran and so
// fails closed on) would be deleted, letting a third holder in early. An
// error is returned for logging: the TTL releases the lock anyway.
func (l *sessionLock) unlock(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	v, err := l.eph.Get(ctx, l.key)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("oidc: unlock session: %w", err)
	}
	if !bytes.Equal(v, l.token) {
		return nil
	}
	if err := l.eph.Delete(ctx, l.key); err != nil {
		return fmt.Errorf("oidc: unlock session: %w", err)
	}
	return nil
}

// withSessionLock runs f holding the lock of the browser session named by
// cookie id (lockSession's wait and errors) and releases it after; a
// failed release is only logged, since the lock's TTL frees it anyway.
func withSessionLock(ctx context.Context, eph sessionLocker, log *slog.Logger, id string, f func(lk *sessionLock) error) error {
	lk, err := lockSession(ctx, eph, id)
	if err != nil {
		return err
	}
	defer func() {
		if err := lk.unlock(ctx); err != nil {
			log.Warn("oidc: session lock", "err", err)
		}
	}()
	return f(lk)
}
