package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/oidc"
)

// dpopKey is a client's DPoP key.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jkt  string
	n    int
}

func newDPoPKey(t testing.TB) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{priv: k, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proof signs a DPoP proof; edit may change the claims and header type.
func (k *dpopKey) proof(t testing.TB, method, htu, accessToken string, edit func(c map[string]any, typ *string, alg *jose.SignatureAlgorithm, key *any)) string {
	t.Helper()
	k.n++
	c := map[string]any{"jti": fmt.Sprintf("jti-%d-%d", time.Now().UnixNano(), k.n), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	typ, alg, key := "dpop+jwt", jose.ES256, any(k.priv)
	if edit != nil {
		edit(c, &typ, &alg, &key)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{EmbedJWK: alg != jose.HS256}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	obj, err := sig.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenPost posts to the token endpoint with basic auth (secret may be
// empty for a public client, which then sends client_id in the form) and
// the given DPoP proof.
func (e *env) tokenPost(id, secret, proof string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	if secret == "" && id != "" {
		form.Set("client_id", id)
	}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return doJSON(e.t, req)
}

func (e *env) userinfo(scheme, tok, proof string) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+oidc.PathUserinfo, nil)
	req.Header.Set("Authorization", scheme+" "+tok)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// TestDPoP: sender-constrained tokens (RFC 9449) on the token endpoint,
// introspection (cnf.jkt) and userinfo; every malformed proof is refused
// with invalid_dpop_proof and issues nothing.
func TestDPoP(t *testing.T) {
	e := newFakeEnv(t, nil)
	tokenURL := e.issuer + oidc.PathToken
	key := newDPoPKey(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}

	p := key.proof(t, http.MethodPost, tokenURL, "", nil)
	code, m := e.tokenPost("machine", e.mSecret, p, cc)
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("client_credentials with DPoP: %d %v", code, m)
	}
	at, _ := m["access_token"].(string)
	cnf, _ := e.introspect(at)["cnf"].(map[string]any)
	if cnf["jkt"] != key.jkt {
		t.Fatalf("introspection cnf %v, want jkt %s", cnf, key.jkt)
	}
	// The same proof again is a replay.
	if code, m := e.tokenPost("machine", e.mSecret, p, cc); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("replayed proof: %d %v", code, m)
	}
	// Without a proof the token is a plain bearer token without cnf.
	code, m = e.tokenPost("machine", e.mSecret, "", cc)
	if code != http.StatusOK || strings.ToLower(fmt.Sprint(m["token_type"])) != "bearer" {
		t.Fatalf("bearer: %d %v", code, m)
	}
	if _, ok := e.introspect(m["access_token"].(string))["cnf"]; ok {
		t.Fatal("bearer token has cnf")
	}

	other := newDPoPKey(t)
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	bad := []struct {
		name string
		edit func(c map[string]any, typ *string, alg *jose.SignatureAlgorithm, key *any)
		raw  string
	}{
		{"wrong typ", func(_ map[string]any, typ *string, _ *jose.SignatureAlgorithm, _ *any) { *typ = "JWT" }, ""},
		{"wrong method", func(c map[string]any, _ *string, _ *jose.SignatureAlgorithm, _ *any) { c["htm"] = "GET" }, ""},
		{"wrong url", func(c map[string]any, _ *string, _ *jose.SignatureAlgorithm, _ *any) {
			c["htu"] = e.issuer + oidc.PathUserinfo
		}, ""},
		{"old iat", func(c map[string]any, _ *string, _ *jose.SignatureAlgorithm, _ *any) {
			c["iat"] = time.Now().Add(-5 * time.Minute).Unix()
		}, ""},
		{"future iat", func(c map[string]any, _ *string, _ *jose.SignatureAlgorithm, _ *any) {
			c["iat"] = time.Now().Add(time.Minute).Unix()
		}, ""},
		{"no jti", func(c map[string]any, _ *string, _ *jose.SignatureAlgorithm, _ *any) { delete(c, "jti") }, ""},
		{"symmetric alg", func(_ map[string]any, _ *string, alg *jose.SignatureAlgorithm, k *any) {
			*alg, *k = jose.HS256, hmacKey
		}, ""},
		{"signed by another key", nil, "swap"},
		{"not a JWS", nil, "not.a.jws"},
		{"too long", nil, strings.Repeat("a", 9000)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t, false)
			p := ""
			switch tc.raw {
			case "":
				p = key.proof(t, http.MethodPost, tokenURL, "", tc.edit)
			case "swap":
				// other's signature with key's jwk in the header
				good := strings.Split(key.proof(t, http.MethodPost, tokenURL, "", nil), ".")
				forged := strings.Split(other.proof(t, http.MethodPost, tokenURL, "", nil), ".")
				p = good[0] + "." + good[1] + "." + forged[2]
			default:
				p = tc.raw
			}
			if code, m := e.tokenPost("machine", e.mSecret, p, cc); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
				t.Fatalf("%d %v", code, m)
			}
		})
	}

	// Authorization code flow: the tokens are bound, userinfo then needs
	// the DPoP scheme and a proof with ath by the same key.
	verifier := oauth2.GenerateVerifier()
	q := e.login(e.conf.AuthCodeURL("state-dpop-1", oauth2.S256ChallengeOption(verifier)), nil, true)
	code, m = e.tokenPost("rp", e.secret, key.proof(t, http.MethodPost, tokenURL, "", nil), url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("code exchange with DPoP: %d %v (callback %v)", code, m, q)
	}
	at, _ = m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	uiURL := e.issuer + oidc.PathUserinfo
	if c, _, body := e.userinfo("DPoP", at, key.proof(t, http.MethodGet, uiURL, at, nil)); c != http.StatusOK || !strings.Contains(body, `"sub"`) {
		t.Fatalf("userinfo with DPoP: %d %s", c, body)
	}
	for _, tc := range []struct{ name, scheme, proof string }{
		{"as bearer", "Bearer", ""},
		{"no proof", "DPoP", ""},
		{"other key", "DPoP", other.proof(t, http.MethodGet, uiURL, at, nil)},
		{"no ath", "DPoP", key.proof(t, http.MethodGet, uiURL, "", nil)},
		{"proof for the token endpoint", "DPoP", key.proof(t, http.MethodPost, tokenURL, at, nil)},
	} {
		if c, www, _ := e.userinfo(tc.scheme, at, tc.proof); c != http.StatusUnauthorized || !strings.HasPrefix(www, "DPoP ") {
			t.Errorf("userinfo %s: %d %q", tc.name, c, www)
		}
	}
	// dpop_jkt at authorization binds the code: only that key redeems it.
	v2 := oauth2.GenerateVerifier()
	q = e.login(e.conf.AuthCodeURL("state-dpop-2", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("dpop_jkt", key.jkt)), nil, true)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect}, "code_verifier": {v2}}
	for name, p := range map[string]string{"no proof": "", "other key": other.proof(t, http.MethodPost, tokenURL, "", nil)} {
		if code, m := e.tokenPost("rp", e.secret, p, exchange); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("dpop_jkt-bound code with %s: %d %v", name, code, m)
		}
	}
	if code, m := e.tokenPost("rp", e.secret, key.proof(t, http.MethodPost, tokenURL, "", nil), exchange); code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("dpop_jkt-bound code with its key: %d %v", code, m)
	}
	q = e.login(e.conf.AuthCodeURL("state-dpop-3", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("dpop_jkt", "short")), nil, true)
	if q.Get("error") != "invalid_request" {
		t.Fatalf("malformed dpop_jkt: %v", q)
	}

	// A confidential client's refresh token is not bound to the key: a
	// refresh with a new key binds the new access token to that key.
	code, m = e.tokenPost("rp", e.secret, other.proof(t, http.MethodPost, tokenURL, "", nil), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("refresh with another key (confidential client): %d %v", code, m)
	}
	if cnf, _ := e.introspect(m["access_token"].(string))["cnf"].(map[string]any); cnf["jkt"] != other.jkt {
		t.Fatalf("refreshed token cnf %v", cnf)
	}
}

