package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// postForm posts a CSRF-checked account form as the signed-in citizen.
func postForm(h http.Handler, tok *http.Cookie, path string, form url.Values) int {
	form.Set("csrf", tok.Value)
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(tok)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

type fixedNumbers string

func (f fixedNumbers) Ensure(context.Context, string) (string, error) { return string(f), nil }

type recordingAudit struct{ got []*store.AuditEvent }

func (a *recordingAudit) RecordOrLog(_ context.Context, e *store.AuditEvent) {
	a.got = append(a.got, e)
}

// TestClaimsConsentPage: the separate claims consent lists each claim
// translated, none ticked, with a way to go on without sharing.
func TestClaimsConsentPage(t *testing.T) {
	s := newSite(t, nil)
	for lang, want := range map[string][]string{
		"en": {"Share your identity?", "Your real name", "Your ID number (masked)", "Continue without sharing"},
		"zh": {"是否提供您的身份信息？", "您的真实姓名", "您的身份证号码（部分隐藏）", "不提供，继续"},
	} {
		t.Run(lang, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/oauth2/consent/claims?lang="+lang, nil)
			s.RenderConsent(w, r, Consent{Client: "Bank", CSRF: "tok", Action: "/oauth2/consent/claims", Claims: []ConsentClaim{
				{Name: "name", Text: "Your real name"}, {Name: "id_number", Text: "Your ID number", Masked: true}}})
			body := w.Body.String()
			for _, s := range want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if regexp.MustCompile(`<input[^>]*\bchecked`).MatchString(body) {
				t.Error("a claim is pre-ticked")
			}
			for _, s := range []string{`name="claim" value="name" id="claim-name"`, `<label for="claim-name">`, `value="none"`, `value="share"`} {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
		})
	}
}

// TestAccountRules: the account page shows the 网号 and what each app sees
// in plaintext; revoking an app is audited.
func TestAccountRules(t *testing.T) {
	cons := &fakeConsents{list: []*store.Consent{
		{CitizenID: "c1", ClientID: "bank", GrantedAt: time.Unix(1e9, 0), Claims: []string{"name", "id_number"}, ClaimsGrantedAt: time.Unix(1.5e9, 0)},
		{CitizenID: "c1", ClientID: "shop", GrantedAt: time.Unix(1e9, 0)},
	}}
	rec := &recordingAudit{}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = cons
		c.NetworkNumbers = fixedNumbers("1ABCDEFGHJKMNPQRSTVWX")
		c.Audit = rec
	}).Handler()
	for lang, want := range map[string][]string{
		"en": {"Network number (网号)", "1ABCDEFGHJKMNPQRSTVWX", "Sees: Your real name · Your ID number (since 2017-07-14", "Sees: The sign-in result only"},
		"zh": {"网号", "1ABCDEFGHJKMNPQRSTVWX", "可见信息: 您的真实姓名 · 您的身份证号码 (授权于 2017-07-14", "仅登录结果"},
	} {
		r := httptest.NewRequest("GET", "/account?lang="+lang, nil)
		r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, s := range want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s account page lacks %q", lang, s)
			}
		}
	}
	tok := csrfPair(t, h)
	if code := postForm(h, tok, "/account/apps/revoke", url.Values{"client_id": {"bank"}}); code != http.StatusSeeOther || len(rec.got) != 1 {
		t.Fatalf("revoke: %d, %d audit events", code, len(rec.got))
	}
	if e := rec.got[0]; e.Action != "oidc.consent.revoke" || e.Subject != "c1" || e.Object != "bank" || e.Actor != "citizen:c1" {
		t.Fatalf("audit event %+v", e)
	}
}

type clientMap map[string]*store.Client

func (m clientMap) Get(_ context.Context, id string) (*store.Client, error) {
	if c, ok := m[id]; ok {
		return c, nil
	}
	return nil, store.ErrNotFound
}

type consentSink struct {
	fakeConsents
	put []*store.Consent
}

func (c *consentSink) Put(_ context.Context, v *store.Consent) error {
	c.put = append(c.put, v)
	return nil
}

