package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/certs/qr"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

func newSite(t *testing.T, mod func(*Config)) *Site {
	t.Helper()
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InsecureCookies: true}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no logger", Config{}},
		{"prefix without slash", Config{Logger: slog.Default(), Prefix: "id"}},
		{"prefix with trailing slash", Config{Logger: slog.Default(), Prefix: "/id/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

func TestPagesHeadersAndLanguages(t *testing.T) {
	h := newSite(t, nil).Handler()
	for _, tc := range []struct {
		name, path, accept, want string
		status                   int
	}{
		{"login english", "/oauth2/login", "en-GB,en;q=0.9", "Sign in with your face", 200},
		{"login chinese", "/oauth2/login", "zh-CN,zh;q=0.9,en;q=0.5", "刷脸登录", 200},
		{"login query wins", "/oauth2/login?lang=zh", "en", "刷脸登录", 200},
		{"desk", "/desk", "", "Verifier desk", 200},
		{"desk chinese purposes", "/desk", "zh", "酒店入住登记", 200},
		{"account without session", "/account", "", "Sign in through an app", 401},
		{"stylesheet", "/assets/app.css", "", "--accent", 200},
		{"script", "/assets/login.js", "", "MediaRecorder", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			if tc.accept != "" {
				r.Header.Set("Accept-Language", tc.accept)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("body lacks %q", tc.want)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP %q", got)
			}
			if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing framing/nosniff headers: %v", w.Header())
			}
			if strings.Contains(w.Body.String(), "<script>") || strings.Contains(w.Body.String(), " onclick=") || strings.Contains(w.Body.String(), "style=") {
				t.Error("inline script, handler or style in a page")
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"", "en"},
		{"fr-FR", "en"},
		{"zh-TW", "zh"},
		{"en;q=0.4, zh;q=0.8", "zh"},
		{"en, zh", "en"},
		{"zh;q=0", "en"},
		{"de, zh-Hans-CN;q=0.7, en;q=0.6", "zh"},
	} {
		if got := Negotiate(tc.header); got != tc.want {
			t.Errorf("Negotiate(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestTemplatesHaveEveryKey(t *testing.T) {
	for _, lang := range Languages {
		for k := range dict["en"] {
			if _, ok := dict[lang][k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
		for k := range dict[lang] {
			if _, ok := dict["en"][k]; !ok {
				t.Errorf("en lacks %q (present in %s)", k, lang)
			}
		}
	}
}

// fakeSessions signs in one citizen when the request has the cookie "s".
type fakeSessions struct{ sess Session }

func (f fakeSessions) Session(r *http.Request) (Session, error) {
	if _, err := r.Cookie("down"); err == nil {
		return Session{}, fmt.Errorf("session store: %w", httperr.ErrUnavailable)
	}
	if _, err := r.Cookie("s"); err != nil {
		return Session{}, ErrNoSession
	}
	return f.sess, nil
}

type fakeConsents struct{ list []*store.Consent }

func (f *fakeConsents) ListByCitizen(ctx context.Context, id string) ([]*store.Consent, error) {
	return f.list, nil
}

func (f *fakeConsents) Delete(ctx context.Context, citizen, client string) error {
	for i, c := range f.list {
		if c.CitizenID == citizen && c.ClientID == client {
			f.list = append(f.list[:i], f.list[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

// csrfPair fetches a page to get the CSRF cookie and token.
func csrfPair(t *testing.T, h http.Handler) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/desk", nil))
	for _, c := range w.Result().Cookies() {
		if c.Name == "trustid_csrf" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("CSRF cookie flags: %+v", c)
			}
			if !strings.Contains(w.Body.String(), `content="`+c.Value+`"`) {
				t.Error("page does not carry the CSRF token")
			}
			return c
		}
	}
	t.Fatal("no CSRF cookie")
	return nil
}

func TestRevokeAppCSRF(t *testing.T) {
	cons := &fakeConsents{list: []*store.Consent{{CitizenID: "c1", ClientID: "app", GrantedAt: time.Unix(1e9, 0)}}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = cons
	}).Handler()
	tok := csrfPair(t, h)
	post := func(token, origin string, cookie bool) int {
		form := url.Values{"client_id": {"app"}, "csrf": {token}}
		r := httptest.NewRequest("POST", "/account/apps/revoke", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		if cookie {
			r.AddCookie(tok)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		name   string
		token  string
		origin string
		cookie bool
		want   int
	}{
		{"no token", "", "", true, 403},
		{"wrong token", strings.Repeat("A", 43), "", true, 403},
		{"no cookie", tok.Value, "", false, 403},
		{"cross origin", tok.Value, "https://evil.example", true, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.token, tc.origin, tc.cookie); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if len(cons.list) != 1 {
				t.Fatal("consent deleted by a refused request")
			}
		})
	}
	if got := post(tok.Value, "http://example.com", true); got != http.StatusSeeOther {
		t.Fatalf("valid revoke: status %d", got)
	}
	if len(cons.list) != 0 {
		t.Fatal("consent not deleted")
	}
}

// TestAccountDuringSessionStoreFault: while the session cannot be read,
// the account page and its form posts answer 503 with Retry-After, not
// "sign in" (a fault is not a verdict) and change nothing.
func TestAccountDuringSessionStoreFault(t *testing.T) {
	cons := &fakeConsents{list: []*store.Consent{{CitizenID: "c1", ClientID: "app", GrantedAt: time.Unix(1e9, 0)}}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = cons
	}).Handler()
	tok := csrfPair(t, h)
	get := httptest.NewRequest("GET", "/account", nil)
	get.AddCookie(&http.Cookie{Name: "down", Value: "1"})
	form := url.Values{"client_id": {"app"}, "csrf": {tok.Value}}
	post := httptest.NewRequest("POST", "/account/apps/revoke", strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", "http://example.com")
	post.AddCookie(tok)
	post.AddCookie(&http.Cookie{Name: "down", Value: "1"})
	for _, r := range []*http.Request{get, post} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: %d Retry-After %q, want 503 with Retry-After", r.Method, r.URL.Path, w.Code, w.Header().Get("Retry-After"))
		}
	}
	if len(cons.list) != 1 {
		t.Fatal("consent deleted during the fault")
	}
}

func TestAccountPage(t *testing.T) {
	cons := &fakeConsents{list: []*store.Consent{{CitizenID: "c1", ClientID: "shop", GrantedAt: time.Unix(1e9, 0)}}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = cons
		c.CertLog = fakeLog{}
	}).Handler()
	r := httptest.NewRequest("GET", "/account", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for _, want := range []string{"shop", "hotel-1", "Hotel check-in", "Connected apps", "Sign-in requests", `id="requests"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("account page lacks %q", want)
		}
	}
}

type fakeLog struct{}

func (fakeLog) Log(ctx context.Context, id string, n int) ([]certs.LogEntry, error) {
	return []certs.LogEntry{{At: time.Unix(1.7e9, 0), By: "verifier", Verifier: "hotel-1", Role: "hotel", Action: "verify", Purpose: "check_in", Outcome: "ok"}}, nil
}

func TestDecodeQR(t *testing.T) {
	want := "TID1:" + strings.Repeat("ABC123", 20)
	code, err := qr.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	png, err := code.PNG(4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeQR(png)
	if err != nil || got != want {
		t.Fatalf("DecodeQR = %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("not an image"), png[:len(png)/2]} {
		if _, err := DecodeQR(bad); err == nil {
			t.Errorf("DecodeQR accepted %d bytes of junk", len(bad))
		}
	}

	// Over HTTP with the CSRF token.
	h := newSite(t, nil).Handler()
	tok := csrfPair(t, h)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "qr.png")
	fw.Write(png)
	mw.Close()
	r := httptest.NewRequest("POST", "/desk/decode", &body)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Header.Set("X-CSRF-Token", tok.Value)
	r.AddCookie(tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out["text"] != want {
		t.Fatalf("decode endpoint: %d %s", w.Code, w.Body.String())
	}
}

func FuzzDecodeQR(f *testing.F) {
	code, _ := qr.Encode("TID1:ABC")
	png, _ := code.PNG(2)
	f.Add(png)
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeQR(b)
	})
}

// TestCertificatePages: the account page carries the certificate block
// (the browser holds the key: no QR endpoint, no key on the server); the
// offline certificate page needs no session and holds nothing personal, so
// its service worker may cache it; the refresh and window reach the pages.
func TestCertificatePages(t *testing.T) {
	on := newSite(t, func(c *Config) {
		c.Certificates = true
		c.QRRefresh = 20 * time.Second
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
	}).Handler()
	off := newSite(t, func(c *Config) { c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}} }).Handler()
	get := func(h http.Handler, path string, cookie bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if cookie {
			r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		name   string
		h      http.Handler
		path   string
		cookie bool
		status int
		want   []string
		not    []string
	}{
		{"account", on, "/account", true, 200, []string{`id="holder"`, `data-refresh="20"`, `data-window="40"`, `id="cert-setup"`, "/assets/holder.js", `id="devices"`}, nil},
		{"account without certificates", off, "/account", true, 200, nil, []string{`id="holder"`, "holder.js"}},
		{"certificate page without session", on, "/account/certificate", false, 200, []string{`id="holder"`, `data-offline="1"`, "/assets/vendor/qrcode.js", "every 20 seconds"}, []string{"c1", `id="devices"`}},
		{"certificate page off", off, "/account/certificate", false, 404, nil, nil},
		{"service worker", on, "/account/sw.js", false, 200, []string{"trustid-certificate-", "/account/certificate"}, nil},
		{"service worker off", off, "/account/sw.js", false, 404, nil, nil},
		{"no server-side QR", on, "/account/qr", true, 404, nil, nil},
		{"desk window", on, "/desk", false, 200, []string{`data-window="40"`, `data-skew="10"`, `id="challenge-new"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(tc.h, tc.path, tc.cookie)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("lacks %q", s)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("holds %q", s)
				}
			}
		})
	}
	if w := get(on, "/account/sw.js", false); w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("service worker headers %v", w.Header())
	}
}

func TestRenderConsent(t *testing.T) {
	s := newSite(t, nil)
	for _, tc := range []struct{ lang, want string }{{"en", "Your ID number (masked)"}, {"zh", "您的真实姓名"}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/oauth2/consent", nil)
		r.Header.Set("Accept-Language", tc.lang)
		s.RenderConsent(w, r, Consent{Client: "Demo <App>", Scopes: []string{"openid", "profile", "id_number", "custom"},
			Texts: []string{"a", "b", "c", "Custom text"}, Masked: true, CSRF: "tok", Action: "/oauth2/consent"})
		b := w.Body.String()
		for _, want := range []string{tc.want, "Custom text", `value="tok"`, "Demo &lt;App&gt;", `action="/oauth2/consent"`} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: consent page lacks %q", tc.lang, want)
			}
		}
		if w.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("%s: CSP missing", tc.lang)
		}
	}
}

