package benchmint_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/lab/benchmint"
	"github.com/trustid/trustid/oidc"
)

const redirect = "http://127.0.0.1:1/cb"

// refuseLogin is a login method that refuses everyone (minting never logs in).
type refuseLogin struct{}

func (refuseLogin) Method() string { return "face" }
func (refuseLogin) MaxACR() string { return oidc.ACRFaceLiveness }
func (refuseLogin) Begin(context.Context, *oidc.LoginAttempt) (any, error) {
	return nil, oidc.ErrAuthenticationFailed
}
func (refuseLogin) Finish(context.Context, *oidc.LoginAttempt, *http.Request) (*oidc.Authentication, error) {
	return nil, oidc.ErrAuthenticationFailed
}

func testRing(t testing.TB) *seal.Ring {
	t.Helper()
	k := func(b byte) string { return strings.Repeat(string(rune('A'+b)), 43) + "=" }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sqliteStore(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trustid.db"), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func postgresStore(t testing.TB) store.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func memoryStore(t testing.TB) ephemeral.Store {
	m := memory.New(memory.Options{})
	t.Cleanup(func() { m.Close() })
	return m
}

// serve runs a provider on st and eph with a confidential client "rp"
// allowed authorization_code and refresh_token; it returns the provider,
// its issuer URL and rp's secret.
func serve(t *testing.T, st store.Store, eph ephemeral.Store) (*oidc.Provider, string, string) {
	t.Helper()
	master := []byte("0123456789abcdef0123456789abcdef-test-master")
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p, err := oidc.New(oidc.Config{
		Issuer: issuer, Store: st, Ephemeral: eph, Secret: master,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticators: []oidc.Authenticator{refuseLogin{}}, InsecureCookies: true, ClientCacheTTL: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	adm, err := oidc.NewClientAdmin(st.Clients(), master, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := adm.Create(context.Background(), "rp", oidc.ClientSpec{
		Name: "Relying App", RedirectURIs: []string{redirect},
		Scopes:     []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, issuer, secret
}

// TestRefreshTokensAndRotation mints refresh tokens the way bench/oidc/run.sh
// does and checks that each works exactly once through the token endpoint:
// rotation and reuse detection run in one store transaction on the SQL
// backends (fosite's storage.Transactional).
func TestRefreshTokensAndRotation(t *testing.T) {
	stores := []struct {
		name string
		st   func(t *testing.T) (store.Store, ephemeral.Store)
	}{
		{"sqlite", func(t *testing.T) (store.Store, ephemeral.Store) { return sqliteStore(t), memoryStore(t) }},
		{"postgres+redis", func(t *testing.T) (store.Store, ephemeral.Store) {
			return postgresStore(t), redistest.Open(t, "benchmint")
		}},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			st, eph := tc.st(t)
			p, issuer, secret := serve(t, st, eph)
			ctx := context.Background()
			m := benchmint.Request{ClientID: "rp", ClientSecret: secret, RedirectURI: redirect,
				Scopes: []string{"openid", "offline_access"}, CitizenID: "bench-citizen", N: 3}
			if _, err := benchmint.RefreshTokens(ctx, p, issuer, benchmint.Request{ClientID: "rp", ClientSecret: "wrong",
				RedirectURI: m.RedirectURI, Scopes: m.Scopes, CitizenID: m.CitizenID, N: 1}); err == nil {
				t.Error("minted with a wrong client secret")
			}
			toks, err := benchmint.RefreshTokens(ctx, p, issuer, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(toks) != 3 || toks[0] == toks[1] || toks[1] == toks[2] {
				t.Fatalf("tokens = %d, want 3 distinct", len(toks))
			}
			refresh := func(rt string) (int, string) {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
				req, _ := http.NewRequest(http.MethodPost, issuer+oidc.PathToken, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("rp", url.QueryEscape(secret))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out struct {
					RefreshToken string `json:"refresh_token"`
					IDToken      string `json:"id_token"`
				}
				json.NewDecoder(resp.Body).Decode(&out)
				if resp.StatusCode == http.StatusOK && (out.RefreshToken == "" || out.IDToken == "") {
					t.Errorf("refresh answered 200 without a refresh token or ID token")
				}
				return resp.StatusCode, out.RefreshToken
			}
			code, next := refresh(toks[0])
			if code != http.StatusOK {
				t.Fatalf("refresh with a minted token: status %d", code)
			}
			if code, _ := refresh(toks[0]); code != http.StatusBadRequest {
				t.Errorf("reused refresh token: status %d, want 400", code)
			}
			// Reuse revoked the family: the token the first refresh returned is dead too.
			if code, _ := refresh(next); code == http.StatusOK {
				t.Error("after reuse, the rotated token still works (family not revoked)")
			}
			// Other grants are independent families.
			if code, _ := refresh(toks[1]); code != http.StatusOK {
				t.Errorf("second minted token: status %d", code)
			}
		})
	}
}
