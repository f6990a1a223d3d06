package storage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/oidc/storage"
)

// refusing refuses every write while refuse is set, as Redis does at its
// memory limit (OOM command not allowed): reads and deletes still work.
type refusing struct {
	ephemeral.Store
	mu     sync.Mutex
	refuse bool
	// afterCommit refuses the next guarded SetUnless only: the write that
	// follows a refresh's durable rotation (commitATs), as when Redis
	// starts refusing between a refresh's two ephemeral writes.
	afterCommit bool
}

var errRefused = errors.New("OOM command not allowed when used memory > 'maxmemory'")

func (r *refusing) set(on bool) { r.mu.Lock(); r.refuse = on; r.mu.Unlock() }

func (r *refusing) refused() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.refuse }

func (r *refusing) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if r.refused() {
		return errRefused
	}
	return r.Store.Set(ctx, k, v, ttl)
}

func (r *refusing) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if r.refused() {
		return false, errRefused
	}
	return r.Store.SetNX(ctx, k, v, ttl)
}

func (r *refusing) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	if r.refused() {
		return false, errRefused
	}
	r.mu.Lock()
	once := r.afterCommit && len(guarded) > 0
	if once {
		r.afterCommit = false
	}
	r.mu.Unlock()
	if once {
		return false, errRefused
	}
	return r.Store.SetUnless(ctx, guard, guarded, plain...)
}

func (r *refusing) Incr(ctx context.Context, k string, d int64, ttl time.Duration) (int64, error) {
	if r.refused() {
		return 0, errRefused
	}
	return r.Store.Incr(ctx, k, d, ttl)
}

// TestRefreshWhileEphemeralRefusesWrites: a refresh that cannot store its
// access token fails without spending the refresh token, so the client's
// retry after the fault works and the family lives on (issue 16, defect 2:
// the rotation used to commit first, and the retry was taken for a reuse).
func TestRefreshWhileEphemeralRefusesWrites(t *testing.T) {
	if atMode == storage.AccessTokensDurable {
		t.Skip("access tokens in the durable store")
	}
	var r *refusing
	f := newRefreshFixtureWith(t, nil, func(e ephemeral.Store) ephemeral.Store { r = &refusing{Store: e}; return r }, nil)
	ctx := storage.WithRefreshGrace(context.Background())
	r.set(true)
	if _, err := f.grant(ctx, f.refresh); err == nil {
		t.Fatal("refresh succeeded while the ephemeral store refused writes")
	}
	r.set(false)
	if _, err := f.s.GetRefreshTokenSession(context.Background(), f.sig, openid.NewDefaultSession()); err != nil {
		t.Fatalf("refresh token after the failed refresh: %v, want still active", err)
	}
	if _, err := f.s.GetAccessTokenSession(context.Background(), "at0", openid.NewDefaultSession()); err != nil {
		t.Fatalf("access token after the failed refresh: %v, want still valid", err)
	}
	resp, err := f.grant(ctx, f.refresh)
	if err != nil {
		t.Fatalf("retry after the fault: %v", err)
	}
	if _, err := f.grant(ctx, resp.GetExtra("refresh_token").(string)); err != nil {
		t.Fatalf("the family was revoked: refresh with the new token: %v", err)
	}
}