func TestRenderLogout(t *testing.T) {
	s := newSite(t, nil)
	for _, tc := range []struct{ lang, client, want string }{
		{"en", "Demo <App>", "asks to sign you out of TrustID."}, {"zh", "", "是否退出 TrustID 登录？"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/oauth2/logout", nil)
		r.Header.Set("Accept-Language", tc.lang)
		s.RenderLogout(w, r, Logout{Client: tc.client, CSRF: "tok", Action: "/oauth2/logout",
			Hidden: map[string]string{"state": `a"b`, "post_logout_redirect_uri": "https://rp.example/bye"}})
		b := w.Body.String()
		for _, want := range []string{tc.want, `name="csrf" value="tok"`, `action="/oauth2/logout"`, `name="state" value="a&#34;b"`,
			`name="decision" value="logout"`, `name="decision" value="stay"`} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: logout page lacks %q:\n%s", tc.lang, want, b)
			}
		}
		if tc.client != "" && !strings.Contains(b, "Demo &lt;App&gt;") {
			t.Errorf("%s: client name not escaped", tc.lang)
		}
		if w.Code != 200 || w.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("%s: %d, CSP %q", tc.lang, w.Code, w.Header().Get("Content-Security-Policy"))
		}
	}
}

// fakePasskeys is an in-memory store.PasskeyStore subset.
type fakePasskeys struct{ list []*store.Passkey }

