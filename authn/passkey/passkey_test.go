package passkey_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/fxamacker/cbor/v2"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/authn/passkey"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/oidc"
)

// The tests run the method under the real OIDC provider (a test-only
// dependency: the package itself knows only the authn contract), with a
// software authenticator, so the whole ceremony and the acr it yields are
// checked end to end.

const citizen = "cit-7"

// faceAuth stands in for face + liveness.
type faceAuth struct{}

func (faceAuth) Method() string { return "face" }
func (faceAuth) MaxACR() string { return authn.ACRFaceLiveness }
func (faceAuth) Begin(context.Context, *authn.Attempt) (any, error) {
	return map[string]string{}, nil
}
func (faceAuth) Finish(context.Context, *authn.Attempt, *http.Request) (*authn.Result, error) {
	return &authn.Result{CitizenID: citizen, ACR: authn.ACRFaceLiveness, AMR: []string{authn.AMRFace, authn.AMRLiveness}}, nil
}

// authenticator is a software passkey (platform authenticator stand-in):
// it makes "none" attestations and signs assertions with a P-256 key.
type authenticator struct {
	rpID, origin string
	key          *ecdsa.PrivateKey
	credID       []byte
	userHandle   []byte
	count        uint32
}

func (a *authenticator) authData(flags byte, attested []byte) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	d := append(h[:], flags)
	d = binary.BigEndian.AppendUint32(d, a.count)
	return append(d, attested...)
}

func (a *authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}

// create answers navigator.credentials.create options.
func (a *authenticator) create(t *testing.T, opts map[string]any) []byte {
	pk := opts["publicKey"].(map[string]any)
	challenge := pk["challenge"].(string)
	uid, _ := base64.RawURLEncoding.DecodeString(pk["user"].(map[string]any)["id"].(string))
	a.userHandle = uid
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a.credID = make([]byte, 16)
	rand.Read(a.credID)
	raw, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	att := make([]byte, 16) // AAGUID
	att = binary.BigEndian.AppendUint16(att, uint16(len(a.credID)))
	att = append(att, a.credID...)
	att = append(att, cose...)
	ad := a.authData(0x01|0x04|0x40, att) // UP, UV, AT
	obj, _ := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	id := base64.RawURLEncoding.EncodeToString(a.credID)
	body, _ := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]any{
		"attestationObject": base64.RawURLEncoding.EncodeToString(obj),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(a.clientData("webauthn.create", challenge)),
	}})
	return body
}

// get answers navigator.credentials.get options, signing with key.
func (a *authenticator) get(t *testing.T, opts map[string]any, key *ecdsa.PrivateKey) []byte {
	challenge := opts["publicKey"].(map[string]any)["challenge"].(string)
	a.count++
	ad := a.authData(0x01|0x04, nil)
	cd := a.clientData("webauthn.get", challenge)
	ch := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), ch[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString(a.credID)
	body, _ := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]any{
		"authenticatorData": base64.RawURLEncoding.EncodeToString(ad),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(cd),
		"signature":         base64.RawURLEncoding.EncodeToString(sig),
		"userHandle":        base64.RawURLEncoding.EncodeToString(a.userHandle),
	}})
	return body
}

type rig struct {
	t      *testing.T
	issuer string
	conf   *oauth2.Config
	op     *gooidc.Provider
}

func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/cb" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

