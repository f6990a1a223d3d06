package oidc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/oidc"
)

// send posts body to the provider's path, with HTTP Basic credentials
// when user is set, and returns the status, headers and decoded JSON.
func (e *env) send(path, ctype, body, user, pass string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

const formType = "application/x-www-form-urlencoded"

// TestOAuthRequestErrors: the OAuth endpoints answer malformed requests
// with the RFC 6749 code that says what is wrong (issue 16 point 8): an
// unknown grant type is unsupported_grant_type (was invalid_request), an
// oversize body 413 invalid_request (was 400 "the POST body can not be
// empty"), a PAR body that is not a form invalid_request (was
// unsupported_response_type), and credentials that are not UTF-8
// invalid_request (was invalid_client after a store read).
func TestOAuthRequestErrors(t *testing.T) {
	e := newFakeEnv(t, nil)
	big := "x=" + strings.Repeat("a", 70<<10)
	cc := "grant_type=client_credentials&scope=openid"
	tests := []struct {
		name, path, ctype, body, user, pass string
		status                              int
		code                                string
	}{
		{"unknown grant type", oidc.PathToken, formType, "grant_type=password&username=a&password=b", "machine", e.mSecret, 400, "unsupported_grant_type"},
		{"unknown grant type without client", oidc.PathToken, formType, "grant_type=urn:x", "", "", 400, "unsupported_grant_type"},
		{"oversize token body", oidc.PathToken, formType, cc + "&" + big, "machine", e.mSecret, 413, "invalid_request"},
		{"malformed token form", oidc.PathToken, formType, "%zz", "machine", e.mSecret, 400, "invalid_request"},
		{"oversize introspection body", oidc.PathIntrospect, formType, big, "machine", e.mSecret, 413, "invalid_request"},
		{"oversize revocation body", oidc.PathRevoke, formType, big, "machine", e.mSecret, 413, "invalid_request"},
		{"oversize PAR body", oidc.PathPAR, formType, big, "rp", e.secret, 413, "invalid_request"},
		{"oversize CIBA body", oidc.PathBackchannel, formType, big, "machine", e.mSecret, 413, "invalid_request"},
		{"PAR malformed form", oidc.PathPAR, formType, "%zz", "rp", e.secret, 400, "invalid_request"},
		{"PAR empty body", oidc.PathPAR, formType, "", "rp", e.secret, 400, "invalid_request"},
		{"PAR JSON body", oidc.PathPAR, "application/json", `{"response_type":"code"}`, "rp", e.secret, 400, "invalid_request"},
		{"PAR without response_type", oidc.PathPAR, formType, "client_id=rp&redirect_uri=" + url.QueryEscape(redirect), "rp", e.secret, 400, "invalid_request"},
		{"client_id not UTF-8", oidc.PathToken, formType, cc + "&client_id=%FF&client_secret=x", "", "", 400, "invalid_request"},
		{"basic secret not UTF-8", oidc.PathToken, formType, cc, "machine", "%FF", 400, "invalid_request"},
		{"basic client id not UTF-8", oidc.PathIntrospect, formType, "token=x", "%C3%28", "x", 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, m := e.with(t, false).send(tc.path, tc.ctype, tc.body, tc.user, tc.pass)
			if code != tc.status || m["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", code, m, tc.status, tc.code)
			}
		})
	}
}

// unavailableEph refuses writes as the Redis backend does at its memory
// limit: errors wrapping ephemeral.ErrUnavailable.
type unavailableEph struct{ ephemeral.Store }

func (unavailableEph) err() error {
	return fmt.Errorf("redis: set: %w: OOM command not allowed when used memory > 'maxmemory'", ephemeral.ErrUnavailable)
}
func (u unavailableEph) Set(context.Context, string, []byte, time.Duration) error { return u.err() }
func (u unavailableEph) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, u.err()
}
func (u unavailableEph) SetUnless(context.Context, string, []ephemeral.Write, ...ephemeral.Write) (bool, error) {
	return false, u.err()
}

