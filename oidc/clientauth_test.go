package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/trustid/trustid/oidc"
)

// assertion signs a private_key_jwt client assertion (RFC 7523).
func assertion(t *testing.T, key any, alg jose.SignatureAlgorithm, clientID, aud string, exp time.Duration) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud,
		"jti": fmt.Sprintf("a-%d", now.UnixNano()), "iat": now.Unix(), "exp": now.Add(exp).Unix()})
	obj, err := sig.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

func jwksOf(t *testing.T, pub any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientAuthMethods: client_secret_post and private_key_jwt beside the
// default client_secret_basic; each client may use only its own method.
func TestClientAuthMethods(t *testing.T) {
	e := newFakeEnv(t, nil)
	ctx := context.Background()
	adm := e.clientAdmin()
	machine := func(m string, jwks json.RawMessage) oidc.ClientSpec {
		return oidc.ClientSpec{Name: m, GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}, AuthMethod: m, JWKS: jwks}
	}
	_, postSecret, err := adm.Create(ctx, "post", machine("client_secret_post", nil))
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for id, pub := range map[string]any{"pkjwt-ec": ecKey.Public(), "pkjwt-rsa": rsaKey.Public()} {
		if _, secret, err := adm.Create(ctx, id, machine("private_key_jwt", jwksOf(t, pub))); err != nil || secret != "" {
			t.Fatalf("create %s: secret %q, %v", id, secret, err)
		}
	}
	tokenURL := e.issuer + oidc.PathToken
	cc := func(extra url.Values) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	ecAssert := assertion(t, ecKey, jose.ES256, "pkjwt-ec", tokenURL, time.Minute)
	const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	tests := []struct {
		name       string
		id, secret string // basic auth when secret != ""
		form       url.Values
		want       int
	}{
		{"post: form secret", "", "", cc(url.Values{"client_id": {"post"}, "client_secret": {postSecret}}), 200},
		{"post: basic refused", "post", postSecret, cc(nil), 401},
		{"post: wrong secret", "", "", cc(url.Values{"client_id": {"post"}, "client_secret": {"nope"}}), 401},
		{"basic client: form secret refused", "", "", cc(url.Values{"client_id": {"machine"}, "client_secret": {e.mSecret}}), 401},
		{"private_key_jwt ES256", "", "", cc(url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {ecAssert}}), 200},
		{"private_key_jwt replayed", "", "", cc(url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {ecAssert}}), 400},
		{"private_key_jwt RS256", "", "", cc(url.Values{"client_assertion_type": {jwtBearer},
			"client_assertion": {assertion(t, rsaKey, jose.RS256, "pkjwt-rsa", tokenURL, time.Minute)}}), 200},
		{"private_key_jwt other key", "", "", cc(url.Values{"client_assertion_type": {jwtBearer},
			"client_assertion": {assertion(t, otherKey, jose.ES256, "pkjwt-ec", tokenURL, time.Minute)}}), 401},
		{"private_key_jwt wrong audience", "", "", cc(url.Values{"client_assertion_type": {jwtBearer},
			"client_assertion": {assertion(t, ecKey, jose.ES256, "pkjwt-ec", e.issuer+"/elsewhere", time.Minute)}}), 401},
		{"private_key_jwt expired", "", "", cc(url.Values{"client_assertion_type": {jwtBearer},
			"client_assertion": {assertion(t, ecKey, jose.ES256, "pkjwt-ec", tokenURL, -time.Minute)}}), 401},
		{"private_key_jwt client with a secret via basic", "pkjwt-ec", "guess", cc(nil), 401},
		{"basic client with an assertion", "", "", cc(url.Values{"client_assertion_type": {jwtBearer},
			"client_assertion": {assertion(t, ecKey, jose.ES256, "machine", tokenURL, time.Minute)}}), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t, false)
			var code int
			var m map[string]any
			if tc.secret != "" {
				code, m = e.tokenPost(tc.id, tc.secret, "", tc.form)
			} else {
				code, m = e.tokenPost("", "", "", tc.form)
			}
			if code != tc.want || (code == 200) != (m["access_token"] != nil) {
				t.Fatalf("%d %v, want %d", code, m, tc.want)
			}
			want := "invalid_client"
			if code == 400 {
				want = "jti_known" // fosite's code for a replayed assertion
			}
			if code != 200 && m["error"] != want {
				t.Fatalf("error %v, want %s", m["error"], want)
			}
		})
	}

	// Registration checks.
	for name, spec := range map[string]oidc.ClientSpec{
		"private_key_jwt without jwks": machine("private_key_jwt", nil),
		"jwks with a secret":           machine("client_secret_post", jwksOf(t, ecKey.Public())),
		"private jwk":                  machine("private_key_jwt", jwksOf(t, ecKey)),
		"unknown method":               machine("tls_client_auth", nil),
		"public with a secret method": {Name: "x", Public: true, RedirectURIs: []string{redirect},
			AuthMethod: "client_secret_post"},
	} {
		if _, _, err := adm.Create(ctx, "", spec); !errors.Is(err, oidc.ErrInvalidClient) {
			t.Errorf("%s: %v, want ErrInvalidClient", name, err)
		}
	}
	resp, body := e.get(e.issuer + oidc.PathDiscovery)
	var d struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != http.StatusOK || len(d.Methods) != 4 {
		t.Fatalf("discovery auth methods %v (%v)", d.Methods, err)
	}
}