// TestAllowVerifier: a desk that verified the certificate is listed with
// "the result only" and an Allow button; allowing stores a consent naming
// the plaintext attributes of its role, audited.
func TestAllowVerifier(t *testing.T) {
	cons := &consentSink{}
	rec := &recordingAudit{}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = &cons.fakeConsents
		c.ConsentWriter = cons
		c.CertLog = fakeLog{}
		c.Clients = clientMap{"hotel-1": {ID: "hotel-1", Name: "Grand Hotel", Role: "hotel"}, "app": {ID: "app", Name: "App"}}
		c.Audit = rec
	}).Handler()
	r := httptest.NewRequest("GET", "/account", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, want := range []string{`id="verifiers"`, "Sees: The result only", "Allow it to see: your name · your ID number (masked)", `name="client_id" value="hotel-1"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	tok := csrfPair(t, h)
	post := func(client string) int {
		return postForm(h, tok, "/account/verifiers/allow", url.Values{"client_id": {client}})
	}
	if code := post("app"); code != http.StatusBadRequest || len(cons.put) != 0 {
		t.Fatalf("allow a client without a verifier role: %d, %d stored", code, len(cons.put))
	}
	if code := post("nobody"); code != http.StatusNotFound || len(cons.put) != 0 {
		t.Fatalf("allow an unknown client: %d", code)
	}
	if code := post("hotel-1"); code != http.StatusSeeOther || len(cons.put) != 1 {
		t.Fatalf("allow: %d, %d stored", code, len(cons.put))
	}
	if c := cons.put[0]; c.CitizenID != "c1" || c.ClientID != "hotel-1" || strings.Join(c.Claims, " ") != "name id_number_masked" || c.ClaimsGrantedAt.IsZero() {
		t.Fatalf("stored consent %+v", c)
	}
	if len(rec.got) != 1 || rec.got[0].Action != "cert.consent" || rec.got[0].Object != "hotel-1" {
		t.Fatalf("audit %+v", rec.got)
	}
}

type namedApp string

func (n namedApp) LoginApp(*http.Request) (string, bool) { return string(n), n != "" }

// TestPageFixes: the login page names the app, /favicon.ico exists, the
// account log is translated, and the desk's file button is ours.
func TestPageFixes(t *testing.T) {
	h := newSite(t, func(c *Config) {
		c.LoginApps = namedApp("Tax Office")
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.CertLog = fakeLog{}
	}).Handler()
	get := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for path, want := range map[string][]string{
		"/oauth2/login?lang=en": {`<strong>Tax Office</strong> asks you to sign in.`, `id="face-agree"`, `id="face-refuse"`, "What is kept"},
		"/oauth2/login?lang=zh": {`<strong>Tax Office</strong> 请求您登录。`, "保存哪些信息"},
		"/account?lang=en":      {"Checked your certificate", "Done"},
		"/account?lang=zh":      {"核验了您的证书", "完成"},
		"/desk?lang=zh":         {"选择二维码照片", `aria-labelledby="qr-file-l qr-file-b"`},
		"/desk?lang=en":         {`<option value="" selected disabled>Choose the purpose of the check</option>`, `<optgroup label="Hotel"><option value="check_in">Hotel check-in</option></optgroup>`},
	} {
		w := get(path)
		for _, s := range want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s lacks %q", path, s)
			}
		}
	}
	if w := get("/favicon.ico"); w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" || !strings.Contains(w.Body.String(), "<svg") {
		t.Errorf("favicon: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// TestRulesDictBothLanguages: every string of this part exists in zh and en.
func TestRulesDictBothLanguages(t *testing.T) {
	for _, pair := range [][2]string{{"en", "zh"}, {"zh", "en"}} {
		for k := range rulesDict[pair[0]] {
			if _, ok := rulesDict[pair[1]][k]; !ok {
				t.Errorf("%q has no %s text", k, pair[1])
			}
		}
	}
	for _, k := range []string{"js.withheld", "js.withheldHelp", "js.noConsent", "js.guardian", "js.lightOK", "claim.id_number_masked"} {
		if dict["en"][k] == "" || dict["zh"][k] == "" {
			t.Errorf("%q missing", k)
		}
	}
}

type templateStore struct{ ts []*store.Template }

func (f *templateStore) Templates(_ context.Context, id string) ([]*store.Template, error) {
	return f.ts, nil
}

func (f *templateStore) DeleteTemplate(_ context.Context, actor, citizen, id string) error {
	for i, t := range f.ts {
		if t.ID == id {
			if t.Kind == store.TemplateRegister {
				return identity.ErrRegisterTemplate
			}
			f.ts = append(f.ts[:i], f.ts[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

// TestFaceData: the account page lists the face templates; an enrolled
// one can be deleted, the register one cannot.
func TestFaceData(t *testing.T) {
	fs := &templateStore{ts: []*store.Template{
		{ID: "reg", Kind: store.TemplateRegister, CreatedAt: time.Unix(1.6e9, 0)},
		{ID: "live1", Kind: store.TemplateLive, CreatedAt: time.Unix(1.7e9, 0)},
	}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.FaceTemplates = fs
	}).Handler()
	r := httptest.NewRequest("GET", "/account?lang=en", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	for _, want := range []string{"Your face data", "From your ID card photo (register)", "Added after a sign-in", `name="template_id" value="live1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(body, `name="template_id" value="reg"`) {
		t.Error("the register template has a delete button")
	}
	tok := csrfPair(t, h)
	post := func(id string) int { return postForm(h, tok, "/account/faces/delete", url.Values{"template_id": {id}}) }
	if c := post("reg"); c != http.StatusForbidden {
		t.Errorf("delete register template: %d", c)
	}
	if c := post("nope"); c != http.StatusNotFound {
		t.Errorf("delete unknown: %d", c)
	}
	if c := post("live1"); c != http.StatusSeeOther || len(fs.ts) != 1 {
		t.Errorf("delete live: %d, %d left", c, len(fs.ts))
	}
}

