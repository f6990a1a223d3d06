package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/oidc"
)

const (
	citizenID  = "cit-0001"
	idNumber   = "110101199003074512"
	citizenNm  = "Zhang Wei"
	redirect   = "http://127.0.0.1:1/cb"
	postLogout = "http://127.0.0.1:1/bye"
)

// fakeAuth completes login for the citizen named in the form (default
// citizenID) at the acr given (default face+liveness); "fail" refuses.
type fakeAuth struct{}

func (fakeAuth) Method() string { return "fake" }
func (fakeAuth) MaxACR() string { return oidc.ACRFaceLiveness }
func (fakeAuth) Begin(_ context.Context, a *oidc.LoginAttempt) (any, error) {
	return map[string]string{"digits": "0000", "login": a.ID[:4]}, nil
}
func (fakeAuth) Finish(_ context.Context, a *oidc.LoginAttempt, r *http.Request) (*oidc.Authentication, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	if r.Form.Get("fail") != "" {
		return nil, oidc.ErrAuthenticationFailed
	}
	id := r.Form.Get("citizen")
	if id == "" {
		id = a.LoginHint
	}
	if id == "" {
		id = citizenID
	}
	acr := r.Form.Get("acr")
	if acr == "" {
		acr = oidc.ACRFaceLiveness
	}
	at := time.Now()
	if ago := r.Form.Get("ago"); ago != "" {
		d, _ := time.ParseDuration(ago)
		at = at.Add(-d)
	}
	return &oidc.Authentication{CitizenID: id, ACR: acr, AMR: []string{oidc.AMRFace, oidc.AMRLiveness}, AuthTime: at}, nil
}

type env struct {
	t        testing.TB
	srv      *httptest.Server
	st       store.Store
	p        *oidc.Provider
	issuer   string
	secret   string // of client "rp"
	mSecret  string // of client "machine"
	op       *gooidc.Provider
	conf     *oauth2.Config
	browser  *http.Client
	mu       *sync.Mutex
	logouts  []string // logout tokens received by the back-channel endpoint
	bcServer *httptest.Server
}

// newEnv runs the provider on an httptest.Server with the given store.
func newEnv(t testing.TB, st store.Store, eph ephemeral.Store, mod func(*oidc.Config)) *env {
	t.Helper()
	return newEnvN(t, st, eph, 1, mod)
}