// TestDynamicRegistrationAuthMethods: with confidential clients allowed,
// RFC 7591 registration takes client_secret_post and private_key_jwt (with
// jwks) and refuses inconsistent metadata.
func TestDynamicRegistrationAuthMethods(t *testing.T) {
	e := newFakeEnv(t, func(c *oidc.Config) {
		c.DynamicRegistration = &oidc.RegistrationPolicy{PerIPPerHour: 20, AllowConfidential: true}
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := string(jwksOf(t, key.Public()))
	post := e.register
	base := `"redirect_uris":["` + redirect + `"],"scope":"openid"`
	tests := []struct {
		name, body, method string
		want               int
		secret             bool
	}{
		{"client_secret_post", `{` + base + `,"token_endpoint_auth_method":"client_secret_post"}`, "client_secret_post", 201, true},
		{"private_key_jwt", `{` + base + `,"token_endpoint_auth_method":"private_key_jwt","jwks":` + jwks + `}`, "private_key_jwt", 201, false},
		{"private_key_jwt without jwks", `{` + base + `,"token_endpoint_auth_method":"private_key_jwt"}`, "", 400, false},
		{"jwks on a public client", `{` + base + `,"token_endpoint_auth_method":"none","jwks":` + jwks + `}`, "", 400, false},
		{"unknown method", `{` + base + `,"token_endpoint_auth_method":"tls_client_auth"}`, "", 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(tt.body)
			if code != tt.want {
				t.Fatalf("%d %v, want %d", code, m, tt.want)
			}
			if code != 201 {
				if m["error"] != "invalid_client_metadata" {
					t.Fatalf("error %v", m["error"])
				}
				return
			}
			if m["token_endpoint_auth_method"] != tt.method || (m["client_secret"] != nil) != tt.secret {
				t.Fatalf("registration %v", m)
			}
		})
	}
}

// TestClientAssertionReplayAfterCacheLoss: a used private_key_jwt assertion
// stays used after the ephemeral store is lost (a Redis flush or restart):
// its jti is recorded in the durable store (issue #16, point 4).
func TestClientAssertionReplayAfterCacheLoss(t *testing.T) {
	eph := memory.New(memory.Options{})
	t.Cleanup(func() { eph.Close() })
	e := newEnv(t, sqliteStore(t), eph, nil)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spec := oidc.ClientSpec{Name: "pkjwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"},
		AuthMethod: "private_key_jwt", JWKS: jwksOf(t, key.Public())}
	if _, _, err := e.clientAdmin().Create(ctx, "pkjwt", spec); err != nil {
		t.Fatal(err)
	}
	tokenURL := e.issuer + oidc.PathToken
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion(t, key, jose.ES256, "pkjwt", tokenURL, time.Minute)}}
	if code, m := e.tokenPost("", "", "", form); code != http.StatusOK {
		t.Fatalf("first use: %d %v", code, m)
	}
	eph.Clear(context.Background())
	if code, m := e.tokenPost("", "", "", form); code != http.StatusBadRequest || m["error"] != "jti_known" {
		t.Fatalf("replay after the cache was lost: %d %v", code, m)
	}
}