// TestClientCredentialsDuringEphemeralFault: while Redis refuses writes,
// client_credentials answers 503 temporarily_unavailable with Retry-After,
// an RFC 6749 error (issue 16 point 8; was 500 {"error":"error"}).
func TestClientCredentialsDuringEphemeralFault(t *testing.T) {
	eph := &switchEph{Store: memoryStore(t)}
	e := newEnv(t, sqliteStore(t), eph, nil)
	eph.down = true
	code, h, m := e.send(oidc.PathToken, formType, "grant_type=client_credentials&scope=openid", "machine", e.mSecret)
	if code != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("%d %v Retry-After %q", code, m, h.Get("Retry-After"))
	}
	eph.down = false
	if code, _, m := e.send(oidc.PathToken, formType, "grant_type=client_credentials&scope=openid", "machine", e.mSecret); code != 200 {
		t.Fatalf("after the fault: %d %v", code, m)
	}
}

// switchEph is unavailableEph while down is set.
type switchEph struct {
	ephemeral.Store
	down bool
}

func (s *switchEph) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if s.down {
		return unavailableEph{}.Set(ctx, k, v, ttl)
	}
	return s.Store.Set(ctx, k, v, ttl)
}

func (s *switchEph) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if s.down {
		return unavailableEph{}.SetNX(ctx, k, v, ttl)
	}
	return s.Store.SetNX(ctx, k, v, ttl)
}

func (s *switchEph) SetUnless(ctx context.Context, g string, gw []ephemeral.Write, pw ...ephemeral.Write) (bool, error) {
	if s.down {
		return unavailableEph{}.SetUnless(ctx, g, gw, pw...)
	}
	return s.Store.SetUnless(ctx, g, gw, pw...)
}

// TestIntrospectionAndRevocationAuthMethods: introspection and revocation
// accept the client authentication method each client is registered with
// (issue 16 point 8: introspection took only HTTP Basic), refuse the
// others, and discovery publishes the methods of both endpoints.
func TestIntrospectionAndRevocationAuthMethods(t *testing.T) {
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
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, _, err := adm.Create(ctx, "pkjwt", machine("private_key_jwt", jwksOf(t, key.Public()))); err != nil {
		t.Fatal(err)
	}
	tokenURL := e.issuer + oidc.PathToken
	const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	newToken := func(t *testing.T) string {
		code, m := e.with(t, false).tokenPost("machine", e.mSecret, "", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}})
		if code != 200 {
			t.Fatalf("token: %d %v", code, m)
		}
		return m["access_token"].(string)
	}
	type auth struct {
		user, pass string     // HTTP Basic
		form       url.Values // added to the body
	}
	methods := []struct {
		name string
		auth func() auth
		want int
	}{
		{"client_secret_basic", func() auth { return auth{user: "machine", pass: e.mSecret} }, 200},
		{"client_secret_post", func() auth { return auth{form: url.Values{"client_id": {"post"}, "client_secret": {postSecret}}} }, 200},
		{"private_key_jwt", func() auth {
			return auth{form: url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {assertion(t, key, jose.ES256, "pkjwt", tokenURL, time.Minute)}}}
		}, 200},
		{"post client over basic", func() auth { return auth{user: "post", pass: postSecret} }, 401},
		{"basic client over post", func() auth { return auth{form: url.Values{"client_id": {"machine"}, "client_secret": {e.mSecret}}} }, 401},
		{"wrong secret", func() auth { return auth{form: url.Values{"client_id": {"post"}, "client_secret": {"nope"}}} }, 401},
		{"public client", func() auth { return auth{form: url.Values{"client_id": {"spa"}}} }, 401},
	}
	for _, m := range methods {
		t.Run("introspect/"+m.name, func(t *testing.T) {
			tok := newToken(t)
			a := m.auth()
			form := url.Values{"token": {tok}}
			for k, v := range a.form {
				form[k] = v
			}
			code, _, body := e.with(t, false).send(oidc.PathIntrospect, formType, form.Encode(), a.user, a.pass)
			if code != m.want {
				t.Fatalf("%d %v, want %d", code, body, m.want)
			}
			if code == 200 && (body["active"] != true || body["client_id"] != "machine") {
				t.Fatalf("introspection %v", body)
			}
			if code == 401 && body["error"] != "invalid_client" {
				t.Fatalf("error %v", body)
			}
		})
		if m.name == "public client" {
			continue // a public client revokes only its own tokens (RFC 7009)
		}
		t.Run("revoke/"+m.name, func(t *testing.T) {
			// Each client revokes a token of its own.
			a := m.auth()
			var tok string
			if m.want == 200 {
				form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
				for k, v := range a.form {
					form[k] = v
				}
				code, _, body := e.with(t, false).send(oidc.PathToken, formType, form.Encode(), a.user, a.pass)
				if code != 200 {
					t.Fatalf("token: %d %v", code, body)
				}
				tok = body["access_token"].(string)
				a = m.auth() // a fresh assertion (jti)
			} else {
				tok = newToken(t)
			}
			form := url.Values{"token": {tok}}
			for k, v := range a.form {
				form[k] = v
			}
			code, _, body := e.with(t, false).send(oidc.PathRevoke, formType, form.Encode(), a.user, a.pass)
			if code != m.want {
				t.Fatalf("%d %v, want %d", code, body, m.want)
			}
			if active := e.with(t, false).active(tok); active != (m.want != 200) {
				t.Fatalf("token active %v after revocation %d", active, code)
			}
		})
	}

	resp, body := e.get(e.issuer + oidc.PathDiscovery)
	var d map[string]any
	if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %v", err)
	}
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("introspection_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}) {
		t.Errorf("introspection_endpoint_auth_methods_supported %v", got)
	}
	if got := list("revocation_endpoint_auth_methods_supported"); !slices.Equal(got, oidc.AuthMethods) {
		t.Errorf("revocation_endpoint_auth_methods_supported %v", got)
	}
}