// newEnvN runs n provider nodes on the same stores behind one round-robin
// front (as behind a load balancer), so consecutive requests of one flow
// hit different nodes.
func newEnvN(t testing.TB, st store.Store, eph ephemeral.Store, n int, mod func(*oidc.Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, st: st, mu: &sync.Mutex{}}
	e.bcServer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		e.mu.Lock()
		e.logouts = append(e.logouts, r.Form.Get("logout_token"))
		e.mu.Unlock()
	}))
	t.Cleanup(e.bcServer.Close)
	e.srv = httptest.NewUnstartedServer(nil)
	e.issuer = "http://" + e.srv.Listener.Addr().String()
	master := testMaster
	cfg := oidc.Config{
		Issuer: e.issuer, Store: st, Ephemeral: eph, Secret: master,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticators:  []oidc.Authenticator{fakeAuth{}},
		InsecureCookies: true, AdminToken: "admin-token", ClientCacheTTL: -1,
		HTTPClient: e.bcServer.Client(),
	}
	if mod != nil {
		mod(&cfg)
	}
	var handlers []http.Handler
	for i := 0; i < n; i++ {
		p, err := oidc.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.p = p
		handlers = append(handlers, p.Handler())
	}
	var next atomic.Uint64
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[next.Add(1)%uint64(len(handlers))].ServeHTTP(w, r)
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	if err := st.Citizens().Create(ctx, &store.Citizen{ID: citizenID, IDNumber: idNumber, Name: citizenNm}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatal(err)
	}
	adm, err := oidc.NewClientAdmin(st.Clients(), master, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, e.secret, err = adm.Create(ctx, "rp", oidc.ClientSpec{
		Name: "Relying App", RedirectURIs: []string{redirect}, PostLogoutURIs: []string{postLogout},
		BackchannelLogoutURI: e.bcServer.URL + "/bc",
		Scopes:               []string{"openid", "profile", "id_number", "identity", "offline_access"},
		GrantTypes:           []string{"authorization_code", "refresh_token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err = adm.Create(ctx, "spa", oidc.ClientSpec{Name: "SPA", Public: true, RedirectURIs: []string{redirect},
		Scopes: []string{"openid", "profile"}}); err != nil {
		t.Fatal(err)
	}
	if _, e.mSecret, err = adm.Create(ctx, "machine", oidc.ClientSpec{Name: "Hotel desk", Role: "hotel",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	e.op, err = gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	ep := e.op.Endpoint()
	// The clients are registered for client_secret_basic only; without this
	// x/oauth2 retries a refused request with client_secret_post and reports
	// that second error instead of the first.
	ep.AuthStyle = oauth2.AuthStyleInHeader
	e.conf = &oauth2.Config{ClientID: "rp", ClientSecret: e.secret, Endpoint: ep, RedirectURL: redirect,
		Scopes: []string{"openid", "profile", "id_number", "identity", "offline_access"}}
	e.browser = newBrowser(t)
	return e
}

// testMaster is the provider secret of every test environment.
var testMaster = []byte("0123456789abcdef0123456789abcdef-test-master")

// clientAdmin registers clients in e's store.
func (e *env) clientAdmin() *oidc.ClientAdmin {
	e.t.Helper()
	adm, err := oidc.NewClientAdmin(e.st.Clients(), testMaster, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return adm
}

// register posts an RFC 7591 registration request.
func (e *env) register(body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+oidc.PathRegister, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return doJSON(e.t, req)
}

// doJSON sends req and decodes the JSON answer (nil when there is none).
func doJSON(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func newBrowser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "127.0.0.1:1" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// with returns e reporting to t, with a fresh browser if asked.
func (e *env) with(t testing.TB, fresh bool) *env {
	c := *e
	c.t = t
	if fresh {
		c.browser = newBrowser(t)
	}
	return &c
}

// newFakeEnv is a provider with the fake login methods on the embedded
// default stores: SQLite in t's temporary directory and the in-process
// ephemeral store.
func newFakeEnv(t *testing.T, mod func(*oidc.Config)) *env {
	return newEnv(t, sqliteStore(t), memoryStore(t), mod)
}

// get follows redirects within the provider and returns the last response.
func (e *env) get(u string) (*http.Response, string) {
	e.t.Helper()
	resp, err := e.browser.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) post(u string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	resp, err := e.browser.PostForm(u, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// callback parses the redirect to the client.
func callback(t testing.TB, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("want a redirect to the client, got %d", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Host != "127.0.0.1:1" {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	return u.Query()
}

// login runs authorize -> login -> (consent) and returns the callback query.
func (e *env) login(authURL string, loginForm url.Values, consent bool) url.Values {
	e.t.Helper()
	resp, body := e.get(authURL)
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		return callback(e.t, resp)
	}
	if strings.Contains(body, `action="/oauth2/login/fake/finish"`) {
		// The built-in page must not post an empty form as evidence (issue 16, point 6).
		e.t.Fatalf("the login page posts a form to finish: %s", body)
	}
	if !strings.Contains(body, "/oauth2/login/fake/finish") {
		e.t.Fatalf("expected the login page, got %d %s", resp.StatusCode, body)
	}
	if loginForm == nil {
		loginForm = url.Values{}
	}
	resp, body = e.post(e.issuer+"/oauth2/login/fake/finish", loginForm)
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		return callback(e.t, resp)
	}
	if !strings.Contains(body, `action="/oauth2/consent/claims"`) {
		if !consent {
			e.t.Fatalf("expected a redirect without consent, got %d %s", resp.StatusCode, body)
		}
		m := csrfRE.FindStringSubmatch(body)
		if m == nil {
			e.t.Fatalf("expected the consent page, got %d %s", resp.StatusCode, body)
		}
		resp, body = e.post(e.issuer+"/oauth2/consent", url.Values{"csrf": {m[1]}, "decision": {"approve"}})
		if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
			return callback(e.t, resp)
		}
	}
	return callback(e.t, e.shareClaims(body, nil))
}

var claimRE = regexp.MustCompile(`name="claim" value="([^"]+)"`)

// shareClaims answers the separate claims consent page in body, ticking
// the claims named in share (every claim the page lists when nil).
func (e *env) shareClaims(body string, share []string) *http.Response {
	e.t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `action="/oauth2/consent/claims"`) {
		e.t.Fatalf("expected the claims consent page, got %s", body)
	}
	if strings.Contains(body, "checked") {
		e.t.Fatalf("a claim is pre-ticked: %s", body)
	}
	form := url.Values{"csrf": {m[1]}, "decision": {"share"}}
	for _, c := range claimRE.FindAllStringSubmatch(body, -1) {
		if share == nil || slices.Contains(share, c[1]) {
			form.Add("claim", c[1])
		}
	}
	resp, _ := e.post(e.issuer+"/oauth2/consent/claims", form)
	return resp
}

func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestEndToEnd drives the provider with golang.org/x/oauth2 and go-oidc:
// discovery, authorize with PKCE, login, consent, code exchange, ID token
// verification against the JWKS, userinfo, refresh, reuse detection,
// revocation, logout with back-channel notification.
func TestEndToEnd(t *testing.T) {
	e := newFakeEnv(t, nil)
	runEndToEnd(t, e)
}

func runEndToEnd(t *testing.T, e *env) {
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	nonce := "nonce-0123456789"
	q := e.login(e.conf.AuthCodeURL("state-123", oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)), nil, true)
	if q.Get("state") != "state-123" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.op.Verifier(&gooidc.Config{ClientID: "rp"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	var claims struct {
		Nonce    string   `json:"nonce"`
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		SID      string   `json:"sid"`
		Name     string   `json:"name"`
		IDNumber string   `json:"id_number"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Nonce != nonce || claims.ACR != oidc.ACRFaceLiveness || len(claims.AMR) != 2 || claims.AuthTime == 0 || claims.SID == "" || claims.Name != citizenNm {
		t.Fatalf("id token claims %+v", claims)
	}
	if claims.IDNumber != "" {
		t.Fatal("the ID number must not be in the ID token")
	}
	if idt.Subject == citizenID || idt.Subject == "" {
		t.Fatalf("sub %q: want a pairwise subject", idt.Subject)
	}

	ui, err := e.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uc map[string]any
	if err := ui.Claims(&uc); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != idt.Subject || uc["name"] != citizenNm || uc["id_number"] != "110***********4512" {
		t.Fatalf("userinfo %v", uc)
	}
	vc, _ := uc["verified_claims"].(map[string]any)
	ver, _ := vc["verification"].(map[string]any)
	if ver["trust_framework"] != "trustid" || ver["time"] == nil || ver["evidence"] == nil {
		t.Fatalf("verified_claims %v", vc)
	}

	// Refresh rotates; the old refresh token is then refused and its reuse
	// revokes the whole family, including the newest tokens.
	tok2, err := e.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if id2, _ := tok2.Extra("id_token").(string); id2 == "" {
		t.Fatal("no id token on refresh")
	} else if _, err := e.op.Verifier(&gooidc.Config{ClientID: "rp"}).Verify(ctx, id2); err != nil {
		t.Fatalf("refreshed id token: %v", err)
	}
	if e.active(tok.AccessToken) {
		t.Fatal("access token of the rotated refresh token still active")
	}
	if !e.active(tok2.AccessToken) {
		t.Fatal("new access token inactive")
	}
	_, err = e.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if oauthErr(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	if e.active(tok2.AccessToken) || e.active(tok2.RefreshToken) {
		t.Fatal("refresh token reuse did not revoke the family")
	}

	// The browser session lets the next request through without login or
	// consent (prompt=none), and revocation ends a token.
	v2 := oauth2.GenerateVerifier()
	q = e.login(e.conf.AuthCodeURL("state-0002", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "none")), nil, false)
	tok3, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v2))
	if err != nil {
		t.Fatalf("exchange with session: %v", err)
	}
	if !e.active(tok3.AccessToken) {
		t.Fatal("token inactive")
	}
	resp := e.basicPost("/oauth2/revoke", "rp", e.secret, url.Values{"token": {tok3.AccessToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if e.active(tok3.AccessToken) {
		t.Fatal("revoked token still active")
	}

	// One more grant in the same browser session: logout ends its access
	// token, while its offline refresh token survives.
	v4 := oauth2.GenerateVerifier()
	q = e.login(e.conf.AuthCodeURL("state-0004", oauth2.S256ChallengeOption(v4), oauth2.SetAuthURLParam("prompt", "none")), nil, false)
	tok4, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v4))
	if err != nil || !e.active(tok4.AccessToken) || tok4.RefreshToken == "" {
		t.Fatalf("second grant in the session: %v", err)
	}

	// RP-initiated logout with back-channel notification.
	id3, _ := tok3.Extra("id_token").(string)
	lr, _ := e.get(e.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {id3}, "post_logout_redirect_uri": {postLogout}, "state": {"bye"}}.Encode())
	if lq := callback(t, lr); lq.Get("state") != "bye" {
		t.Fatalf("logout redirect %v", lq)
	}
	e.mu.Lock()
	logouts := append([]string(nil), e.logouts...)
	e.mu.Unlock()
	if len(logouts) != 1 {
		t.Fatalf("back-channel logout tokens: %d", len(logouts))
	}
	lt, err := e.op.Verifier(&gooidc.Config{ClientID: "rp"}).Verify(ctx, logouts[0])
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var ltc struct {
		SID    string                    `json:"sid"`
		Events map[string]map[string]any `json:"events"`
		Nonce  string                    `json:"nonce"`
	}
	_ = lt.Claims(&ltc)
	if ltc.SID != claims.SID || ltc.Events["http://schemas.openid.net/event/backchannel-logout"] == nil || lt.Subject != idt.Subject || ltc.Nonce != "" {
		t.Fatalf("logout token claims %+v sub %s", ltc, lt.Subject)
	}
	q = e.login(e.conf.AuthCodeURL("state-0003", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "none")), nil, false)
	if q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %v", q)
	}
	if e.active(tok4.AccessToken) {
		t.Fatal("access token of the session still active after logout")
	}
	if tok5, err := e.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok4.RefreshToken}).Token(); err != nil || !e.active(tok5.AccessToken) {
		t.Fatalf("offline refresh after logout: %v", err)
	}
	checkAudit(t, e.st, "login.fake", "oidc.consent", "oidc.authorize", "oidc.logout")
}

// checkAudit verifies st's audit chain with audit.Verify (the check
// `trustid verify-audit` runs) and that it holds the actions given.
func checkAudit(t *testing.T, st store.Store, actions ...string) {
	t.Helper()
	n, err := audit.Verify(t.Context(), st.Audit())
	if err != nil {
		t.Fatalf("audit.Verify after %d events: %v", n, err)
	}
	evs, err := st.Audit().List(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Action] = true
	}
	for _, a := range actions {
		if !seen[a] {
			t.Errorf("no %s event in the audit log (%d events)", a, len(evs))
		}
	}
}

func (e *env) basicPost(path, id, secret string, form url.Values) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) introspect(token string) map[string]any {
	e.t.Helper()
	resp := e.basicPost("/oauth2/introspect", "rp", e.secret, url.Values{"token": {token}})
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) active(token string) bool { return e.introspect(token)["active"] == true }

func TestNegative(t *testing.T) { runNegative(t, newFakeEnv(t, nil)) }

// runNegative checks that bad requests are refused with the right OAuth error.
func runNegative(t *testing.T, e *env) {
	ctx := context.Background()
	authURL := func(extra ...oauth2.AuthCodeOption) (string, string) {
		v := oauth2.GenerateVerifier()
		return e.conf.AuthCodeURL("state-0001", append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v)}, extra...)...), v
	}

	t.Run("redirect_uri mismatch", func(t *testing.T) {
		u, _ := authURL(oauth2.SetAuthURLParam("redirect_uri", "http://127.0.0.1:1/evil"))
		resp, body := e.get(u)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"invalid_request"`) {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("prompt=none without session", func(t *testing.T) {
		u, _ := authURL(oauth2.SetAuthURLParam("prompt", "none"))
		if q := e.with(t, false).login(u, nil, false); q.Get("error") != "login_required" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("unknown scope", func(t *testing.T) {
		c := *e.conf
		c.Scopes = []string{"openid", "payroll"}
		resp, _ := e.get(c.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if q := callback(t, resp); q.Get("error") != "invalid_scope" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("public client without PKCE", func(t *testing.T) {
		c := *e.conf
		c.ClientID, c.ClientSecret, c.Scopes = "spa", "", []string{"openid"}
		resp, _ := e.get(c.AuthCodeURL("state-0001"))
		if q := callback(t, resp); q.Get("error") != "invalid_request" {
			t.Fatalf("callback %v", q)
		}
	})

	u, verifier := authURL()
	q := e.login(u, nil, true) // consent given once here for the rest
	code := q.Get("code")
	t.Run("missing PKCE verifier", func(t *testing.T) {
		_, err := e.conf.Exchange(ctx, code)
		if oauthErr(err) != "invalid_grant" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		c := *e.conf
		c.ClientSecret = "wrong"
		_, err := c.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if oauthErr(err) != "invalid_client" {
			t.Fatalf("err %v", err)
		}
	})

	// A failed PKCE check burns the code (fosite invalidates on error paths
	// only for the verifier mismatch); start a fresh one for the rest.
	u, verifier = authURL()
	code = e.login(u, nil, false).Get("code")
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		_, err := e.conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if oauthErr(err) != "invalid_grant" {
			t.Fatalf("err %v", err)
		}
	})
	u, verifier = authURL()
	code = e.login(u, nil, false).Get("code")
	t.Run("reused code revokes its tokens", func(t *testing.T) {
		tok, err := e.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if oauthErr(err) != "invalid_grant" {
			t.Fatalf("second exchange: %v", err)
		}
		if e.active(tok.AccessToken) || e.active(tok.RefreshToken) {
			t.Fatal("tokens from a replayed code still active")
		}
	})
	t.Run("wrong client secret on client_credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "machine", ClientSecret: "nope", TokenURL: e.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
		if _, err := cc.Token(ctx); oauthErr(err) != "invalid_client" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("step-up forces a new login", func(t *testing.T) {
		e2 := e.with(t, true)
		e2.login(e.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), url.Values{"acr": {oidc.ACRFace}}, false)
		u, _ := authURL(oauth2.SetAuthURLParam("acr_values", oidc.ACRFaceLiveness), oauth2.SetAuthURLParam("prompt", "none"))
		if q := e2.login(u, nil, false); q.Get("error") != "login_required" {
			t.Fatalf("callback %v", q)
		}
		u, _ = authURL(oauth2.SetAuthURLParam("acr_values", oidc.ACRFaceLiveness))
		resp, body := e2.get(u)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "fake/finish") {
			t.Fatalf("step-up did not ask for login: %d", resp.StatusCode)
		}
		// A login below the requested level is refused.
		resp, _ = e2.post(e.issuer+"/oauth2/login/fake/finish", url.Values{"acr": {oidc.ACRFace}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("low acr accepted: %d", resp.StatusCode)
		}
		// Spoken digits asked for: a login with the action challenge is below it.
		resp, _ = e2.post(e.issuer+"/oauth2/login/fake/finish", url.Values{"acr": {oidc.ACRFaceActions}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("face+actions accepted for face+liveness: %d", resp.StatusCode)
		}
	})
	t.Run("prompt=login forces a new login", func(t *testing.T) {
		e2 := e.with(t, true)
		e2.login(e.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil, false)
		u, v := authURL(oauth2.SetAuthURLParam("prompt", "login"))
		resp, body := e2.get(u)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "fake/finish") {
			t.Fatalf("prompt=login did not ask for login: %d", resp.StatusCode)
		}
		resp, _ = e2.post(e.issuer+"/oauth2/login/fake/finish", nil)
		if _, err := e.conf.Exchange(ctx, callback(t, resp).Get("code"), oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("exchange after prompt=login: %v", err)
		}
	})
	t.Run("login_hint reaches the authenticator", func(t *testing.T) {
		e2 := e.with(t, true)
		u, _ := authURL(oauth2.SetAuthURLParam("login_hint", "no-such-citizen"))
		e2.get(u)
		if resp, _ := e2.post(e.issuer+"/oauth2/login/fake/finish", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown hinted citizen: %d", resp.StatusCode)
		}
		u, _ = authURL(oauth2.SetAuthURLParam("login_hint", citizenID))
		if q := e2.login(u, nil, false); q.Get("code") == "" {
			t.Fatalf("hinted login: %v", q)
		}
	})
	t.Run("max_age forces a new login", func(t *testing.T) {
		e2 := e.with(t, true)
		e2.login(e.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), url.Values{"ago": {"2h"}}, false)
		u, _ := authURL(oauth2.SetAuthURLParam("max_age", "3600"), oauth2.SetAuthURLParam("prompt", "none"))
		if q := e2.login(u, nil, false); q.Get("error") != "login_required" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("failed login is refused uniformly", func(t *testing.T) {
		e2 := e.with(t, true)
		u, _ := authURL()
		e2.get(u)
		for i := 1; i <= 5; i++ {
			resp, body := e2.post(e.issuer+"/oauth2/login/fake/finish", url.Values{"fail": {"1"}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "could not confirm") {
				t.Fatalf("try %d: got %d", i, resp.StatusCode)
			}
		}
		// After five failures the attempt is gone: even a good step is refused.
		resp, body := e2.post(e.issuer+"/oauth2/login/fake/finish", nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "login_expired") {
			t.Fatalf("after the limit: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("consent denied", func(t *testing.T) {
		e2 := e.with(t, true)
		u, _ := authURL(oauth2.SetAuthURLParam("prompt", "consent"))
		e2.get(u)
		_, body := e2.post(e.issuer+"/oauth2/login/fake/finish", nil)
		m := csrfRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no consent page")
		}
		resp, _ := e2.post(e.issuer+"/oauth2/consent", url.Values{"csrf": {"forged"}, "decision": {"approve"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged csrf: %d", resp.StatusCode)
		}
		resp, _ = e2.post(e.issuer+"/oauth2/consent", url.Values{"csrf": {m[1]}, "decision": {"deny"}})
		if q := callback(t, resp); q.Get("error") != "access_denied" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("post_logout_redirect_uri must match exactly", func(t *testing.T) {
		resp, _ := e.get(e.issuer + "/oauth2/logout?" + url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {postLogout + "x"}}.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}

func TestExpiredCode(t *testing.T) {
	e := newFakeEnv(t, func(c *oidc.Config) { c.AuthCodeTTL = time.Nanosecond })
	v := oauth2.GenerateVerifier()
	q := e.login(e.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(v)), nil, true)
	_, err := e.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(v))
	if oauthErr(err) != "invalid_grant" {
		t.Fatalf("expired code: %v", err)
	}
}

func TestClientCredentialsAndPAR(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t, nil)
	cc := clientcredentials.Config{ClientID: "machine", ClientSecret: e.mSecret, TokenURL: e.issuer + "/oauth2/token", Scopes: []string{"openid"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Fatal("client_credentials must not issue a refresh token")
	}
	if m := e.introspect(tok.AccessToken); m["active"] != true || m["sub"] != "machine" || m["client_id"] != "machine" {
		t.Fatalf("introspection %v", m)
	}
	// Public clients cannot use client_credentials.
	resp := e.basicPost("/oauth2/token", "spa", "", url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode == http.StatusOK {
		t.Fatal("public client got a client_credentials token")
	}

	// Pushed authorization request (RFC 9126).
	v := oauth2.GenerateVerifier()
	form := url.Values{"response_type": {"code"}, "client_id": {"rp"}, "redirect_uri": {redirect}, "scope": {"openid profile"},
		"state": {"par-state"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"}, "nonce": {"nonce-par-12345"}}
	resp = e.basicPost("/oauth2/par", "rp", e.secret, form)
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&par)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || par.RequestURI == "" {
		t.Fatalf("par: %d %+v", resp.StatusCode, par)
	}
	authURL := e.issuer + "/oauth2/auth?" + url.Values{"client_id": {"rp"}, "request_uri": {par.RequestURI}}.Encode()
	q := e.login(authURL, nil, true)
	if q.Get("state") != "par-state" {
		t.Fatalf("callback %v", q)
	}
	tok2, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("exchange after PAR: %v", err)
	}
	if tok2.RefreshToken != "" {
		t.Fatal("refresh token without offline_access")
	}
	// The pushed request is single use.
	resp2, body := e.get(authURL)
	if resp2.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_request_uri") {
		t.Fatalf("reused request_uri: %d %s", resp2.StatusCode, body)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newFakeEnv(t, nil)
	resp, body := e.get(e.issuer + "/.well-known/openid-configuration")
	var d map[string]any
	if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery %d %v", resp.StatusCode, err)
	}
	for _, k := range []string{"issuer", "jwks_uri", "end_session_endpoint", "pushed_authorization_request_endpoint", "acr_values_supported"} {
		if d[k] == nil {
			t.Errorf("discovery lacks %s", k)
		}
	}
	// Both liveness challenges are named: acr for the level, amr for the method.
	for k, want := range map[string][]string{
		"acr_values_supported": {oidc.ACRFaceActions, oidc.ACRFaceLiveness},
		"amr_values_supported": {oidc.AMRFace, oidc.AMRSpokenDigits, oidc.AMRFaceActions},
	} {
		got, _ := d[k].([]any)
		for _, w := range want {
			if !slices.Contains(got, any(w)) {
				t.Errorf("discovery %s = %v lacks %s", k, got, w)
			}
		}
	}
	_, body = e.get(e.issuer + "/oauth2/jwks")
	var set struct {
		Keys []struct{ Kty, Alg, Kid, Use string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	algs := map[string]bool{}
	for _, k := range set.Keys {
		algs[k.Alg] = true
		if k.Kid == "" || k.Use != "sig" {
			t.Errorf("key %+v", k)
		}
	}
	if !algs["RS256"] || !algs["ES256"] {
		t.Fatalf("jwks algs %v", algs)
	}
	if strings.Contains(body, `"d"`) {
		t.Fatal("private key material in the JWKS")
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/oauth2/jwks", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	r2, _ := http.DefaultClient.Get(e.issuer + "/oauth2/jwks")
	req.Header.Set("If-None-Match", r2.Header.Get("ETag"))
	r2.Body.Close()
	r3, err := http.DefaultClient.Do(req)
	if err != nil || r3.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional JWKS: %v %v", err, r3.StatusCode)
	}
	r3.Body.Close()
}

func TestAdminAPI(t *testing.T) {
	e := newFakeEnv(t, nil)
	do := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, e.issuer+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return doJSON(t, req)
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "GET", "/admin/clients", "", "", 401},
		{"wrong token", "GET", "/admin/clients", "nope", "", 401},
		{"create", "POST", "/admin/clients", "admin-token", `{"client_id":"new","name":"N","redirect_uris":["https://n.example/cb"],"scopes":["openid"]}`, 201},
		{"create duplicate", "POST", "/admin/clients", "admin-token", `{"client_id":"new","name":"N","redirect_uris":["https://n.example/cb"]}`, 409},
		{"create insecure redirect", "POST", "/admin/clients", "admin-token", `{"name":"N","redirect_uris":["http://n.example/cb"]}`, 400},
		{"create unknown scope", "POST", "/admin/clients", "admin-token", `{"name":"N","redirect_uris":["https://n.example/cb"],"scopes":["payroll"]}`, 400},
		{"create unknown field", "POST", "/admin/clients", "admin-token", `{"name":"N","secret":"x"}`, 400},
		{"get", "GET", "/admin/clients/new", "admin-token", "", 200},
		{"update", "PUT", "/admin/clients/new", "admin-token", `{"name":"N2","redirect_uris":["https://n.example/cb2"]}`, 200},
		{"rotate", "POST", "/admin/clients/new/rotate-secret?grace=1h", "admin-token", "", 200},
		{"delete", "DELETE", "/admin/clients/new", "admin-token", "", 204},
		{"get deleted", "GET", "/admin/clients/new", "admin-token", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := do(tt.method, tt.path, tt.token, tt.body)
			if code != tt.want {
				t.Fatalf("%s %s = %d %v, want %d", tt.method, tt.path, code, m, tt.want)
			}
			if tt.name == "create" && (m["client_secret"] == nil || m["client_secret"] == "") {
				t.Fatalf("no secret returned: %v", m)
			}
			if m["secret_hash"] != nil || m["SecretHash"] != nil {
				t.Fatal("hash exposed")
			}
		})
	}
	// Every change is in the audit log, as the admin token's holder, and the
	// log verifies with the one chain (audit.Verify).
	if _, err := audit.Verify(t.Context(), e.st.Audit()); err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	evs, err := e.st.Audit().List(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		if ev.Object == "new" {
			got = append(got, ev.Actor+" "+ev.Action+" "+ev.Detail["via"])
		}
	}
	want := []string{
		"operator:admin-api client.create admin-api", "operator:admin-api client.update admin-api",
		"operator:admin-api client.rotate_secret admin-api", "operator:admin-api client.delete admin-api",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit events of client new:\n got %q\nwant %q", got, want)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := oidc.New(oidc.Config{Issuer: "not a url/"})
	if !errors.Is(err, oidc.ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Issuer", "Store", "Ephemeral", "Logger", "Secret", "Authenticators"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func ExampleProvider_Handler() {
	// The zero-config stores: SQLite in a data directory (sealed with dev
	// keys kept there) and the in-process ephemeral store.
	dir, err := os.MkdirTemp("", "trustid-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ring, _, err := seal.GenerateDev(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "trustid.db"), ring)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	eph := memory.New(memory.Options{})
	defer eph.Close()
	p, err := oidc.New(oidc.Config{
		Issuer: "https://id.example.gov", Store: st, Ephemeral: eph,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: make([]byte, 32),
		Authenticators: []oidc.Authenticator{fakeAuth{}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "https://id.example.gov/.well-known/openid-configuration", nil))
	var d struct {
		Issuer string `json:"issuer"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &d)
	fmt.Println(rec.Code, d.Issuer)
	// Output: 200 https://id.example.gov
}

func TestDynamicRegistration(t *testing.T) {
	e := newFakeEnv(t, func(c *oidc.Config) {
		c.DynamicRegistration = &oidc.RegistrationPolicy{PerIPPerHour: 5}
	})
	post := func(body string) (int, map[string]any) { return e.register(body) }
	tests := []struct {
		name, body string
		want       int
		wantErr    string
	}{
		{"public client", `{"redirect_uris":["` + redirect + `"],"client_name":"Self","scope":"openid profile","token_endpoint_auth_method":"none"}`, 201, ""},
		{"confidential refused by policy", `{"redirect_uris":["` + redirect + `"],"token_endpoint_auth_method":"client_secret_basic"}`, 400, "invalid_client_metadata"},
		{"scope beyond policy", `{"redirect_uris":["` + redirect + `"],"scope":"openid id_number"}`, 400, "invalid_client_metadata"},
		{"back-channel URI on the provider's network", `{"redirect_uris":["` + redirect + `"],"backchannel_logout_uri":"https://10.0.0.5/bc"}`, 400, "invalid_client_metadata"},
		{"insecure redirect", `{"redirect_uris":["http://evil.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"rate limited", `{"redirect_uris":["` + redirect + `"]}`, 429, "invalid_client_metadata"},
	}
	var registered string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(tt.body)
			if code != tt.want || (tt.wantErr != "" && m["error"] != tt.wantErr) {
				t.Fatalf("got %d %v, want %d %s", code, m, tt.want, tt.wantErr)
			}
			if code == 201 {
				if m["client_secret"] != nil || m["token_endpoint_auth_method"] != "none" {
					t.Fatalf("public registration %v", m)
				}
				registered, _ = m["client_id"].(string)
			}
		})
	}
	// The registered public client completes a PKCE login.
	c := *e.conf
	c.ClientID, c.ClientSecret, c.Scopes = registered, "", []string{"openid", "profile"}
	v := oauth2.GenerateVerifier()
	q := e.login(c.AuthCodeURL("state-0009", oauth2.S256ChallengeOption(v)), nil, true)
	if _, err := c.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("exchange by registered client: %v", err)
	}
}
