package storage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
	"github.com/trustid/trustid/oidc/storage"
)

// hooked runs onCommit (once) just before or after a commit's call after
// its durable write (the SetUnless with no plain writes: the access tokens
// went to the store before the durable write), to put a concurrent call
// there; down fails every call, as a lost Redis does.
type hooked struct {
	ephemeral.Store
	before   bool
	onCommit func()
	down     bool
}

var errDown = errors.New("ephemeral store down")

func (h *hooked) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if h.down {
		return errDown
	}
	return h.Store.Set(ctx, k, v, ttl)
}

func (h *hooked) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	if h.down {
		return false, errDown
	}
	if len(plain) > 0 {
		return h.Store.SetUnless(ctx, guard, guarded, plain...)
	}
	f := h.onCommit
	h.onCommit = nil
	if f != nil && h.before {
		f()
	}
	stored, err := h.Store.SetUnless(ctx, guard, guarded, plain...)
	if f != nil && !h.before {
		f()
	}
	return stored, err
}

func (h *hooked) Get(ctx context.Context, k string) ([]byte, error) {
	if h.down {
		return nil, errDown
	}
	return h.Store.Get(ctx, k)
}

// TestEphemeralAccessTokens follows one family through the life the
// provider gives it with access tokens in the ephemeral store: code
// exchange, logout, refresh, deletion, reuse racing a refresh, a lost
// store. It sets the mode itself; the backend runs vary the stores.
func TestEphemeralAccessTokens(t *testing.T) {
	ctx := context.Background()
	st := openStoreWithApp(t)
	calls := &countingEph{Store: openEphemeral(t)}
	eph := &hooked{Store: calls}
	s, err := storage.New(storage.Config{
		Store: st, Ephemeral: eph, AccessTokens: storage.AccessTokensEphemeral, AccessTokenTTL: time.Hour,
		NewSession: func() fosite.Session { return openid.NewDefaultSession() },
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(sig string) (fosite.Requester, error) {
		return s.GetAccessTokenSession(ctx, sig, openid.NewDefaultSession())
	}
	valid := func(t *testing.T, sig string) {
		t.Helper()
		if r, err := get(sig); err != nil || r.GetID() != "fam" || r.GetSession().(*openid.DefaultSession).Subject != "citizen-1" {
			t.Fatalf("%s: %v, %v; want valid", sig, r, err)
		}
	}
	inactive := func(t *testing.T, sig string) {
		t.Helper()
		if r, err := get(sig); !errors.Is(err, fosite.ErrInactiveToken) || r == nil || r.GetID() != "fam" {
			t.Fatalf("%s: %v, %v; want the request and ErrInactiveToken", sig, r, err)
		}
	}
	// refresh rotates from into to, issuing at; hook runs inside Commit.
	refresh := func(rid, from, to, at string, hook func(), before bool) error {
		ar := request(t, s, rid)
		ar.GetSession().SetExpiresAt(fosite.AccessToken, time.Now().Add(10*time.Minute))
		tctx, err := s.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RotateRefreshToken(tctx, rid, from); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(tctx, at, ar); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(tctx, to, at, ar); err != nil {
			t.Fatal(err)
		}
		eph.onCommit, eph.before = hook, before
		return s.Commit(tctx)
	}

	// exchange runs a code exchange of request rid; hook runs inside Commit.
	exchange := func(rid, code, at, rt string, hook func()) error {
		ar := request(t, s, rid)
		if err := s.CreateAuthorizeCodeSession(ctx, code, ar); err != nil {
			t.Fatal(err)
		}
		tctx, _ := s.BeginTX(ctx)
		for _, err := range []error{
			s.InvalidateAuthorizeCodeSession(tctx, code),
			s.CreateAccessTokenSession(tctx, at, ar),
			s.CreateRefreshTokenSession(tctx, rt, at, ar),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		eph.onCommit, eph.before = hook, true
		return s.Commit(tctx)
	}

	// Code exchange: the first pair; no access token in the durable store;
	// two round trips to the ephemeral store (before and after the durable
	// write).
	calls.take()
	if err := exchange("fam", "code", "at1", "rt1", nil); err != nil {
		t.Fatal(err)
	}
	if got := calls.take(); !slices.Equal(got, []string{"Set", "SetUnless"}) {
		t.Errorf("ephemeral store calls of a code exchange = %v, want [Set SetUnless]", got)
	}
	valid(t, "at1")
	if _, err := st.OAuth().Get(ctx, store.OAuthAccess, "at1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("access token in the durable store: %v", err)
	}

	// Logout revokes the access tokens; the refresh token still refreshes.
	if err := s.RevokeAccessToken(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	inactive(t, "at1")
	calls.take()
	if err := refresh("fam", "rt1", "rt2", "at2", nil, false); err != nil {
		t.Fatal(err)
	}
	if got := calls.take(); !slices.Equal(got, []string{"Set", "SetUnless"}) {
		t.Errorf("ephemeral store calls of a refresh commit = %v, want [Set SetUnless]", got)
	}
	valid(t, "at2")
	inactive(t, "at1")

	// Deletion.
	if err := s.DeleteAccessTokenSession(ctx, "at2"); err != nil {
		t.Fatal(err)
	}
	if _, err := get("at2"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}

	// A reuse revokes the family while a refresh commits. Before the
	// commit starts (the refresh token was read, the rotation not yet
	// written): the commit fails, at its durable write (the refresh token
	// is gone) or after it (the family ended), and its access token is
	// dropped. Just before the commit's ephemeral call after its durable
	// write: likewise. After that call: the commit succeeds and the
	// revocation, later, revokes the new token. Either way the family ends
	// revoked and no token of the failed commits works.
	races := []struct {
		name     string
		at       string // "start", "before" or "after" the call after the durable write
		wantFail bool
	}{
		{name: "race-start", at: "start", wantFail: true},
		{name: "race-before", at: "before", wantFail: true},
		{name: "race-after", at: "after"},
	}
	for _, tc := range races {
		rid := tc.name
		if err := s.CreateRefreshTokenSession(ctx, rid+"-rt1", "", request(t, s, rid)); err != nil {
			t.Fatal(err)
		}
		revoke := func() {
			if err := s.RevokeRefreshToken(ctx, rid); err != nil {
				t.Error(err)
			}
		}
		var err error
		if tc.at == "start" {
			revoke()
			err = refresh(rid, rid+"-rt1", rid+"-rt2", rid+"-at2", nil, false)
		} else {
			err = refresh(rid, rid+"-rt1", rid+"-rt2", rid+"-at2", revoke, tc.at == "before")
		}
		if tc.wantFail && !errors.Is(err, fosite.ErrInactiveToken) && !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("%s: Commit = %v, want ErrInactiveToken or ErrNotFound", rid, err)
		}
		if !tc.wantFail && err != nil {
			t.Fatalf("%s: Commit = %v", rid, err)
		}
		_, err = get(rid + "-at2")
		if tc.wantFail && !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("%s: new access token of a failed commit: %v, want not found", rid, err)
		}
		if !errors.Is(err, fosite.ErrNotFound) && !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("%s: new access token valid after the family was revoked: %v", rid, err)
		}
		for _, rt := range []string{rid + "-rt1", rid + "-rt2"} {
			if _, err := s.GetRefreshTokenSession(ctx, rt, openid.NewDefaultSession()); err == nil {
				t.Fatalf("%s: refresh token %s active after the family was revoked", rid, rt)
			}
		}
	}

	// A code exchange whose family was revoked (code reuse) after its
	// durable write hands out no access token.
	revokeCode := func() {
		if err := s.RevokeRefreshToken(ctx, "reused"); err != nil {
			t.Error(err)
		}
	}
	if err := exchange("reused", "code2", "reused-at1", "reused-rt1", revokeCode); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("code exchange after the family ended: Commit = %v, want ErrInactiveToken", err)
	}
	if _, err := get("reused-at1"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("access token of the failed code exchange: %v, want not found", err)
	}

	// A lost store refuses tokens and fails issuance; nothing is accepted.
	if err := s.CreateAccessTokenSession(ctx, "at9", request(t, s, "other")); err != nil {
		t.Fatal(err)
	}
	eph.down = true
	if _, err := get("at9"); err == nil || !errors.Is(err, errDown) {
		t.Fatalf("store down: Get = %v, want an error", err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at10", request(t, s, "other")); !errors.Is(err, errDown) {
		t.Fatalf("store down: Create = %v", err)
	}
}

// TestAccessTokenTTL checks an ephemeral token lives as long as its
// session says, never longer than Config.AccessTokenTTL.
func TestAccessTokenTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := sqlitetest.Open(t)
	if err := st.Clients().Create(ctx, &store.Client{ID: "app", SecretHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	eph := memory.New(memory.Options{Now: clock, JanitorInterval: time.Hour})
	t.Cleanup(func() { _ = eph.Close() })
	s, err := storage.New(storage.Config{
		Store: st, Ephemeral: eph, Clock: clock, AccessTokenTTL: time.Hour,
		NewSession: func() fosite.Session { return openid.NewDefaultSession() },
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		expires  time.Duration // from now; 0: the session has none
		liveAt   time.Duration
		goneAt   time.Duration
		noRecord bool
	}{
		{name: "session expiry", expires: 10 * time.Minute, liveAt: 9 * time.Minute, goneAt: 10 * time.Minute},
		{name: "capped", expires: 3 * time.Hour, liveAt: 59 * time.Minute, goneAt: time.Hour},
		{name: "no expiry", liveAt: 59 * time.Minute, goneAt: time.Hour},
		{name: "expired", expires: -time.Second, noRecord: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			ar := request(t, s, "r-"+tt.name)
			if tt.expires != 0 {
				ar.GetSession().SetExpiresAt(fosite.AccessToken, now.Add(tt.expires))
			}
			if err := s.CreateAccessTokenSession(ctx, "at-"+tt.name, ar); err != nil {
				t.Fatal(err)
			}
			start := now
			if !tt.noRecord {
				now = start.Add(tt.liveAt)
				if _, err := s.GetAccessTokenSession(ctx, "at-"+tt.name, openid.NewDefaultSession()); err != nil {
					t.Fatalf("at +%v: %v", tt.liveAt, err)
				}
			}
			now = start.Add(tt.goneAt)
			if _, err := s.GetAccessTokenSession(ctx, "at-"+tt.name, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("at +%v: %v, want not found", tt.goneAt, err)
			}
		})
	}
	if _, err := storage.New(storage.Config{Store: st, Ephemeral: memoryStore(t), AccessTokens: "redis",
		NewSession: func() fosite.Session { return openid.NewDefaultSession() }}); !errors.Is(err, storage.ErrConfig) {
		t.Fatalf("unknown AccessTokens: %v", err)
	}
}

// TestAccessTokenSealed: with a Sealer, what the ephemeral store holds
// reveals no identity and is bound to its token's key.
func TestAccessTokenSealed(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	if err := st.Clients().Create(ctx, &store.Client{ID: "app", SecretHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	eph := memoryStore(t)
	s, err := storage.New(storage.Config{
		Store: st, Ephemeral: eph, Sealer: testRing(t),
		NewSession: func() fosite.Session { return openid.NewDefaultSession() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at1", request(t, s, "request-one")); err != nil {
		t.Fatal(err)
	}
	raw, err := eph.Get(ctx, "oidc:at:at1")
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"citizen-1", "pairwise-sub", "request-one", "openid"} {
		if strings.Contains(string(raw), plain) {
			t.Errorf("stored access token shows %q", plain)
		}
	}
	got, err := s.GetAccessTokenSession(ctx, "at1", openid.NewDefaultSession())
	if err != nil || got.GetSession().GetSubject() != "citizen-1" {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	// The same bytes under another token's key do not open.
	if err := eph.Set(ctx, "oidc:at:at2", raw, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at2", openid.NewDefaultSession()); err == nil {
		t.Fatal("a sealed record moved to another key opened")
	}
}