// TestRevokeWhileEphemeralRefusesWrites: a family revocation that cannot
// mark the access tokens revoked fails and leaves the refresh token, so
// that a retry finds the family (issue 16, defect 1: the refresh tokens
// were deleted first, and the retry answered 200 while the access token
// stayed valid); once it succeeds, nothing of the family is valid, even
// after the ephemeral store loses its data.
func TestRevokeWhileEphemeralRefusesWrites(t *testing.T) {
	if atMode == storage.AccessTokensDurable {
		t.Skip("access tokens in the durable store")
	}
	var r *refusing
	f := newRefreshFixtureWith(t, nil, func(e ephemeral.Store) ephemeral.Store { r = &refusing{Store: e}; return r }, nil)
	ctx := context.Background()
	r.set(true)
	errA := f.s.RevokeRefreshToken(ctx, "fam")
	errB := f.s.RevokeAccessToken(ctx, "fam")
	if errA == nil || errB == nil {
		t.Fatalf("revocation while the store refuses writes: %v, %v; want errors", errA, errB)
	}
	if _, err := f.s.GetRefreshTokenSession(ctx, f.sig, openid.NewDefaultSession()); err != nil {
		t.Fatalf("refresh token after a failed revocation: %v, want still there (a retry must find it)", err)
	}
	r.set(false)
	if err := f.s.RevokeRefreshToken(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeAccessToken(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GetAccessTokenSession(ctx, "at0", openid.NewDefaultSession()); !gone(err) {
		t.Fatalf("access token after the revocation: %v, want refused", err)
	}
	if _, err := f.s.GetRefreshTokenSession(ctx, f.sig, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("refresh token after the revocation: %v, want not found", err)
	}
}

// TestRefreshGracePeriod: a retry of the refresh token used last, within
// the grace period, gets new tokens and the family lives on; an older
// token, a retry after the window or outside a token request is a reuse
// and ends the family (issue 16, defect 2).
func TestRefreshGracePeriod(t *testing.T) {
	const grace = 5 * time.Second
	type step struct {
		wait  time.Duration // clock advance before the retry
		older bool          // retry the token before the last one
		plain bool          // without WithRefreshGrace (not a token request)
		off   bool          // grace period disabled
	}
	tests := []struct {
		name      string
		s         step
		wantRetry bool // the retry gets tokens and the family lives
	}{
		{name: "retry within the window", s: step{wait: time.Second}, wantRetry: true},
		{name: "retry after the window", s: step{wait: grace + time.Second}},
		{name: "older token within the window", s: step{wait: time.Second, older: true}},
		{name: "not a token request", s: step{wait: time.Second, plain: true}},
		{name: "grace period off", s: step{wait: time.Second, off: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Now().UTC()
			// Each reading advances the clock (a ms): a family's records
			// are never created in the same tick, as on a real clock.
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
			f := newRefreshFixtureWith(t, nil, nil, func(c *storage.Config) {
				c.Clock = clock
				if !tc.s.off {
					c.RefreshGracePeriod = grace
				}
			})
			tokenCtx := storage.WithRefreshGrace(context.Background())
			first, err := f.grant(tokenCtx, f.refresh)
			if err != nil {
				t.Fatal(err)
			}
			retried := f.refresh
			last := first.GetExtra("refresh_token").(string)
			if tc.s.older {
				second, err := f.grant(tokenCtx, last)
				if err != nil {
					t.Fatal(err)
				}
				last = second.GetExtra("refresh_token").(string)
			}
			mu.Lock()
			now = now.Add(tc.s.wait)
			mu.Unlock()
			ctx := tokenCtx
			if tc.s.plain {
				ctx = context.Background()
			}
			retry, err := f.grant(ctx, retried)
			lastSig := f.strat.RefreshTokenSignature(ctx, last)
			if !tc.wantRetry {
				if !errors.Is(err, fosite.ErrInvalidGrant) {
					t.Fatalf("reuse: %v, want invalid_grant", err)
				}
				if _, err := f.s.GetRefreshTokenSession(context.Background(), lastSig, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
					t.Fatalf("family's last refresh token after a reuse: %v, want revoked (not found)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("retry within the grace period: %v", err)
			}
			// The tokens of the lost answer are replaced, as by a rotation.
			if _, err := f.s.GetRefreshTokenSession(context.Background(), lastSig, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrInactiveToken) {
				t.Fatalf("refresh token of the first answer: %v, want rotated", err)
			}
			firstAT := f.strat.AccessTokenSignature(ctx, first.GetAccessToken())
			if _, err := f.s.GetAccessTokenSession(context.Background(), firstAT, openid.NewDefaultSession()); !gone(err) {
				t.Fatalf("access token of the first answer: %v, want refused", err)
			}
			retryAT := f.strat.AccessTokenSignature(ctx, retry.GetAccessToken())
			if _, err := f.s.GetAccessTokenSession(context.Background(), retryAT, openid.NewDefaultSession()); err != nil {
				t.Fatalf("access token of the retry: %v", err)
			}
			// The family lives on: the retry's refresh token refreshes.
			next, err := f.grant(tokenCtx, retry.GetExtra("refresh_token").(string))
			if err != nil {
				t.Fatalf("refresh after the retry: %v", err)
			}
			// A real reuse later still ends the family.
			mu.Lock()
			now = now.Add(grace + time.Second)
			mu.Unlock()
			if _, err := f.grant(tokenCtx, retried); !errors.Is(err, fosite.ErrInvalidGrant) {
				t.Fatalf("reuse after the window: %v, want invalid_grant", err)
			}
			nextSig := f.strat.RefreshTokenSignature(ctx, next.GetExtra("refresh_token").(string))
			if _, err := f.s.GetRefreshTokenSession(context.Background(), nextSig, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("family after a reuse: %v, want revoked", err)
			}
		})
	}
}

// TestRefreshGraceCarriedByFailedRetries: the answer of a refresh is lost,
// and the client's retries fail while the ephemeral store refuses writes
// for longer than the grace period; the first retry after the outage still
// counts as a retry, because each failed retry carried the window forward
// (the fault suite's "Redis refusing writes" scenario ended the family).
func TestRefreshGraceCarriedByFailedRetries(t *testing.T) {
	if atMode == storage.AccessTokensDurable {
		t.Skip("access tokens in the durable store")
	}
	const grace = 5 * time.Second
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var r *refusing
	f := newRefreshFixtureWith(t, nil, func(e ephemeral.Store) ephemeral.Store { r = &refusing{Store: e}; return r },
		func(c *storage.Config) { c.Clock = clock; c.RefreshGracePeriod = grace })
	ctx := storage.WithRefreshGrace(context.Background())
	if _, err := f.grant(ctx, f.refresh); err != nil { // its answer is lost
		t.Fatal(err)
	}
	r.set(true)
	for range 4 { // 4 failed retries, 3 s apart: 12 s in all
		advance(3 * time.Second)
		if _, err := f.grant(ctx, f.refresh); err == nil {
			t.Fatal("retry succeeded while the ephemeral store refused writes")
		}
	}
	r.set(false)
	advance(3 * time.Second)
	retry, err := f.grant(ctx, f.refresh)
	if err != nil {
		t.Fatalf("first retry after a 12 s outage: %v, want the grace answer", err)
	}
	if _, err := f.grant(ctx, retry.GetExtra("refresh_token").(string)); err != nil {
		t.Fatalf("the family was revoked: %v", err)
	}
	// Without retries, the window closes: a reuse long after ends the family.
	advance(grace + time.Second)
	if _, err := f.grant(ctx, f.refresh); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("reuse after the window: %v, want invalid_grant", err)
	}
}

// TestRefreshAnswerLostAfterCommit: Redis starts refusing writes between a
// refresh's durable rotation and its last ephemeral write, so the refresh
// is committed but answered with an error, and the client, whose retries
// fail during the outage, retries last well after the grace period. It
// keeps its family: the server knew the answer was not given (the fault
// suite's "Redis refusing writes" scenario lost one such chain, CI run of
// dd8eb5b). The same holds when the grace retry is itself committed but
// not answered. Once a retry succeeds, a reuse ends the family.
func TestRefreshAnswerLostAfterCommit(t *testing.T) {
	if atMode == storage.AccessTokensDurable {
		t.Skip("access tokens in the durable store")
	}
	const grace = 5 * time.Second
	for _, twice := range []bool{false, true} {
		t.Run(map[bool]string{false: "once", true: "the grace retry lost too"}[twice], func(t *testing.T) {
			var mu sync.Mutex
			now := time.Now().UTC()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			var r *refusing
			f := newRefreshFixtureWith(t, nil, func(e ephemeral.Store) ephemeral.Store { r = &refusing{Store: e}; return r },
				func(c *storage.Config) { c.Clock = clock; c.RefreshGracePeriod = grace })
			ctx := storage.WithRefreshGrace(context.Background())
			r.mu.Lock()
			r.afterCommit = true
			r.mu.Unlock()
			if _, err := f.grant(ctx, f.refresh); err == nil {
				t.Fatal("refresh answered though its last ephemeral write failed")
			}
			if twice {
				advance(time.Second)
				r.mu.Lock()
				r.afterCommit = true
				r.mu.Unlock()
				if _, err := f.grant(ctx, f.refresh); err == nil {
					t.Fatal("grace retry answered though its last ephemeral write failed")
				}
			}
			r.set(true)
			advance(time.Second)
			if _, err := f.grant(ctx, f.refresh); err == nil {
				t.Fatal("retry succeeded while the ephemeral store refused writes")
			}
			r.set(false)
			advance(10 * grace) // the client retries long after its last try
			retry, err := f.grant(ctx, f.refresh)
			if err != nil {
				t.Fatalf("retry after the outage: %v, want tokens (the answer was never given)", err)
			}
			if _, err := f.grant(ctx, retry.GetExtra("refresh_token").(string)); err != nil {
				t.Fatalf("the family was revoked: %v", err)
			}
			advance(grace + time.Second)
			if _, err := f.grant(ctx, f.refresh); !errors.Is(err, fosite.ErrInvalidGrant) {
				t.Fatalf("reuse after a successful retry: %v, want invalid_grant", err)
			}
		})
	}
}

// TestRealRedisRefusingWrites runs the two faults against a redis-server
// of its own at its memory limit (CONFIG SET maxmemory 1), then empties it
// (FLUSHDB): a revoked family stays revoked.
func TestRealRedisRefusingWrites(t *testing.T) {
	srv := redistest.Start(t)
	defer func(m string, o func(*testing.T) ephemeral.Store) { atMode, openEphemeral = m, o }(atMode, openEphemeral)
	atMode = storage.AccessTokensEphemeral
	openEphemeral = func(t *testing.T) ephemeral.Store { return srv.Open(t) }
	f := newRefreshFixture(t, nil)
	ctx := storage.WithRefreshGrace(context.Background())

	srv.Do(t, "CONFIG", "SET", "maxmemory", "1")
	if _, err := f.grant(ctx, f.refresh); err == nil {
		t.Fatal("refresh succeeded while Redis refused writes")
	}
	if err := f.s.RevokeRefreshToken(context.Background(), "fam"); err == nil {
		t.Fatal("revocation succeeded while Redis refused writes")
	}
	srv.Do(t, "CONFIG", "SET", "maxmemory", "0")
	resp, err := f.grant(ctx, f.refresh)
	if err != nil {
		t.Fatalf("refresh after the fault: %v (the fault spent the token)", err)
	}
	at := f.strat.AccessTokenSignature(ctx, resp.GetAccessToken())
	if err := f.s.RevokeRefreshToken(context.Background(), "fam"); err != nil {
		t.Fatal(err)
	}
	srv.Do(t, "FLUSHDB")
	if _, err := f.s.GetAccessTokenSession(context.Background(), at, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("revoked access token after FLUSHDB: %v, want refused", err)
	}
	if _, err := f.grant(ctx, resp.GetExtra("refresh_token").(string)); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("revoked refresh token after FLUSHDB: %v, want invalid_grant", err)
	}
}
