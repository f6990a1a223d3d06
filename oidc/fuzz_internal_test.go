package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// Fuzz tests of the provider's parsers of untrusted input: the RFC 7591
// registration body, the CIBA bc-authorize form, the DPoP proof, the
// private_key_jwt client assertion and the binary session decoder. The
// endpoint targets drive the provider's handler in memory (no network) over
// the fake store and ephemeral store; the ephemeral store's clock jumps a
// day per input, so rate limits and replay caches left by one input do not
// decide the next one's answer.

const (
	fuzzIssuer   = "https://id.example"
	fuzzIDNumber = "110101199003074512"
	jwtBearer    = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// refuseAll is a login method that authenticates nobody (the fuzz targets
// reach no login).
type refuseAll struct{}

func (refuseAll) Method() string                                    { return "refuse" }
func (refuseAll) MaxACR() string                                    { return ACRFaceLiveness }
func (refuseAll) Begin(context.Context, *LoginAttempt) (any, error) { return nil, nil }
func (refuseAll) Finish(context.Context, *LoginAttempt, *http.Request) (*Authentication, error) {
	return nil, ErrAuthenticationFailed
}

// fuzzProvider is a provider built once per fuzz target.
type fuzzProvider struct {
	p        *Provider
	st       store.Store
	skew     atomic.Int64 // the ephemeral store's clock offset, in days
	secret   string       // of client "desk" (CIBA, client_secret_basic)
	assertEC *ecdsa.PrivateKey
}

// next starts an input: the ephemeral store's clock moves a day ahead.
func (fp *fuzzProvider) next() { fp.skew.Add(1) }

func newFuzzProvider(tb testing.TB) *fuzzProvider {
	tb.Helper()
	fp := &fuzzProvider{st: sqlitetest.Open(tb)}
	eph := memory.New(memory.Options{Now: func() time.Time { return time.Now().Add(time.Duration(fp.skew.Load()) * 24 * time.Hour) }})
	tb.Cleanup(func() { eph.Close() })
	p, err := New(Config{
		Issuer: fuzzIssuer, Store: fp.st, Ephemeral: eph, Secret: []byte("0123456789abcdef0123456789abcdef-fuzz-master"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ClientCacheTTL: -1,
		Authenticators: []Authenticator{refuseAll{}}, DynamicRegistration: &RegistrationPolicy{AllowConfidential: true, PerIPPerHour: 1000},
	})
	if err != nil {
		tb.Fatal(err)
	}
	fp.p = p
	ctx := context.Background()
	if err := fp.st.Citizens().Create(ctx, &store.Citizen{ID: "cit-fuzz", IDNumber: fuzzIDNumber, Name: "Fuzz"}); err != nil {
		tb.Fatal(err)
	}
	adm, err := NewClientAdmin(fp.st.Clients(), p.cfg.Secret, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, fp.secret, err = adm.Create(ctx, "desk", ClientSpec{Name: "Desk", GrantTypes: []string{GrantCIBA},
		Scopes: []string{"openid", "profile"}}); err != nil {
		tb.Fatal(err)
	}
	fp.assertEC, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: fp.assertEC.Public(), KeyID: "k1", Use: "sig"}}})
	if _, _, err := adm.Create(ctx, "pkjwt", ClientSpec{Name: "pkjwt", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"openid"}, AuthMethod: "private_key_jwt", JWKS: jwks}); err != nil {
		tb.Fatal(err)
	}
	return fp
}

