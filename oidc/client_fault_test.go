package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/trustid/trustid/internal/store"
)

// downClients is a store whose client reads fail while down is set, as
// PostgreSQL does when it is stopped.
type downClients struct {
	store.Store
	down *atomic.Bool
}

type downClientStore struct {
	store.ClientStore
	down *atomic.Bool
}

func (d downClients) Clients() store.ClientStore {
	return downClientStore{ClientStore: d.Store.Clients(), down: d.down}
}

func (d downClientStore) Get(ctx context.Context, id string) (*store.Client, error) {
	if d.down.Load() {
		return nil, errors.New("failed to connect to `user=postgres`: connect: connection refused")
	}
	return d.ClientStore.Get(ctx, id)
}

// TestClientStoreOutageIsNotACredentialError: while the client store is
// down, a valid client gets 503 temporarily_unavailable with Retry-After
// from the token, introspection and revocation endpoints, never
// invalid_client or request_unauthorized (issue 16, defect 3: OAuth
// libraries take those for a configuration error and do not retry); an
// unknown client is still invalid_client, and all works again after.
func TestClientStoreOutageIsNotACredentialError(t *testing.T) {
	var down atomic.Bool
	e := newEnv(t, downClients{Store: sqliteStore(t), down: &down}, memoryStore(t), nil)
	ctx := context.Background()
	v := oauth2.GenerateVerifier()
	q := e.login(e.conf.AuthCodeURL("state-cd", oauth2.S256ChallengeOption(v)), nil, true)
	tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v", err)
	}

	type answer struct {
		status     int
		code       string
		retryAfter string
	}
	post := func(path, id, secret string, form url.Values) answer {
		t.Helper()
		resp := e.basicPost(path, id, secret, form)
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return answer{resp.StatusCode, body.Error, resp.Header.Get("Retry-After")}
	}
	requests := []struct {
		name, path, id, secret string
		form                   url.Values
	}{
		{"refresh", "/oauth2/token", "rp", e.secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}},
		{"client credentials", "/oauth2/token", "machine", e.mSecret, url.Values{"grant_type": {"client_credentials"}}},
		{"introspection", "/oauth2/introspect", "rp", e.secret, url.Values{"token": {tok.AccessToken}}},
		{"revocation", "/oauth2/revoke", "rp", e.secret, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}},
	}

	down.Store(true)
	for _, tc := range requests {
		t.Run("down/"+tc.name, func(t *testing.T) {
			a := post(tc.path, tc.id, tc.secret, tc.form)
			if a.status != http.StatusServiceUnavailable || a.code != "temporarily_unavailable" || a.retryAfter == "" {
				t.Fatalf("%+v, want 503 temporarily_unavailable with Retry-After", a)
			}
		})
	}
	t.Run("down/authorize", func(t *testing.T) {
		// fosite calls any client read error "client does not exist" (401):
		// the browser must get a 503 to retry instead.
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Get(e.conf.AuthCodeURL("state-down", oauth2.S256ChallengeOption(v)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("authorize while the client store is down: %d %q Retry-After %q, want 503 temporarily_unavailable", resp.StatusCode, body.Error, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("down/unknown client", func(t *testing.T) {
		// The fake answers every read with the fault, so an unknown client
		// is refused only once the store answers (below); here it must not
		// be told anything but "retry".
		if a := post("/oauth2/token", "ghost", "x", url.Values{"grant_type": {"client_credentials"}}); a.status != http.StatusServiceUnavailable {
			t.Fatalf("%+v, want 503", a)
		}
	})

	down.Store(false)
	if a := post("/oauth2/token", "ghost", "x", url.Values{"grant_type": {"client_credentials"}}); a.status != http.StatusUnauthorized || a.code != "invalid_client" {
		t.Fatalf("unknown client after the outage: %+v, want 401 invalid_client", a)
	}
	if !e.active(tok.AccessToken) {
		t.Fatal("access token inactive after the outage")
	}
	for _, tc := range requests {
		t.Run("up/"+tc.name, func(t *testing.T) {
			if a := post(tc.path, tc.id, tc.secret, tc.form); a.status != http.StatusOK {
				t.Fatalf("%+v after the outage, want 200", a)
			}
		})
	}
}