// TestClientAuthLimits: failed client authentications are limited per
// address (issue 16 point 6): past the limit every OAuth endpoint that
// authenticates clients answers 429 temporarily_unavailable with
// Retry-After, a correct secret included, and the failures are logged.
func TestClientAuthLimits(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	eph := memoryStore(t)
	secrets, err := clientauth.New(clientauth.Config{Key: oidc.ClientSecretKey(testMaster), Ephemeral: eph, Logger: log,
		Limits: clientauth.Limits{PerAddress: 3, Window: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sqliteStore(t), eph, func(c *oidc.Config) { c.ClientAuth = secrets })
	cc := "grant_type=client_credentials&scope=openid"
	for i := range 4 {
		if code, _, m := e.send(oidc.PathToken, formType, cc, "machine", fmt.Sprint("guess-", i)); code != 401 {
			t.Fatalf("guess %d: %d %v", i, code, m)
		}
	}
	if !strings.Contains(logs.String(), "client authentication failed") || !strings.Contains(logs.String(), "client_id=machine") ||
		!strings.Contains(logs.String(), "client authentication limited") {
		t.Errorf("failures not logged: %s", logs.String())
	}
	for _, tc := range []struct{ name, path, body, user, pass string }{
		{"token, correct secret", oidc.PathToken, cc, "machine", e.mSecret},
		{"token, form credentials", oidc.PathToken, cc + "&client_id=post&client_secret=x", "", ""},
		{"introspection", oidc.PathIntrospect, "token=x", "machine", e.mSecret},
		{"revocation", oidc.PathRevoke, "token=x", "machine", e.mSecret},
		{"PAR", oidc.PathPAR, "response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(redirect), "rp", e.secret},
		{"CIBA", oidc.PathBackchannel, "scope=openid&login_hint=x", "machine", e.mSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, m := e.with(t, false).send(tc.path, formType, tc.body, tc.user, tc.pass)
			ra, _ := strconv.Atoi(h.Get("Retry-After"))
			if code != http.StatusTooManyRequests || m["error"] != "temporarily_unavailable" || ra < 1 || ra > 60 {
				t.Fatalf("%d %v Retry-After %q", code, m, h.Get("Retry-After"))
			}
		})
	}
}

// logoutConfirmed signs out like a citizen: GET /oauth2/logout and, when
// it asks, the confirmation's POST.
func (e *env) logoutConfirmed() (*http.Response, string) {
	e.t.Helper()
	resp, body := e.get(e.issuer + oidc.PathLogout)
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return resp, body
	}
	return e.post(e.issuer+oidc.PathLogout, url.Values{"csrf": {m[1]}, "decision": {"logout"}})
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// TestLogoutConfirmation: GET /oauth2/logout without an id_token_hint asks
// the signed-in citizen (OIDC RP-Initiated Logout 1.0 section 2; issue 16
// point 8: it signed out at once, so any page could sign a citizen out
// with a link). Only the confirmation's POST with its CSRF token signs out.
func TestLogoutConfirmation(t *testing.T) {
	e := newFakeEnv(t, nil)
	ctx := context.Background()
	v := oauth2.GenerateVerifier()
	q := e.login(e.conf.AuthCodeURL("state-lo1", oauth2.S256ChallengeOption(v)), nil, true)
	tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	signedIn := func() bool {
		v := oauth2.GenerateVerifier()
		q := e.login(e.conf.AuthCodeURL("state-lo2", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "none")), nil, false)
		return q.Get("code") != ""
	}
	logoutURL := e.issuer + oidc.PathLogout + "?" + url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {postLogout}, "state": {"bye"}}.Encode()

	resp, body := e.get(logoutURL)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `value="logout"`) || !strings.Contains(body, "Relying App") {
		t.Fatalf("logout without id_token_hint: %d %s", resp.StatusCode, body)
	}
	if !signedIn() || !e.active(tok.AccessToken) {
		t.Fatal("a GET without id_token_hint signed the citizen out")
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token: %s", body)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(h[1], h[2])
	}
	if form.Get("post_logout_redirect_uri") != postLogout || form.Get("state") != "bye" {
		t.Fatalf("parameters not carried: %v", form)
	}

	// A cross-site POST has no valid token; "stay" keeps the session.
	forged := url.Values{"csrf": {"forged"}, "decision": {"logout"}, "client_id": {"rp"}}
	if resp, _ := e.post(e.issuer+oidc.PathLogout, forged); resp.StatusCode != http.StatusForbidden || !signedIn() {
		t.Fatalf("forged confirmation: %d", resp.StatusCode)
	}
	if resp, _ := e.post(e.issuer+oidc.PathLogout, url.Values{"client_id": {"rp"}}); resp.StatusCode != 200 || !signedIn() {
		t.Fatalf("POST without a token must ask too: %d", resp.StatusCode)
	}
	form.Set("decision", "stay")
	if resp, _ := e.post(e.issuer+oidc.PathLogout, form); resp.StatusCode != 200 || !signedIn() {
		t.Fatalf("stay: %d", resp.StatusCode)
	}

	form.Set("decision", "logout")
	resp, _ = e.post(e.issuer+oidc.PathLogout, form)
	if lq := callback(t, resp); lq.Get("state") != "bye" {
		t.Fatalf("logout redirect %v", lq)
	}
	if signedIn() || e.active(tok.AccessToken) {
		t.Fatal("still signed in after the confirmed logout")
	}

	// Signed out already: nothing to confirm.
	if resp, _ := e.get(logoutURL); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout without a session: %d", resp.StatusCode)
	}
}

// TestLogoutPageRenderer: a PageRenderer that implements LogoutRenderer
// draws the confirmation.
func TestLogoutPageRenderer(t *testing.T) {
	var got []oidc.LogoutPage
	e := newFakeEnv(t, func(c *oidc.Config) { c.Pages = logoutPages{recordingPages{&[]oidc.ConsentPage{}}, &got} })
	e.login(e.conf.AuthCodeURL("state-lo3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil, true)
	resp, body := e.get(e.issuer + oidc.PathLogout)
	if resp.StatusCode != 200 || len(got) != 1 || got[0].CSRF == "" || got[0].Action != oidc.PathLogout || !strings.Contains(body, got[0].CSRF) {
		t.Fatalf("%d %+v %s", resp.StatusCode, got, body)
	}
}

type logoutPages struct {
	recordingPages
	got *[]oidc.LogoutPage
}

func (l logoutPages) RenderLogout(w http.ResponseWriter, _ *http.Request, p oidc.LogoutPage) {
	*l.got = append(*l.got, p)
	_, _ = io.WriteString(w, `<form method="post" action="`+p.Action+`"><input type="hidden" name="csrf" value="`+p.CSRF+`"></form>`)
}
