package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc"
)

// TestIDTokenAlgPerClient registers clients with and without
// id_token_signed_response_alg (OpenID Connect Dynamic Client Registration
// 1.0 section 2) under each provider default, and checks the alg of the ID
// tokens of the code and refresh grants and that they verify against the
// key of that alg in the JWKS. A client registered without an alg gets
// ES256 (NewClientIDTokenAlg) whatever the provider default; a client
// stored before that default (no alg stored) keeps the provider default.
func TestIDTokenAlgPerClient(t *testing.T) {
	for _, def := range []string{"", oidc.AlgES256} {
		name := def
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			e := newFakeEnv(t, func(c *oidc.Config) {
				c.SigningAlg = def
				c.DynamicRegistration = &oidc.RegistrationPolicy{PerIPPerHour: 20}
			})
			runIDTokenAlgs(t, e, def)
		})
	}
}

// TestIDTokenAlgPostgresRedis runs the same flows on PostgreSQL + Redis.
func TestIDTokenAlgPostgresRedis(t *testing.T) {
	e := newEnv(t, postgresStore(t), redisStore(t), func(c *oidc.Config) {
		c.DynamicRegistration = &oidc.RegistrationPolicy{PerIPPerHour: 20}
	})
	runIDTokenAlgs(t, e, "")
}

func runIDTokenAlgs(t *testing.T, e *env, def string) {
	if def == "" {
		def = oidc.AlgRS256
	}
	ctx := context.Background()
	_, body := e.get(e.issuer + oidc.PathDiscovery)
	var disco struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal([]byte(body), &disco); err != nil {
		t.Fatal(err)
	}
	if len(disco.Algs) != 2 || disco.Algs[0] != def || !slices.Contains(disco.Algs, oidc.AlgRS256) || !slices.Contains(disco.Algs, oidc.AlgES256) {
		t.Fatalf("id_token_signing_alg_values_supported = %v, want both with %s first", disco.Algs, def)
	}

	tests := []struct {
		name, alg, want string
		legacy          bool // stored without an alg, as before issue 21
	}{
		{"ES256", oidc.AlgES256, oidc.AlgES256, false},
		{"RS256", oidc.AlgRS256, oidc.AlgRS256, false},
		{"unset", "", oidc.AlgES256, false},
		{"registered before ES256 became the default", "", def, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.with(t, true)
			var id string
			if tt.legacy {
				id = fmt.Sprintf("legacy-%d", i)
				now := time.Now().UTC()
				if err := e.st.Clients().Create(ctx, &store.Client{ID: id, Public: true, RedirectURIs: []string{redirect},
					GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
					Scopes: []string{"openid", "offline_access"}, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			} else {
				req := map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
					"scope": "openid offline_access", "grant_types": []string{"authorization_code", "refresh_token"}}
				if tt.alg != "" {
					req["id_token_signed_response_alg"] = tt.alg
				}
				b, _ := json.Marshal(req)
				code, m := e.register(string(b))
				if code != http.StatusCreated {
					t.Fatalf("register: %d %v", code, m)
				}
				if m["id_token_signed_response_alg"] != tt.want {
					t.Fatalf("registration echoes id_token_signed_response_alg %v, want %s", m["id_token_signed_response_alg"], tt.want)
				}
				id, _ = m["client_id"].(string)
				// The alg is stored with the client: a later change of the
				// provider default does not change it.
				c, err := e.st.Clients().Get(ctx, id)
				if err != nil || c.IDTokenAlg != tt.want {
					t.Fatalf("stored client: %v, IDTokenAlg %q, want %s", err, c.IDTokenAlg, tt.want)
				}
			}
			conf := *e.conf
			conf.ClientID, conf.ClientSecret, conf.Scopes = id, "", []string{"openid", "offline_access"}
			v := oauth2.GenerateVerifier()
			q := e.login(conf.AuthCodeURL("state-alg-"+tt.name, oauth2.S256ChallengeOption(v)), nil, true)
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			// Only the registered alg verifies: go-oidc checks the header
			// alg and the key the kid names in the JWKS.
			verifier := e.op.Verifier(&gooidc.Config{ClientID: id, SupportedSigningAlgs: []string{tt.want}})
			for grant, tk := range map[string]*oauth2.Token{"code": tok, "refresh": tok2} {
				raw, _ := tk.Extra("id_token").(string)
				if alg := headerAlg(t, raw); alg != tt.want {
					t.Errorf("%s grant: ID token alg %s, want %s", grant, alg, tt.want)
				}
				if _, err := verifier.Verify(ctx, raw); err != nil {
					t.Errorf("%s grant: verify against the JWKS: %v", grant, err)
				}
				// The kid names a key of that alg in the JWKS.
				if kty := jwksKeyType(t, e, headerKid(t, raw)); kty != map[string]string{oidc.AlgES256: "EC", oidc.AlgRS256: "RSA"}[tt.want] {
					t.Errorf("%s grant: the kid names a %q key in the JWKS, want one for %s", grant, kty, tt.want)
				}
			}
		})
	}

	code, m := e.register(`{"redirect_uris":["` + redirect + `"],"id_token_signed_response_alg":"HS256"}`)
	if code != http.StatusBadRequest || m["error"] != "invalid_client_metadata" {
		t.Fatalf("register with HS256: %d %v, want 400 invalid_client_metadata", code, m)
	}
}