// TestCSRFOriginNull: Chromium's "Origin: null" on a same-origin form post
// (Referrer-Policy: no-referrer) passes with Sec-Fetch-Site: same-origin
// and the token; without that header, or cross-site, it is refused.
func TestCSRFOriginNull(t *testing.T) {
	cons := &fakeConsents{list: []*store.Consent{{CitizenID: "c1", ClientID: "app"}}}
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Consents = cons
	}).Handler()
	tok := csrfPair(t, h)
	post := func(site string) int {
		form := url.Values{"client_id": {"app"}, "csrf": {tok.Value}}
		r := httptest.NewRequest("POST", "/account/apps/revoke", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "null")
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		r.AddCookie(tok)
		r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for site, want := range map[string]int{"": 403, "cross-site": 403, "same-site": 403} {
		if got := post(site); got != want || len(cons.list) != 1 {
			t.Errorf("Sec-Fetch-Site %q: %d, want %d", site, got, want)
		}
	}
	if got := post("same-origin"); got != http.StatusSeeOther || len(cons.list) != 0 {
		t.Errorf("same-origin: %d", got)
	}
}

// TestAccountSignInLink: a signed-out /account offers a sign-in through
// the account client (code + PKCE S256); back with a code, the address is
// cleaned.
func TestAccountSignInLink(t *testing.T) {
	h := newSite(t, func(c *Config) { c.Issuer = "https://id.example.test" }).Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/account?lang=en", nil))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `href="/account/signin"`) || !strings.Contains(w.Body.String(), "Sign in to your account") {
		t.Fatalf("signed-out account page: %d %s", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/account/signin", nil))
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil || w.Code != http.StatusSeeOther || u.Path != "/oauth2/auth" {
		t.Fatalf("sign-in: %d %q", w.Code, w.Header().Get("Location"))
	}
	q := u.Query()
	if q.Get("client_id") != AccountClientID || q.Get("redirect_uri") != "https://id.example.test/account" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("scope") != "openid" {
		t.Fatalf("authorization request %v", q)
	}
	h = newSite(t, func(c *Config) {
		c.Issuer = "https://id.example.test"
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
	}).Handler()
	r := httptest.NewRequest("GET", "/account?code=abc&state=x", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account" {
		t.Fatalf("back from sign-in: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestSignIns: the account page shows the citizen's own authentication
// log, translated, with app names; certificate checks stay in their table.
func TestSignIns(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	h := newSite(t, func(c *Config) {
		c.Sessions = fakeSessions{Session{SID: "sid", CitizenID: "c1"}}
		c.Clients = clientMap{"bank": {ID: "bank", Name: "City Bank"}}
		c.AuthLog = func(_ context.Context, id string, _ int) ([]audit.AuthEntry, error) {
			if id != "c1" {
				t.Errorf("log of %q", id)
			}
			return []audit.AuthEntry{
				{At: at, Kind: "certificate", Party: "client:hotel-1", Method: "verify", Result: "ok"},
				{At: at, Kind: "authorize", Party: "client:bank", Result: "ok"},
				{At: at, Kind: "login", Party: "client:bank", Method: "face", Result: "fail"},
			}, nil
		}
	}).Handler()
	for lang, want := range map[string][]string{
		"en": {"Your sign-ins", "Result given to the app</strong> · City Bank", "Signed in</strong> · City Bank", "face and spoken digits · not confirmed"},
		"zh": {"您的登录记录", "已向应用提供登录结果</strong> · City Bank", "人脸与朗读数字 · 未通过"},
	} {
		r := httptest.NewRequest("GET", "/account?lang="+lang, nil)
		r.AddCookie(&http.Cookie{Name: "s", Value: "1"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()
		for _, s := range want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: account page lacks %q", lang, s)
			}
		}
		if strings.Contains(body, "hotel-1") {
			t.Errorf("%s: a certificate check is listed among the sign-ins", lang)
		}
	}
}