// TestDPoPPublicClientRefreshBound: a public client's refresh token is bound
// to the key of its first proof; a refresh with another key or none fails
// and changes nothing, the right key still works.
// TestDPoPReplayAfterCacheLoss: a proof refused as replayed stays refused
// after the replay cache is lost (a Redis flush or restart), while a fresh
// proof is accepted (issue #16, point 4).
func TestDPoPReplayAfterCacheLoss(t *testing.T) {
	eph := memory.New(memory.Options{})
	t.Cleanup(func() { eph.Close() })
	e := newEnv(t, sqliteStore(t), eph, nil)
	tokenURL := e.issuer + oidc.PathToken
	key := newDPoPKey(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // proofs are dated in whole seconds
	p := key.proof(t, http.MethodPost, tokenURL, "", nil)
	if code, m := e.tokenPost("machine", e.mSecret, p, cc); code != http.StatusOK {
		t.Fatalf("first use: %d %v", code, m)
	}
	time.Sleep(1100 * time.Millisecond) // the loss happens after the proof's second
	eph.Clear(context.Background())
	if code, m := e.tokenPost("machine", e.mSecret, p, cc); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("replay after the cache was lost: %d %v", code, m)
	}
	if code, m := e.tokenPost("machine", e.mSecret, key.proof(t, http.MethodPost, tokenURL, "", nil), cc); code != http.StatusOK {
		t.Fatalf("fresh proof after the loss: %d %v", code, m)
	}
}

func TestDPoPPublicClientRefreshBound(t *testing.T) {
	e := newFakeEnv(t, nil)
	ctx := context.Background()
	adm := e.clientAdmin()
	if _, _, err := adm.Create(ctx, "mobile", oidc.ClientSpec{Name: "Mobile app", Public: true, RedirectURIs: []string{redirect},
		Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}}); err != nil {
		t.Fatal(err)
	}
	tokenURL := e.issuer + oidc.PathToken
	key, other := newDPoPKey(t), newDPoPKey(t)
	conf := *e.conf
	conf.ClientID, conf.ClientSecret, conf.Scopes = "mobile", "", []string{"openid", "offline_access"}
	verifier := oauth2.GenerateVerifier()
	q := e.login(conf.AuthCodeURL("state-mobile-1", oauth2.S256ChallengeOption(verifier)), nil, true)
	code, m := e.tokenPost("mobile", "", key.proof(t, http.MethodPost, tokenURL, "", nil), url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if code != http.StatusOK || m["token_type"] != "DPoP" || m["refresh_token"] == nil {
		t.Fatalf("public client code exchange: %d %v", code, m)
	}
	rt := m["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for name, p := range map[string]string{"no proof": "", "other key": other.proof(t, http.MethodPost, tokenURL, "", nil)} {
		if code, m := e.tokenPost("mobile", "", p, refresh); code != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Fatalf("refresh with %s: %d %v", name, code, m)
		}
	}
	code, m = e.tokenPost("mobile", "", key.proof(t, http.MethodPost, tokenURL, "", nil), refresh)
	if code != http.StatusOK || m["token_type"] != "DPoP" {
		t.Fatalf("refresh with the bound key after refused attempts: %d %v", code, m)
	}
}