func (f *fakePasskeys) ListByCitizen(ctx context.Context, id string) ([]*store.Passkey, error) {
	var out []*store.Passkey
	for _, p := range f.list {
		if p.CitizenID == id {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f *fakePasskeys) Get(ctx context.Context, cred []byte) (*store.Passkey, error) {
	for _, p := range f.list {
		if bytes.Equal(p.CredentialID, cred) {
			return p, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakePasskeys) Delete(ctx context.Context, cred []byte) error {
	for i, p := range f.list {
		if bytes.Equal(p.CredentialID, cred) {
			f.list = append(f.list[:i], f.list[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

func (f *fakePasskeys) has(cred string) bool {
	for _, p := range f.list {
		if string(p.CredentialID) == cred {
			return true
		}
	}
	return false
}

var _ Passkeys = (*fakePasskeys)(nil)
var _ Passkeys = store.PasskeyStore(nil)

func TestRemovePasskey(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name      string
		cred      string // credential id posted (raw bytes, base64url-encoded on the wire)
		rawField  string // when set, posted as is instead of cred
		csrf      bool
		signedIn  bool
		want      int
		wantError string
		gone      string // credential that must be deleted afterwards
	}{
		{name: "own passkey removed", cred: "mine-1", csrf: true, signedIn: true, want: 200, gone: "mine-1"},
		{name: "another citizen's passkey refused", cred: "theirs", csrf: true, signedIn: true, want: 403, wantError: "not_yours"},
		{name: "unknown id", cred: "nope", csrf: true, signedIn: true, want: 404, wantError: "not_found"},
		{name: "wrong CSRF token", cred: "mine-1", csrf: false, signedIn: true, want: 403, wantError: "csrf"},
		{name: "not signed in", cred: "mine-1", csrf: true, signedIn: false, want: 401, wantError: "login_required"},
		{name: "not base64url", rawField: "a+b/c==", csrf: true, signedIn: true, want: 400, wantError: "invalid_request"},
		{name: "empty id", rawField: "", csrf: true, signedIn: true, want: 400, wantError: "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pks := &fakePasskeys{list: []*store.Passkey{
				{CredentialID: []byte("mine-1"), CitizenID: "c1", Name: "phone"},
				{CredentialID: []byte("mine-2"), CitizenID: "c1", Name: "laptop"},
				{CredentialID: []byte("theirs"), CitizenID: "c2", Name: "other"},
			}}
			h := newSite(t, func(c *Config) {
				c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
				c.Passkeys = pks
			}).Handler()
			tok := csrfPair(t, h)
			field := b64(tc.cred)
			if tc.cred == "" {
				field = tc.rawField
			}
			r := httptest.NewRequest("POST", "/account/passkeys/remove", strings.NewReader(url.Values{"credential_id": {field}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(tok)
			if tc.csrf {
				r.Header.Set("X-CSRF-Token", tok.Value)
			} else {
				r.Header.Set("X-CSRF-Token", strings.Repeat("A", 43))
			}
			if tc.signedIn {
				r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body.String())
			}
			var out struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("not JSON: %q", w.Body.String())
			}
			if tc.wantError == "" && out.Error != nil || tc.wantError != "" && (out.Error == nil || out.Error.Code != tc.wantError || out.Error.Message == "") {
				t.Errorf("error %+v, want code %q with a message (httperr's shape)", out.Error, tc.wantError)
			}
			for _, c := range []string{"mine-1", "mine-2", "theirs"} {
				if got, want := pks.has(c), c != tc.gone; got != want {
					t.Errorf("credential %s present = %v, want %v", c, got, want)
				}
			}
		})
	}
}

func TestRemovePasskeyPlainForm(t *testing.T) {
	pks := &fakePasskeys{list: []*store.Passkey{{CredentialID: []byte("k"), CitizenID: "c1"}}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Passkeys = pks
	}).Handler()
	tok := csrfPair(t, h)
	form := url.Values{"credential_id": {base64.RawURLEncoding.EncodeToString([]byte("k"))}, "csrf": {tok.Value}}
	r := httptest.NewRequest("POST", "/account/passkeys/remove", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(tok)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account" {
		t.Fatalf("status %d location %q", w.Code, w.Header().Get("Location"))
	}
	if pks.has("k") {
		t.Fatal("passkey not removed")
	}
}

// TestPlainFormErrors: a form posted without a script gets an HTML error
// page in the page's language, never JSON.
func TestPlainFormErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		csrf   bool
		cred   string
		status int
		text   string
	}{
		{"wrong CSRF field", false, "k", 403, "The form has expired"},
		{"another citizen's passkey", true, "theirs", 403, "not allowed"},
		{"unknown passkey", true, "nope", 404, "nothing here"},
		{"malformed id", true, "", 400, "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pks := &fakePasskeys{list: []*store.Passkey{{CredentialID: []byte("k"), CitizenID: "c1"}, {CredentialID: []byte("theirs"), CitizenID: "c2"}}}
			h := newSite(t, func(c *Config) {
				c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
				c.Passkeys = pks
			}).Handler()
			tok := csrfPair(t, h)
			form := url.Values{"credential_id": {base64.RawURLEncoding.EncodeToString([]byte(tc.cred))}, "csrf": {tok.Value}}
			if !tc.csrf {
				form.Set("csrf", strings.Repeat("A", 43))
			}
			r := httptest.NewRequest("POST", "/account/passkeys/remove", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(tok)
			r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), tc.text) {
				t.Fatalf("status %d %s, want %d HTML with %q: %s", w.Code, w.Header().Get("Content-Type"), tc.status, tc.text, w.Body.String())
			}
			if w.Header().Get("Content-Security-Policy") == "" {
				t.Error("error page without the site's security headers")
			}
			if !pks.has("k") || !pks.has("theirs") {
				t.Error("a refused form removed a passkey")
			}
		})
	}
}

func TestAccountPagePasskeys(t *testing.T) {
	pks := &fakePasskeys{list: []*store.Passkey{
		{CredentialID: []byte("mine"), CitizenID: "c1", Name: "phone", CreatedAt: time.Unix(1.7e9, 0)},
		{CredentialID: []byte("theirs"), CitizenID: "c2", Name: "their-laptop"},
	}}
	for _, tc := range []struct {
		name     string
		register string
		want     []string
		not      []string
	}{
		{"with registration", "/passkeys", []string{"phone", `value="` + base64.RawURLEncoding.EncodeToString([]byte("mine")) + `"`,
			"/account/passkeys/remove", `data-register="/passkeys"`, "Add a passkey", `aria-live="polite"`}, []string{"their-laptop"}},
		{"without registration", "", []string{"phone", "Remove"}, []string{"pk-add", "their-laptop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSite(t, func(c *Config) {
				c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
				c.Passkeys = pks
				c.PasskeyRegister = tc.register
			}).Handler()
			r := httptest.NewRequest("GET", "/account", nil)
			r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			b := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			for _, s := range tc.want {
				if !strings.Contains(b, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(b, s) {
					t.Errorf("page has %q", s)
				}
			}
			if strings.Contains(b, "<script>") || strings.Contains(b, "style=") {
				t.Error("inline script or style")
			}
		})
	}
}