// serve runs one request through the provider's handler and decodes its
// JSON answer (nil when the body is not a JSON object).
func (fp *fuzzProvider) serve(r *http.Request) (int, map[string]any, string) {
	rec := httptest.NewRecorder()
	fp.p.Handler().ServeHTTP(rec, r)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// oauthCodes are the error codes the OAuth endpoints may answer a refused
// request with: RFC 6749 section 5.2, RFC 7591 section 3.2.2, CIBA section
// 13 and the 503 of an unavailable store.
var oauthCodes = []string{
	"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
	"invalid_scope", "invalid_client_metadata", "invalid_redirect_uri", "unknown_user_id",
	"invalid_binding_message", "slow_down", "access_denied", "temporarily_unavailable",
}

// checkRefusal fails unless a refused answer is a 4xx with an OAuth error code.
func checkRefusal(t *testing.T, code int, m map[string]any, body string) {
	t.Helper()
	if code >= 500 {
		t.Fatalf("answer %d %s: a malformed request is not a server error", code, body)
	}
	if code < 400 {
		return
	}
	if e, _ := m["error"].(string); !slices.Contains(oauthCodes, e) {
		t.Fatalf("answer %d %s: error is not an OAuth error code", code, body)
	}
}

// registrationSeeds are the bodies of TestDynamicRegistration and
// TestDynamicRegistrationAuthMethods, and a few malformed ones.
var registrationSeeds = []string{
	`{"redirect_uris":["https://app.example/cb"],"client_name":"Self-registered app","scope":"openid profile offline_access","grant_types":["authorization_code","refresh_token"]}`,
	`{"redirect_uris":["https://app.example/cb"],"client_name":"x","token_endpoint_auth_method":"client_secret_basic"}`,
	`{"redirect_uris":["https://app.example/cb"],"client_name":"x","token_endpoint_auth_method":"client_secret_post"}`,
	`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}`,
	`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
	`{"redirect_uris":["https://app.example/cb"],"jwks":{"keys":[]}}`,
	`{"redirect_uris":["https://app.example/cb"],"scope":"openid id_number"}`,
	`{"redirect_uris":["https://app.example/cb"],"grant_types":["client_credentials"]}`,
	`{"redirect_uris":["https://app.example/cb"],"response_types":["token"]}`,
	`{"redirect_uris":["http://app.example/cb"]}`,
	`{"redirect_uris":["https://app.example/cb#x"]}`,
	`{"redirect_uris":["https://app.example/cb"],"backchannel_logout_uri":"https://127.0.0.1/bc"}`,
	`{"redirect_uris":["https://app.example/cb"],"backchannel_logout_uri":"https://rp.example/bc","post_logout_redirect_uris":["https://rp.example/bye"]}`,
	`{"redirect_uris":["https://app.example/cb"],"sector_identifier_uri":"https://app.example/s.json"}`,
	`{"redirect_uris":["https://app.example/cb"],"id_token_signed_response_alg":"ES256"}`,
	`{"redirect_uris":["https://app.example/cb"],"id_token_signed_response_alg":"none"}`,
	`{}`, `[]`, `null`, `{"redirect_uris":"x"}`, "{\"client_name\":\"\xff\"}", `{"redirect_uris":["https://app.example/cb"]} trailing`,
}

// FuzzRegister: any body gets 201 or an RFC 7591 error (never a 5xx), and
// an accepted body round-trips: the answer and the stored client carry the
// metadata asked for.
func FuzzRegister(f *testing.F) {
	for _, s := range registrationSeeds {
		f.Add(s)
	}
	fp := newFuzzProvider(f)
	f.Fuzz(func(t *testing.T, body string) {
		fp.next()
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+PathRegister, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		code, m, raw := fp.serve(r)
		checkRefusal(t, code, m, raw)
		if code != http.StatusCreated {
			if code != http.StatusBadRequest && code != http.StatusTooManyRequests {
				t.Fatalf("answer %d %s, want 201, 400 or 429", code, raw)
			}
			return
		}
		var req registrationRequest
		if err := json.NewDecoder(strings.NewReader(body)).Decode(&req); err != nil {
			t.Fatalf("accepted a body that does not decode: %v", err)
		}
		id, _ := m["client_id"].(string)
		c, err := fp.st.Clients().Get(context.Background(), id)
		if err != nil {
			t.Fatalf("registered client %q not stored: %v", id, err)
		}
		scopes := strings.Fields(req.Scope)
		if len(scopes) == 0 {
			scopes = []string{ScopeOpenID}
		}
		method := req.TokenEndpointAuthMethod
		if method == "" {
			method = "none"
		}
		switch {
		case m["client_name"] != req.ClientName || c.Name != req.ClientName:
			t.Fatalf("client_name %q, stored %q, asked %q", m["client_name"], c.Name, req.ClientName)
		case !sameStrings(m["redirect_uris"], req.RedirectURIs) || !slices.Equal(c.RedirectURIs, req.RedirectURIs) && len(c.RedirectURIs)+len(req.RedirectURIs) > 0:
			t.Fatalf("redirect_uris %v, stored %v, asked %v", m["redirect_uris"], c.RedirectURIs, req.RedirectURIs)
		case m["scope"] != strings.Join(scopes, " ") || !slices.Equal(c.Scopes, scopes):
			t.Fatalf("scope %v, stored %v, asked %q", m["scope"], c.Scopes, req.Scope)
		case m["token_endpoint_auth_method"] != method:
			t.Fatalf("token_endpoint_auth_method %v, asked %q", m["token_endpoint_auth_method"], req.TokenEndpointAuthMethod)
		case c.FirstParty:
			t.Fatal("a self-registered client is first-party")
		case (method == "none") != (m["client_secret"] == nil) && method != "private_key_jwt":
			t.Fatalf("auth method %s with client_secret %v", method, m["client_secret"])
		}
		for _, g := range c.GrantTypes {
			if g != "authorization_code" && g != "refresh_token" {
				t.Fatalf("registered grant type %q", g)
			}
		}
	})
}

// sameStrings compares a decoded JSON array with want (null and [] alike).
func sameStrings(got any, want []string) bool {
	arr, _ := got.([]any)
	if len(arr) != len(want) {
		return false
	}
	for i, v := range arr {
		if v != want[i] {
			return false
		}
	}
	return true
}

// cibaSeeds are the forms of TestCIBA.
var cibaSeeds = []string{
	"scope=openid+profile&login_hint=" + fuzzIDNumber + "&binding_message=Desk+4%3A+7391",
	"scope=openid+profile&login_hint=" + fuzzIDNumber + "&requested_expiry=120&acr_values=" + url.QueryEscape(ACRFaceLiveness),
	"scope=profile&login_hint=" + fuzzIDNumber,
	"scope=openid+id_number&login_hint=" + fuzzIDNumber,
	"scope=openid+offline_access&login_hint=" + fuzzIDNumber,
	"scope=openid&login_hint=110101199001011234",
	"scope=openid&login_hint=",
	"scope=openid&login_hint=" + fuzzIDNumber + "&id_token_hint=x",
	"scope=openid&login_hint=" + fuzzIDNumber + "&binding_message=" + strings.Repeat("x", 65),
	"scope=openid&login_hint=" + fuzzIDNumber + "&requested_expiry=3600",
	"scope=openid&login_hint=" + fuzzIDNumber + "&requested_expiry=-1",
	"scope=openid&login_hint=" + fuzzIDNumber + "&acr_values=urn%3Ax",
	"scope=openid&login_hint=" + fuzzIDNumber + "&binding_message=%ff",
	"%zz", "scope=openid;login_hint=1", "",
}

// FuzzBackchannel: any bc-authorize form (from the authenticated desk
// client, or with the given Authorization header) gets 200 or a CIBA /
// RFC 6749 error (never a 5xx), and an accepted form gets an auth_req_id
// with the expiry asked for (default 300 s, at most 600 s).
func FuzzBackchannel(f *testing.F) {
	for _, s := range cibaSeeds {
		f.Add("", s)
	}
	f.Add("Basic ZGVzazpub3Bl", cibaSeeds[0]) // desk:nope
	f.Add("Basic !!!", cibaSeeds[0])
	f.Add("Bearer x", cibaSeeds[0])
	fp := newFuzzProvider(f)
	f.Fuzz(func(t *testing.T, auth, body string) {
		fp.next()
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+PathBackchannel, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth == "" {
			r.SetBasicAuth("desk", fp.secret)
		} else {
			r.Header.Set("Authorization", auth)
		}
		code, m, raw := fp.serve(r)
		checkRefusal(t, code, m, raw)
		if code != http.StatusOK {
			return
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("accepted a form that does not parse: %v", err)
		}
		want := 300.0
		if v := form.Get("requested_expiry"); v != "" {
			fmt.Sscan(v, &want)
		}
		exp, _ := m["expires_in"].(float64)
		switch {
		case m["auth_req_id"] == "" || m["auth_req_id"] == nil:
			t.Fatalf("no auth_req_id: %s", raw)
		case exp != want || exp < 1 || exp > 600:
			t.Fatalf("expires_in %v, asked %q", m["expires_in"], form.Get("requested_expiry"))
		case utf8.RuneCountInString(form.Get("binding_message")) > cibaMaxBinding:
			t.Fatal("accepted a long binding message")
		case !slices.Contains(strings.Fields(form.Get("scope")), ScopeOpenID):
			t.Fatal("accepted a request without openid")
		case form.Get("login_hint") != fuzzIDNumber:
			t.Fatalf("accepted login_hint %q", form.Get("login_hint"))
		}
	})
}

// fuzzAssertion signs a client assertion for "pkjwt" with claims changed by edit.
func (fp *fuzzProvider) assertion(tb testing.TB, edit func(c map[string]any)) string {
	now := time.Now()
	c := map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": fuzzIssuer + PathToken,
		"jti": fmt.Sprintf("a-%d", now.UnixNano()), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: fp.assertEC}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(c)
	obj, err := sig.Sign(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

// FuzzClientAssertion: any private_key_jwt client assertion at the token
// endpoint (client_credentials) gets tokens or an RFC 6749 error (never a
// 5xx, which fosite gives an unwrapped time-claim error); tokens only for
// an assertion whose time claims are valid and whose issuer is the client.
func FuzzClientAssertion(f *testing.F) {
	fp := newFuzzProvider(f)
	now := time.Now()
	for _, edit := range []func(c map[string]any){
		nil,
		func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() },
		func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() },
		func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() },
		func(c map[string]any) { delete(c, "exp") },
		func(c map[string]any) { c["exp"] = "tomorrow" },
		func(c map[string]any) { c["aud"] = "https://other.example/token" },
		func(c map[string]any) { c["iss"], c["sub"] = "desk", "desk" },
		func(c map[string]any) { delete(c, "jti") },
	} {
		f.Add("pkjwt", fp.assertion(f, edit))
	}
	f.Add("pkjwt", "a.b")
	f.Add("pkjwt", "a.b.c")
	f.Add("pkjwt", "eyJhbGciOiJub25lIn0.eyJleHAiOjF9.")
	f.Add("", fp.assertion(f, nil))
	f.Add("desk", fp.assertion(f, nil))
	f.Fuzz(func(t *testing.T, clientID, assertion string) {
		fp.next()
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"},
			"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
		if clientID != "" {
			form.Set("client_id", clientID)
		}
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		code, m, raw := fp.serve(r)
		checkRefusal(t, code, m, raw)
		if code != http.StatusOK {
			return
		}
		if hint := assertionTimesInvalid(assertion, time.Now()); hint != "" {
			t.Fatalf("tokens for an assertion with bad times (%s)", hint)
		}
		jws, err := jose.ParseSigned(assertion)
		if err != nil {
			t.Fatalf("tokens for an assertion that does not parse: %v", err)
		}
		payload, err := jws.Verify(fp.assertEC.Public())
		if err != nil {
			t.Fatalf("tokens for an assertion not signed by the client's key: %v", err)
		}
		var c struct{ Iss, Sub string }
		if json.Unmarshal(payload, &c) != nil || c.Iss != "pkjwt" || c.Sub != "pkjwt" {
			t.Fatalf("tokens for an assertion of iss %q sub %q", c.Iss, c.Sub)
		}
		if m["access_token"] == nil {
			t.Fatalf("200 without an access token: %s", raw)
		}
	})
}

// FuzzAssertionTimes: the time pre-check never panics, and passes only an
// assertion whose payload has a numeric exp after now and no nbf or iat
// beyond the allowed skew.
func FuzzAssertionTimes(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	enc := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	for _, s := range []string{
		enc(`{"exp":1800000060}`), enc(`{"exp":1799999999}`), enc(`{"exp":1800000060,"nbf":1800001000}`),
		enc(`{"exp":1800000060,"iat":1800001000}`), enc(`{"iat":1}`), enc(`{"exp":"x"}`), enc(`[]`),
		enc(`{"exp":1e400}`), enc(`{"exp":null}`), "a.b", "a.!!.c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jwt string) {
		if assertionTimesInvalid(jwt, now) != "" {
			return
		}
		parts := strings.Split(jwt, ".")
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal("passed a payload that is not base64url")
		}
		var c struct{ Exp, Nbf, Iat *float64 }
		if err := json.Unmarshal(b, &c); err != nil || c.Exp == nil || *c.Exp <= float64(now.Unix()) {
			t.Fatalf("passed %s: no exp after now", b)
		}
	})
}

// dpopHTU is the endpoint the DPoP fuzz target's proofs are checked for.
const dpopHTU = fuzzIssuer + PathToken

// dpopProofFor signs a proof with key k for the fixed clock now, with the
// claims and header type changed by edit.
func dpopProofFor(tb testing.TB, k *ecdsa.PrivateKey, now time.Time, edit func(c map[string]any, typ *string)) string {
	c := map[string]any{"jti": "jti-1", "htm": http.MethodPost, "htu": dpopHTU, "iat": now.Unix()}
	typ := "dpop+jwt"
	if edit != nil {
		edit(c, &typ)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ)))
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(c)
	obj, err := sig.Sign(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

// FuzzDPoPProof: any DPoP header is accepted or refused with errDPoP
// (never a panic or another error: the replay cache is in memory). An
// accepted proof has a jti within limits, the request's method, the
// endpoint's htu, an iat in the window and, with an access token, its ath;
// the returned thumbprint is a SHA-256 one; the same proof is then refused
// as replayed.
func FuzzDPoPProof(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sum := sha256.Sum256([]byte("access-token"))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		method, token string
		edit          func(c map[string]any, typ *string)
	}{
		{http.MethodPost, "", nil},
		{http.MethodGet, "access-token", func(c map[string]any, _ *string) { c["htm"], c["ath"] = http.MethodGet, ath }},
		{http.MethodGet, "access-token", func(c map[string]any, _ *string) { c["htm"] = http.MethodGet }},
		{http.MethodPost, "", func(_ map[string]any, typ *string) { *typ = "JWT" }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["htm"] = http.MethodGet }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["htu"] = "https://other.example/token" }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["htu"] = "HTTPS://ID.EXAMPLE/oauth2/token?x#y" }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["iat"] = now.Add(-2 * time.Minute).Unix() }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["iat"] = now.Add(time.Minute).Unix() }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["jti"] = strings.Repeat("j", dpopMaxJTI+1) }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { delete(c, "jti") }},
		{http.MethodPost, "", func(c map[string]any, _ *string) { c["iat"] = "now" }},
	} {
		f.Add(dpopProofFor(f, k, now, tc.edit), tc.method, tc.token)
	}
	f.Add("a.b.c", http.MethodPost, "")
	f.Add("", http.MethodPost, "")
	f.Add(strings.Repeat("A", dpopMaxProof+1), http.MethodPost, "")
	f.Fuzz(func(t *testing.T, proof, method, accessToken string) {
		p := &dpopChecker{eph: memory.New(memory.Options{Now: func() time.Time { return now }}), now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
		r := httptest.NewRequest(http.MethodPost, dpopHTU, nil)
		r.Method = method
		r.Header.Set("DPoP", proof)
		ctx := context.Background()
		jkt, err := p.dpopProof(ctx, r, dpopHTU, accessToken)
		if err != nil {
			if !errors.Is(err, errDPoP) {
				t.Fatalf("refused with %v, not errDPoP", err)
			}
			return
		}
		if !validJKT(jkt) {
			t.Fatalf("accepted with thumbprint %q", jkt)
		}
		jws, err := jose.ParseSigned(proof)
		if err != nil {
			t.Fatalf("accepted a proof that does not parse: %v", err)
		}
		var c dpopClaims
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatalf("accepted claims that do not decode: %v", err)
		}
		iat := time.Unix(int64(c.IAT), 0)
		switch {
		case len(proof) > dpopMaxProof:
			t.Fatalf("accepted a %d-byte proof", len(proof))
		case c.JTI == "" || len(c.JTI) > dpopMaxJTI:
			t.Fatalf("accepted jti of %d bytes", len(c.JTI))
		case c.HTM != method:
			t.Fatalf("accepted htm %q for %q", c.HTM, method)
		case !sameHTU(c.HTU, dpopHTU):
			t.Fatalf("accepted htu %q", c.HTU)
		case iat.Before(now.Add(-dpopPast)) || iat.After(now.Add(dpopFuture)):
			t.Fatalf("accepted iat %v", iat)
		case accessToken != "" && c.ATH != base64.RawURLEncoding.EncodeToString(sha256Of(accessToken)):
			t.Fatal("accepted a proof whose ath is not the access token's")
		}
		if _, err := p.dpopProof(ctx, r, dpopHTU, accessToken); !errors.Is(err, errDPoP) {
			t.Fatalf("a replayed proof: %v", err)
		}
	})
}

func sha256Of(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// FuzzSessionBinary: the session decoder (stored data, read back from the
// ephemeral and durable stores) never panics; bad data is an error that
// leaves the session as it was, and what it accepts encodes and decodes
// back to the same session.
func FuzzSessionBinary(f *testing.F) {
	var full Session
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n)
	s := newSession()
	s.DPoPJKT, s.CitizenID = "jkt", "cit"
	for _, v := range []*Session{&full, newSession(), {}, s} {
		b, err := v.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{sessionBinaryV1, 0, 1, 1})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, data []byte) {
		got := &Session{CitizenID: "keep"}
		if err := got.UnmarshalBinary(data); err != nil {
			if got.CitizenID != "keep" || got.Claims != nil {
				t.Fatalf("a refused input changed the session: %v", err)
			}
			return
		}
		b, err := got.AppendBinary(nil)
		if err != nil {
			t.Fatalf("a decoded session does not encode: %v", err)
		}
		back := &Session{CitizenID: "keep"}
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, back) {
			t.Fatalf("round trip:\n got %+v\nback %+v", got, back)
		}
	})
}

// TestFuzzSeedsAccepted: the first seed of each endpoint target is
// accepted, so the fuzzers start from inputs that reach the success path.
func TestFuzzSeedsAccepted(t *testing.T) {
	fp := newFuzzProvider(t)
	post := func(path, ctype, body string, basic bool) (int, string) {
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+path, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		if basic {
			r.SetBasicAuth("desk", fp.secret)
		}
		code, _, raw := fp.serve(r)
		return code, raw
	}
	if code, raw := post(PathRegister, "application/json", registrationSeeds[0], false); code != http.StatusCreated {
		t.Errorf("register: %d %s", code, raw)
	}
	if code, raw := post(PathBackchannel, "application/x-www-form-urlencoded", cibaSeeds[0], true); code != http.StatusOK {
		t.Errorf("bc-authorize: %d %s", code, raw)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"},
		"client_assertion_type": {jwtBearer}, "client_assertion": {fp.assertion(t, nil)}}
	if code, raw := post(PathToken, "application/x-www-form-urlencoded", form.Encode(), false); code != http.StatusOK {
		t.Errorf("client assertion: %d %s", code, raw)
	}
	now := time.Unix(1_800_000_000, 0)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p := &dpopChecker{eph: memory.New(memory.Options{Now: func() time.Time { return now }}), now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	r := httptest.NewRequest(http.MethodPost, dpopHTU, nil)
	r.Header.Set("DPoP", dpopProofFor(t, k, now, nil))
	if _, err := p.dpopProof(context.Background(), r, dpopHTU, ""); err != nil {
		t.Errorf("dpop: %v", err)
	}
}