// headerKid is the kid of a compact JWS's header.
func headerKid(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Kid == "" {
		t.Fatalf("ID token header of %q", raw)
	}
	return hdr.Kid
}

// jwksKeyType is the kty of the key kid in the provider's JWKS ("" if absent).
func jwksKeyType(t *testing.T, e *env, kid string) string {
	t.Helper()
	_, body := e.get(e.issuer + "/oauth2/jwks")
	var set struct {
		Keys []struct {
			Kid, Kty, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			return k.Kty
		}
	}
	return ""
}

func headerAlg(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(b, &hdr) != nil {
		t.Fatalf("ID token header of %q", raw)
	}
	return hdr.Alg
}

// TestAdminAPIIDTokenAlg: the admin API stores, shows and validates
// id_token_signed_response_alg.
func TestAdminAPIIDTokenAlg(t *testing.T) {
	e := newFakeEnv(t, nil)
	do := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, e.issuer+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin-token")
		return doJSON(t, req)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
		wantAlg                  any
	}{
		{"create ES256", "POST", "/admin/clients", `{"client_id":"es","redirect_uris":["https://n.example/cb"],"id_token_signed_response_alg":"ES256"}`, 201, "ES256"},
		{"create without alg", "POST", "/admin/clients", `{"client_id":"new","redirect_uris":["https://n.example/cb"]}`, 201, "ES256"},
		{"create RS256", "POST", "/admin/clients", `{"client_id":"rs","redirect_uris":["https://n.example/cb"],"id_token_signed_response_alg":"RS256"}`, 201, "RS256"},
		{"create bad alg", "POST", "/admin/clients", `{"redirect_uris":["https://n.example/cb"],"id_token_signed_response_alg":"PS256"}`, 400, nil},
		{"get", "GET", "/admin/clients/es", "", 200, "ES256"},
		{"update bad alg", "PUT", "/admin/clients/es", `{"redirect_uris":["https://n.example/cb"],"id_token_signed_response_alg":"none"}`, 400, nil},
		{"update without alg keeps ES256", "PUT", "/admin/clients/es", `{"redirect_uris":["https://n.example/cb"]}`, 200, "ES256"},
		{"update without alg keeps RS256", "PUT", "/admin/clients/rs", `{"name":"renamed","redirect_uris":["https://n.example/cb"]}`, 200, "RS256"},
		{"update to RS256", "PUT", "/admin/clients/es", `{"redirect_uris":["https://n.example/cb"],"id_token_signed_response_alg":"RS256"}`, 200, "RS256"},
		{"get after update", "GET", "/admin/clients/es", "", 200, "RS256"},
		{"legacy client shows no alg", "GET", "/admin/clients/legacy", "", 200, nil},
		{"update legacy without alg keeps the provider default", "PUT", "/admin/clients/legacy", `{"name":"renamed","redirect_uris":["https://n.example/cb"]}`, 200, nil},
	}
	// A client stored before ES256 became the default: no alg, so the
	// provider's default signs its tokens, and an update leaves it so.
	now := time.Now().UTC()
	if err := e.st.Clients().Create(context.Background(), &store.Client{ID: "legacy", Public: true, RedirectURIs: []string{"https://n.example/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := do(tt.method, tt.path, tt.body)
			if code != tt.want || m["id_token_signed_response_alg"] != tt.wantAlg {
				t.Fatalf("%s %s = %d %v, want %d alg %v", tt.method, tt.path, code, m, tt.want, tt.wantAlg)
			}
			if code == http.StatusBadRequest {
				// The JSON API contract: {"error":{"code","message","request_id"}}.
				e, _ := m["error"].(map[string]any)
				if e["code"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(e["message"]), "id_token_signed_response_alg") {
					t.Fatalf("error %v", m["error"])
				}
				if strings.Contains(fmt.Sprint(e["message"]), "oidc:") || strings.Contains(fmt.Sprint(e["message"]), "fake:") {
					t.Fatalf("message leaks the internal chain: %v", e["message"])
				}
			}
		})
	}
}

// TestEndToEndClientAlg runs the whole flow for the relying party as
// registered (no alg asked: ES256, on an RS256 provider) and registered
// for RS256: its ID tokens and its back-channel logout token are signed
// with its alg (Back-Channel Logout 1.0 section 2.4: signed like the ID
// tokens).
func TestEndToEndClientAlg(t *testing.T) {
	for _, alg := range []string{"", oidc.AlgRS256} {
		want := alg
		if want == "" {
			want = oidc.NewClientIDTokenAlg
		}
		t.Run(want, func(t *testing.T) {
			e := newFakeEnv(t, nil)
			if alg != "" {
				adm := e.clientAdmin()
				c, err := adm.Get(context.Background(), "rp")
				if err != nil {
					t.Fatal(err)
				}
				spec := oidc.SpecOf(c)
				spec.IDTokenAlg = alg
				if _, err := adm.Update(context.Background(), "rp", spec); err != nil {
					t.Fatal(err)
				}
			}
			runEndToEnd(t, e)
			e.mu.Lock()
			defer e.mu.Unlock()
			if len(e.logouts) != 1 || headerAlg(t, e.logouts[0]) != want {
				t.Fatalf("logout tokens %d, want one signed with %s", len(e.logouts), want)
			}
		})
	}
}