func do(t *testing.T, c *http.Client, method, u, ctype string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func ring(t *testing.T) *seal.Ring {
	k := func(b byte) string { return strings.Repeat(string(rune('A'+b)), 43) + "=" }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newRig(t *testing.T) *rig {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), ring(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eph := memory.New(memory.Options{})
	t.Cleanup(func() { eph.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://localhost:" + strings.Split(ln.Addr().String(), ":")[1]
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var prov *oidc.Provider
	pk, err := passkey.New(passkey.Config{RPID: "localhost", Origins: []string{issuer}, Store: st, Ephemeral: eph, Logger: log,
		Sessions: passkey.SessionsFunc(func(r *http.Request) (string, string, error) { return prov.SessionCitizen(r) })})
	if err != nil {
		t.Fatal(err)
	}
	master := []byte("0123456789abcdef0123456789abcdef")
	prov, err = oidc.New(oidc.Config{Issuer: issuer, Store: st, Ephemeral: eph, Logger: log, Secret: master,
		Authenticators: []oidc.Authenticator{faceAuth{}, pk}, InsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/passkeys/", pk.Handler())
	mux.Handle("/", prov.Handler())
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	if err := st.Citizens().Create(ctx, &store.Citizen{ID: citizen, IDNumber: "110101199003074512", Name: "Li Na"}); err != nil {
		t.Fatal(err)
	}
	adm, _ := oidc.NewClientAdmin(st.Clients(), master, nil)
	_, secret, err := adm.Create(ctx, "rp", oidc.ClientSpec{Name: "RP", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, Scopes: []string{"openid", "profile"}})
	if err != nil {
		t.Fatal(err)
	}
	op, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	ep := op.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &rig{t: t, issuer: issuer, op: op, conf: &oauth2.Config{ClientID: "rp", ClientSecret: secret, Endpoint: ep,
		RedirectURL: "http://127.0.0.1:1/cb", Scopes: []string{"openid", "profile"}}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// finishFlow follows a login-finish response to the code and returns the ID token's acr and amr.
func (g *rig) finishFlow(c *http.Client, resp *http.Response, body []byte, v string) (string, []string) {
	t := g.t
	t.Helper()
	if m := csrfRE.FindSubmatch(body); m != nil && !bytes.Contains(body, []byte(`action="/oauth2/consent/claims"`)) {
		resp, body = do(t, c, "POST", g.issuer+"/oauth2/consent", "application/x-www-form-urlencoded",
			[]byte(url.Values{"csrf": {string(m[1])}, "decision": {"approve"}}.Encode()))
	}
	// The separate claims consent (issue 20): continue with the result only.
	if m := csrfRE.FindSubmatch(body); m != nil && bytes.Contains(body, []byte(`action="/oauth2/consent/claims"`)) {
		resp, body = do(t, c, "POST", g.issuer+"/oauth2/consent/claims", "application/x-www-form-urlencoded",
			[]byte(url.Values{"csrf": {string(m[1])}, "decision": {"none"}}.Encode()))
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s %s", resp.StatusCode, loc, body)
	}
	tok, err := g.conf.Exchange(context.Background(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := g.op.Verifier(&gooidc.Config{ClientID: "rp"}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var cl struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	_ = idt.Claims(&cl)
	return cl.ACR, cl.AMR
}

func (g *rig) authorize(c *http.Client, extra ...oauth2.AuthCodeOption) string {
	v := oauth2.GenerateVerifier()
	resp, body := do(g.t, c, "GET", g.conf.AuthCodeURL("state-0001", append(extra, oauth2.S256ChallengeOption(v))...), "", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("/oauth2/login/")) {
		g.t.Fatalf("no login page: %d %s", resp.StatusCode, body)
	}
	return v
}

func jsonMap(t *testing.T, b []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// TestPasskeyRegistrationLoginAndStepUp: a citizen signed in by face +
// liveness registers a passkey; a new browser signs in with it alone
// (acr passkey); the first browser steps up to face+liveness+passkey.
func TestPasskeyRegistrationLoginAndStepUp(t *testing.T) {
	g := newRig(t)
	a := &authenticator{rpID: "localhost", origin: g.issuer}

	// Registration without a session is refused.
	anon := browser(t)
	if resp, _ := do(t, anon, "POST", g.issuer+passkey.PathRegisterBegin, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous registration: %d", resp.StatusCode)
	}

	b1 := browser(t)
	v := g.authorize(b1)
	resp, body := do(t, b1, "POST", g.issuer+"/oauth2/login/face/finish", "", nil)
	if acr, _ := g.finishFlow(b1, resp, body, v); acr != oidc.ACRFaceLiveness {
		t.Fatalf("face acr %q", acr)
	}
	// A cross-origin or cross-site request is refused even with the session.
	for _, h := range [][2]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}} {
		req, _ := http.NewRequest("POST", g.issuer+passkey.PathRegisterBegin, nil)
		req.Header.Set(h[0], h[1])
		resp, err := b1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("registration with %s: %s: %d", h[0], h[1], resp.StatusCode)
		}
	}
	resp, body = do(t, b1, "POST", g.issuer+passkey.PathRegisterBegin, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("register begin %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, b1, "POST", g.issuer+passkey.PathRegisterFinish+"?name=phone", "application/json", a.create(t, jsonMap(t, body)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register finish %d %s", resp.StatusCode, body)
	}

	// Passkey alone in a new browser.
	b2 := browser(t)
	v = g.authorize(b2)
	_, body = do(t, b2, "POST", g.issuer+"/oauth2/login/passkey/begin", "", nil)
	opts := jsonMap(t, body)
	assertion := a.get(t, opts, a.key)
	resp, body = do(t, b2, "POST", g.issuer+"/oauth2/login/passkey/finish", "application/json", assertion)
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("passkey login %d %s", resp.StatusCode, body)
	}
	acr, amr := g.finishFlow(b2, resp, body, v)
	if acr != oidc.ACRPasskey || len(amr) == 0 || amr[0] != oidc.AMRHardware {
		t.Fatalf("passkey acr %q amr %v", acr, amr)
	}

	// Replaying the assertion fails: the challenge was single use.
	b3 := browser(t)
	g.authorize(b3)
	do(t, b3, "POST", g.issuer+"/oauth2/login/passkey/begin", "", nil)
	if resp, _ := do(t, b3, "POST", g.issuer+"/oauth2/login/passkey/finish", "application/json", assertion); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed assertion: %d", resp.StatusCode)
	}
	// A signature by another key fails.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, body = do(t, b3, "POST", g.issuer+"/oauth2/login/passkey/begin", "", nil)
	if resp, _ := do(t, b3, "POST", g.issuer+"/oauth2/login/passkey/finish", "application/json", a.get(t, jsonMap(t, body), other)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged assertion: %d", resp.StatusCode)
	}

	// Step-up in the face+liveness session.
	v = g.authorize(b1, oauth2.SetAuthURLParam("acr_values", oidc.ACRFaceLivenessPasskey))
	_, body = do(t, b1, "POST", g.issuer+"/oauth2/login/passkey/begin", "", nil)
	resp, body = do(t, b1, "POST", g.issuer+"/oauth2/login/passkey/finish", "application/json", a.get(t, jsonMap(t, body), a.key))
	acr, amr = g.finishFlow(b1, resp, body, v)
	if acr != oidc.ACRFaceLivenessPasskey || !strings.Contains(strings.Join(amr, " "), "mfa") {
		t.Fatalf("step-up acr %q amr %v", acr, amr)
	}
}

// TestRegisterDuringSessionStoreFault: a session that cannot be read (the
// ephemeral store failing) answers 503 with Retry-After, not 401
// login_required (a fault is not a verdict; issue 16 follow-up).
func TestRegisterDuringSessionStoreFault(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), ring(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eph := memory.New(memory.Options{})
	t.Cleanup(func() { eph.Close() })
	for _, tc := range []struct {
		name   string
		sess   passkey.SessionsFunc
		status int
	}{
		{"fault", func(*http.Request) (string, string, error) { return "", "", ephemeral.ErrUnavailable }, http.StatusServiceUnavailable},
		{"none", func(*http.Request) (string, string, error) { return "", "", nil }, http.StatusUnauthorized},
	} {
		pk, err := passkey.New(passkey.Config{RPID: "localhost", Origins: []string{"http://localhost"}, Store: st, Ephemeral: eph,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Sessions: tc.sess})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{passkey.PathRegisterBegin, passkey.PathRegisterFinish} {
			w := httptest.NewRecorder()
			pk.Handler().ServeHTTP(w, httptest.NewRequest("POST", path, nil))
			if w.Code != tc.status || (tc.status == http.StatusServiceUnavailable) != (w.Header().Get("Retry-After") != "") {
				t.Errorf("%s %s: %d Retry-After %q, want %d", tc.name, path, w.Code, w.Header().Get("Retry-After"), tc.status)
			}
		}
	}
}
