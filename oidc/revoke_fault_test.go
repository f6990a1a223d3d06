package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/oidc"
)

// refusingEph refuses writes while on is set, as Redis does at its memory
// limit; reads and deletes still work.
type refusingEph struct {
	ephemeral.Store
	on atomic.Bool
}

var errOOM = errors.New("OOM command not allowed when used memory > 'maxmemory'")

func (r *refusingEph) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if r.on.Load() {
		return errOOM
	}
	return r.Store.Set(ctx, k, v, ttl)
}

func (r *refusingEph) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if r.on.Load() {
		return false, errOOM
	}
	return r.Store.SetNX(ctx, k, v, ttl)
}

func (r *refusingEph) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	if r.on.Load() {
		return false, errOOM
	}
	return r.Store.SetUnless(ctx, guard, guarded, plain...)
}

// TestRevokeWhileEphemeralRefusesWrites: revocation and logout that cannot
// take effect answer 503 temporarily_unavailable with Retry-After, never
// the 200 fosite writes for a storage error (issue 16, defect 1); the
// token is then still what introspection says, and a retry after the
// fault revokes it.
func TestRevokeWhileEphemeralRefusesWrites(t *testing.T) {
	eph := &refusingEph{Store: memoryStore(t)}
	e := newEnv(t, sqliteStore(t), eph, nil)
	ctx := context.Background()
	v := oauth2.GenerateVerifier()
	q := e.login(e.conf.AuthCodeURL("state-rf", oauth2.S256ChallengeOption(v)), nil, true)
	tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v", err)
	}
	unavailable := func(t *testing.T, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("revoke during the fault: %d %q Retry-After %q; want 503 temporarily_unavailable with Retry-After",
				resp.StatusCode, body.Error, resp.Header.Get("Retry-After"))
		}
	}

	eph.on.Store(true)
	for _, tc := range []struct{ name, token, hint string }{
		{"access token", tok.AccessToken, "access_token"},
		{"refresh token", tok.RefreshToken, "refresh_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unavailable(t, e.basicPost("/oauth2/revoke", "rp", e.secret, url.Values{"token": {tc.token}, "token_type_hint": {tc.hint}}))
		})
	}
	// Logout cannot end the session's access tokens: 503, session kept.
	if resp, _ := e.logoutConfirmed(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("logout during the fault: %d, want 503 with Retry-After", resp.StatusCode)
	}
	eph.on.Store(false)
	if !e.active(tok.AccessToken) || !e.active(tok.RefreshToken) {
		t.Fatal("a revocation answered 503 took effect in part")
	}

	resp := e.basicPost("/oauth2/revoke", "rp", e.secret, url.Values{"token": {tok.RefreshToken}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke after the fault: %d", resp.StatusCode)
	}
	if e.active(tok.AccessToken) || e.active(tok.RefreshToken) {
		t.Fatal("revoked family still active")
	}
	if resp, _ := e.logoutConfirmed(); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout after the fault: %d", resp.StatusCode)
	}
}

// downEph fails reads while down, as a Redis that is down (writes too
// when its refusingEph is on).
type downEph struct {
	refusingEph
	down atomic.Bool
}

func (d *downEph) Get(ctx context.Context, k string) ([]byte, error) {
	if d.down.Load() {
		return nil, ephemeral.ErrUnavailable
	}
	return d.Store.Get(ctx, k)
}

// TestBrowserSessionStoreFault: a browser session that cannot be read is a
// fault, not "signed out" (issue 16 follow-up). Logout answers 503 and
// keeps the session (clearing the cookie while the session and its tokens
// live on would be a sign-out that did not happen); the authorization
// endpoint answers temporarily_unavailable instead of a new login; and an
// authorization whose grant the session cannot record issues no code (a
// later logout could not revoke its tokens).
func TestBrowserSessionStoreFault(t *testing.T) {
	eph := &downEph{refusingEph: refusingEph{Store: memoryStore(t)}}
	e := newEnv(t, sqliteStore(t), eph, nil)
	v := oauth2.GenerateVerifier()
	if q := e.login(e.conf.AuthCodeURL("state-sf", oauth2.S256ChallengeOption(v)), nil, true); q.Get("code") == "" {
		t.Fatalf("login: %v", q)
	}
	silent := func(state string) url.Values {
		v := oauth2.GenerateVerifier()
		resp, _ := e.get(e.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "none")))
		return callback(t, resp)
	}

	eph.down.Store(true)
	eph.refusingEph.on.Store(true)
	resp, _ := e.get(e.issuer + oidc.PathLogout)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("logout with the session unreadable: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if q := silent("state-sf2"); q.Get("error") != "temporarily_unavailable" || q.Get("code") != "" {
		t.Fatalf("authorize with the session unreadable: %v, want error=temporarily_unavailable", q)
	}
	eph.down.Store(false)

	// Reads work, writes are refused: the grant cannot be recorded.
	eph.refusingEph.on.Store(true)
	if q := silent("state-sf3"); q.Get("error") != "temporarily_unavailable" || q.Get("code") != "" {
		t.Fatalf("authorize when the session cannot record the grant: %v, want error=temporarily_unavailable and no code", q)
	}
	eph.refusingEph.on.Store(false)

	// After the fault the session is still there: a silent authorization
	// succeeds and logout signs out.
	if q := silent("state-sf4"); q.Get("code") == "" {
		t.Fatalf("authorize after the fault: %v", q)
	}
	if resp, _ := e.logoutConfirmed(); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout after the fault: %d", resp.StatusCode)
	}
	if q := silent("state-sf5"); q.Get("error") != "login_required" {
		t.Fatalf("authorize after logout: %v, want login_required", q)
	}
}
