package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/lab/fakeclip"
)

// The fixed challenge the server issues in test mode: the one digit the
// genuine clip's real GRID speaker says (sbwe5n, "set blue with e five
// now", with its own voice: no dub, #17). The mismatched clip is the same
// face with another speaker's voice (bbaf2n, "two").
const (
	e2eGrid   = "sbwe5n.mpg"
	e2eDigits = "5"
	e2eOther  = "bbaf2n.mpg"
)

// skipOrFail skips a test whose prerequisite is missing, or fails it in CI.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// e2eClips are the uploads of the browser's face step: the genuine
// talking-face clip and the same face saying other digits, as WebM (what
// MediaRecorder uploads), plus the register photo (a frame of the speaker).
type e2eClips struct {
	genuine, mismatch, photo string
}

// buildE2EClips builds the clips once per test run (lab/fakeclip.BuildReal:
// a GRID speaker's own video and voice, cut around the speech).
func buildE2EClips(t *testing.T, dir string) *e2eClips {
	t.Helper()
	data := os.Getenv("TRUSTID_TESTDATA")
	grid := filepath.Join(data, "talking", "grid", e2eGrid)
	if _, err := os.Stat(grid); data == "" || err != nil {
		skipOrFail(t, "GRID test data missing (TRUSTID_TESTDATA=%q)", data)
	}
	for _, tool := range []string{"ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := fakeclip.BuildReal(ctx, fakeclip.RealOptions{Grid: grid, Other: filepath.Join(data, "talking", "grid", e2eOther), Dir: dir})
	if err != nil {
		t.Fatalf("real clip: %v", err)
	}
	if c.Digits != e2eDigits {
		t.Fatalf("%s says %q, the tests expect %q", e2eGrid, c.Digits, e2eDigits)
	}
	out := &e2eClips{genuine: filepath.Join(dir, "genuine.webm"), mismatch: filepath.Join(dir, "mismatch.webm"), photo: c.Photo}
	if err := fakeclip.Mux(ctx, "", c.GenuineY4M, c.GenuineWAV, out.genuine); err != nil {
		t.Fatalf("mux genuine: %v", err)
	}
	if err := fakeclip.Mux(ctx, "", c.MismatchY4M, c.MismatchWAV, out.mismatch); err != nil {
		t.Fatalf("mux mismatch: %v", err)
	}
	return out
}

// e2eIDNumber is a well-formed ID number (region 110101, check character).
func e2eIDNumber(t *testing.T) string {
	first := "11010119900307" + "123"
	c, err := idnumber.CheckChar(first)
	if err != nil {
		t.Fatal(err)
	}
	return first + string(c)
}

// runTrustid runs a subcommand of the real binary with env and returns stdout.
func runTrustid(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(trustidBinary(t), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trustid %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// relyingApp is the relying party's redirect target: it records what the
// provider sent to the callback and to the post-logout page.
type relyingApp struct {
	srv       *httptest.Server
	callbacks chan url.Values
	loggedOut chan url.Values
}

func newE2EApp(t *testing.T) *relyingApp {
	a := &relyingApp{callbacks: make(chan url.Values, 8), loggedOut: make(chan url.Values, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		a.callbacks <- r.URL.Query()
		io.WriteString(w, "callback")
	})
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		a.loggedOut <- r.URL.Query()
		io.WriteString(w, "logged out")
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// callback returns the query of the one callback the last request chain
// reached, or nil when it reached none.
func (a *relyingApp) callback() url.Values {
	select {
	case q := <-a.callbacks:
		return q
	default:
		return nil
	}
}

// browser is a plain HTTP client with a cookie jar that follows redirects,
// standing in for the citizen's browser.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 3 * time.Minute}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// faceStep runs the login page's face step: begin with the typed ID number
// as JSON (the digits to read),
// then finish with the clip as the multipart video. It returns the final
// response after redirects (the consent page on success).
func faceStep(t *testing.T, b *http.Client, issuer, idNumber, clip string) (*http.Response, string) {
	t.Helper()
	begin, _ := json.Marshal(map[string]any{"id_number": idNumber, "face_consent": true})
	req, _ := http.NewRequest("POST", issuer+"/oauth2/login/face/begin", bytes.NewReader(begin))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", issuer)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("begin: %d %s", resp.StatusCode, body)
	}
	var ch struct {
		ChallengeID string `json:"challenge_id"`
		Digits      string `json:"digits"`
	}
	if err := json.Unmarshal([]byte(body), &ch); err != nil {
		t.Fatalf("begin answer: %v", err)
	}
	if ch.ChallengeID == "" || ch.Digits != e2eDigits {
		t.Fatalf("begin: challenge %q digits %q, want the fixed digits %s", ch.ChallengeID, ch.Digits, e2eDigits)
	}

	video, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("challenge_id", ch.ChallengeID)
	mw.WriteField("id_number", idNumber)
	mw.WriteField("face_consent", "yes")
	fw, _ := mw.CreateFormFile("video", "clip.webm")
	fw.Write(video)
	mw.Close()
	req, _ = http.NewRequest("POST", issuer+"/oauth2/login/face/finish", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", issuer)
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

var claimField = regexp.MustCompile(`name="claim" value="([^"]+)"`)

// claimsForm is the answer to the separate claims consent page in body
// sharing every claim it lists, or nil when body is not that page.
func claimsForm(body string) url.Values {
	m := csrfField.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `action="/oauth2/consent/claims"`) {
		return nil
	}
	f := url.Values{"csrf": {html.UnescapeString(m[1])}, "decision": {"share"}}
	for _, c := range claimField.FindAllStringSubmatch(body, -1) {
		f.Add("claim", c[1])
	}
	return f
}

// TestOIDCEndToEnd drives the real `trustid serve` over HTTP as a relying
// party would (golang.org/x/oauth2 + coreos/go-oidc) and as a browser
// would (cookie jar): discovery, authorize with PKCE, the face + spoken-digit
// liveness login with a genuine talking-face clip, consent, code exchange,
// ID token verification against the JWKS, userinfo, refresh rotation,
// revocation and RP-initiated logout; then a clip saying other digits is
// refused and no code is issued. It runs on the embedded default (SQLite +
// memory) and on PostgreSQL + Redis.
func TestOIDCEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in -short mode")
	}
	needModels(t)
	clips := sharedE2EClips(t)

	backends := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{name: "embedded default", env: func(*testing.T) []string { return nil }},
		{name: "postgres+redis", env: func(t *testing.T) []string {
			redis := redistest.URL(t)
			return []string{"TRUSTID_POSTGRES_DSN=" + pgtest.DSN(t), "TRUSTID_REDIS_URL=" + redis}
		}},
		{name: "postgres+redis, durable access tokens", env: func(t *testing.T) []string {
			redis := redistest.URL(t)
			return []string{"TRUSTID_POSTGRES_DSN=" + pgtest.DSN(t), "TRUSTID_REDIS_URL=" + redis,
				"TRUSTID_OIDC_ACCESS_TOKEN_STORE=durable"}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			oidcFlow(t, clips, be.env(t))
		})
	}
}

func oidcFlow(t *testing.T, clips *e2eClips, backendEnv []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	env := append([]string{"TRUSTID_CONFIG=", "TRUSTID_DATA_DIR=" + dataDir, "TRUSTID_TEST_MODE=1",
		"TRUSTID_TEST_FIXED_DIGITS=" + e2eDigits}, backendEnv...)
	cmdEnv := append(os.Environ(), env...)

	// The register: one citizen whose photo is a frame of the GRID speaker.
	id := e2eIDNumber(t)
	photos := filepath.Join(dataDir, "photos")
	if err := os.MkdirAll(photos, 0o755); err != nil {
		t.Fatal(err)
	}
	photo, err := os.ReadFile(clips.photo)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(photos, "speaker.jpg"), photo, 0o644)
	csvPath := filepath.Join(dataDir, "register.csv")
	os.WriteFile(csvPath, []byte("id_number,name,photo\n"+id+",Grid Speaker,speaker.jpg\n"), 0o644)
	runTrustid(t, cmdEnv, "import", "-csv", csvPath, "-photos", photos)

	// The relying app: a confidential client allowed the masked ID number.
	app := newE2EApp(t)
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	out := runTrustid(t, cmdEnv, "client", "create", "-name", "E2E App", "-redirect-uri", app.srv.URL+"/callback",
		"-post-logout-uri", app.srv.URL+"/logged-out", "-scopes", "openid,offline_access,profile,id_number",
		"-grant-types", "authorization_code,refresh_token")
	if err := json.Unmarshal(out, &client); err != nil || client.ID == "" || client.Secret == "" {
		t.Fatalf("client create output %q: %v", out, err)
	}

	s := startServer(t, env...)
	issuer := s.base

	// Discovery.
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disco struct {
		Revocation    string   `json:"revocation_endpoint"`
		Introspection string   `json:"introspection_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		PKCEMethods   []string `json:"code_challenge_methods_supported"`
		ACRsSupported []string `json:"acr_values_supported"`
	}
	if err := provider.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	if disco.Revocation == "" || disco.Introspection == "" || disco.EndSession == "" || !slices.Contains(disco.PKCEMethods, "S256") {
		t.Fatalf("discovery lacks revocation, end_session or S256: %+v", disco)
	}
	conf := &oauth2.Config{ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: app.srv.URL + "/callback",
		Scopes: []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess, "profile", "id_number"}, Endpoint: provider.Endpoint()}

	// Authorize with PKCE S256, in the browser.
	browser := newBrowser(t)
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
		gooidc.Nonce(nonce), oauth2.SetAuthURLParam("login_hint", id))
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/oauth2/login" {
		t.Fatalf("authorize ended at %s (%d), want the login page: %.300s", resp.Request.URL, resp.StatusCode, body)
	}

	// The real face + liveness step; success leads to the consent page.
	start := time.Now()
	resp, body := faceStep(t, browser, issuer, id, clips.genuine)
	t.Logf("face login with the genuine clip: %s", time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish with the genuine clip: %d at %s: %.500s", resp.StatusCode, resp.Request.URL, body)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no consent form at %s: %.500s", resp.Request.URL, body)
	}
	if app.callback() != nil {
		t.Fatal("the app got a callback before consent")
	}

	// Consent: approve with the form's CSRF field.
	consentURL := resp.Request.URL
	consentURL.RawQuery = ""
	req, _ := http.NewRequest("POST", consentURL.String(), strings.NewReader(url.Values{
		"csrf": {html.UnescapeString(m[1])}, "decision": {"approve"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", issuer)
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	if f := claimsForm(body); f != nil {
		// The separate claims consent: share the name (and the rest asked).
		req, _ := http.NewRequest("POST", issuer+"/oauth2/consent/claims", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", issuer)
		if resp, err = browser.Do(req); err != nil {
			t.Fatal(err)
		}
		body = readBody(t, resp)
	}
	cb := app.callback()
	if cb == nil {
		t.Fatalf("consent did not reach the callback: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if cb.Get("error") != "" || cb.Get("state") != state || cb.Get("code") == "" {
		t.Fatalf("callback: %v", cb)
	}

	// Code exchange with the PKCE verifier.
	tok, err := conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("exchange gave no access or refresh token")
	}

	// ID token verified against the JWKS.
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: client.ID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		SID      string   `json:"sid"`
		IDNumber string   `json:"id_number"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if claims.ACR != "urn:trustid:acr:face+liveness" || !slices.Contains(claims.AMR, "face") || !slices.Contains(claims.AMR, "liveness") {
		t.Errorf("acr %q amr %v, want face+liveness", claims.ACR, claims.AMR)
	}
	if claims.AuthTime == 0 || claims.SID == "" {
		t.Errorf("auth_time %d sid %q", claims.AuthTime, claims.SID)
	}
	if claims.IDNumber != "" {
		t.Error("the ID token carries the ID number")
	}
	if idt.Subject == "" || strings.Contains(idt.Subject, id) {
		t.Errorf("sub %q must be pairwise, not the ID number", idt.Subject)
	}

	// Userinfo: the name, and the ID number masked (the client may not see it).
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uc struct {
		Name     string `json:"name"`
		IDNumber string `json:"id_number"`
	}
	if err := ui.Claims(&uc); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != idt.Subject || uc.Name != "Grid Speaker" {
		t.Errorf("userinfo sub %q name %q", ui.Subject, uc.Name)
	}
	if uc.IDNumber == "" || uc.IDNumber == id || !strings.Contains(uc.IDNumber, "*") ||
		uc.IDNumber[:3] != id[:3] || uc.IDNumber[len(uc.IDNumber)-4:] != id[len(id)-4:] {
		t.Errorf("userinfo id_number %q, want the masked form", uc.IDNumber)
	}

	// Refresh rotates: a new refresh token, and the old one is refused.
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken || refreshed.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if rid, _ := refreshed.Extra("id_token").(string); rid != "" {
		if _, err := provider.Verifier(&gooidc.Config{ClientID: client.ID}).Verify(ctx, rid); err != nil {
			t.Errorf("refreshed ID token: %v", err)
		}
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(refreshed)); err != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", err)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo accepted the access token the refresh replaced")
	}

	// Revocation (RFC 7009): the refreshed access token stops working, as
	// userinfo and introspection (RFC 7662) show.
	post := func(endpoint, token, hint string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", endpoint, strings.NewReader(url.Values{
			"token": {token}, "token_type_hint": {hint}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(client.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", endpoint, resp.StatusCode, b)
		}
		return b
	}
	active := func(token, hint string) bool {
		t.Helper()
		var ir struct {
			Active bool `json:"active"`
		}
		if err := json.Unmarshal([]byte(post(disco.Introspection, token, hint)), &ir); err != nil {
			t.Fatalf("introspection answer: %v", err)
		}
		return ir.Active
	}
	if !active(refreshed.AccessToken, "access_token") {
		t.Fatal("introspection: the refreshed access token is not active")
	}
	post(disco.Revocation, refreshed.AccessToken, "access_token")
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(refreshed)); err == nil {
		t.Error("userinfo accepted a revoked access token")
	}
	if active(refreshed.AccessToken, "access_token") {
		t.Error("introspection: a revoked access token is active")
	}

	// The old refresh token is refused (invalid_grant), and its reuse
	// revokes the family: the rotated refresh token is refused too.
	for _, rt := range []struct{ name, token string }{{"rotated-out", tok.RefreshToken}, {"family member", refreshed.RefreshToken}} {
		_, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt.token}).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("%s refresh token: %v, want invalid_grant", rt.name, err)
		}
	}

	// RP-initiated logout returns to the registered page with the state and
	// ends the browser session: prompt=none then answers login_required.
	logoutState := rand.Text()
	resp, err = browser.Get(disco.EndSession + "?" + url.Values{"id_token_hint": {rawID},
		"post_logout_redirect_uri": {app.srv.URL + "/logged-out"}, "state": {logoutState}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	select {
	case q := <-app.loggedOut:
		if q.Get("state") != logoutState {
			t.Errorf("post-logout state %q", q.Get("state"))
		}
	default:
		t.Fatalf("logout did not return to the app: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	state2 := rand.Text()
	resp, err = browser.Get(conf.AuthCodeURL(state2, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		gooidc.Nonce(rand.Text()), oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if cb := app.callback(); cb == nil || cb.Get("error") != "login_required" || cb.Get("code") != "" {
		t.Errorf("prompt=none after logout: callback %v, want error=login_required", cb)
	}

	// Negative: the same face with another speaker's voice (another digit)
	// is refused at finish, in a fresh browser, and no code is issued.
	t.Run("mismatched clip refused", func(t *testing.T) {
		b := newBrowser(t)
		resp, err := b.Get(conf.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			gooidc.Nonce(rand.Text()), oauth2.SetAuthURLParam("login_hint", id)))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		resp, body := faceStep(t, b, issuer, id, clips.mismatch)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("finish with the mismatched clip: %d at %s, want 401", resp.StatusCode, resp.Request.URL)
		}
		if csrfField.MatchString(body) && strings.Contains(body, "decision") {
			t.Error("the mismatched clip reached the consent page")
		}
		if cb := app.callback(); cb != nil {
			t.Errorf("a callback after a refused login: %v", cb)
		}
		// The refusal was the clip's: the genuine clip in the same login
		// attempt passes, and with the consent already given the app gets
		// its code.
		resp, _ = faceStep(t, b, issuer, id, clips.genuine)
		if cb := app.callback(); resp.StatusCode != http.StatusOK || cb == nil || cb.Get("code") == "" {
			t.Errorf("genuine clip after the refusal: %d at %s, callback %v", resp.StatusCode, resp.Request.URL.Path, cb)
		}
	})

	// Every writer of the flow (import, client create, login, consent,
	// authorize, logout) chained its events the one way: the log verifies.
	out = runTrustid(t, cmdEnv, "verify-audit")
	if m := intactLine.FindSubmatch(out); m == nil || string(m[1]) == "0" {
		t.Errorf("verify-audit after the flow: %s", out)
	}
}
