package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc"
	"github.com/trustid/trustid/oidc/internal/fake"
)

// TestBenchMintAndRotation mints refresh tokens the way bench/oidc/run.sh
// does and checks that each works exactly once through the token endpoint:
// rotation and reuse detection run in one store transaction on the SQL
// backends (fosite's storage.Transactional).
func TestBenchMintAndRotation(t *testing.T) {
	stores := []struct {
		name string
		st   func(t *testing.T) (store.Store, ephemeral.Store)
	}{
		{"fake", func(t *testing.T) (store.Store, ephemeral.Store) { return fake.NewStore(), fake.NewEphemeral(nil) }},
		{"sqlite", func(t *testing.T) (store.Store, ephemeral.Store) { return sqliteStore(t), memoryStore(t) }},
		{"postgres+redis", func(t *testing.T) (store.Store, ephemeral.Store) { return postgresStore(t), redisStore(t) }},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			st, eph := tc.st(t)
			e := newEnv(t, st, eph, nil)
			ctx := context.Background()
			m := oidc.BenchMint{ClientID: "rp", ClientSecret: e.secret, RedirectURI: e.conf.RedirectURL,
				Scopes: []string{"openid", "offline_access"}, CitizenID: "bench-citizen", N: 3}
			if _, err := e.p.MintRefreshTokensForBenchmark(ctx, oidc.BenchMint{ClientID: "rp", ClientSecret: "wrong",
				RedirectURI: m.RedirectURI, Scopes: m.Scopes, CitizenID: m.CitizenID, N: 1}); err == nil {
				t.Error("minted with a wrong client secret")
			}
			toks, err := e.p.MintRefreshTokensForBenchmark(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(toks) != 3 || toks[0] == toks[1] || toks[1] == toks[2] {
				t.Fatalf("tokens = %d, want 3 distinct", len(toks))
			}
			refresh := func(rt string) (int, string) {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
				req, _ := http.NewRequest(http.MethodPost, e.issuer+oidc.PathToken, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("rp", url.QueryEscape(e.secret))
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
