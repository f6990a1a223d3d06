// Package web owns the pages people use in a browser: the face login page
// (the OIDC authentication step of the "face" method), the consent screen
// styling, the citizen's account page (live net-certificate QR, passkeys,
// connected apps, verification log) and the verifier desk page. The pages
// are plain HTML, CSS and JavaScript embedded in the binary; every page
// carries a strict Content-Security-Policy (scripts and styles only from
// this origin, no inline code), frame-ancestors 'none', and the state-
// changing requests of this package are protected by a double-submit CSRF
// token. Text is in English and Chinese.
//
// The package consumes small interfaces (declared here) so it depends on
// neither the OIDC provider nor the store backends; cmd/ wires them.
package web

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/httperr"
)

//go:embed assets
var assets embed.FS

// ErrConfig wraps every problem New finds in a Config.
var ErrConfig = errors.New("web: invalid config")

// Config holds the site's live dependencies. Only Logger is required; a
// page whose dependencies are nil shows that the feature is not available.
type Config struct {
	// Prefix is the path of the issuer URL ("" when the issuer is the
	// origin root); the OIDC endpoints live under it.
	Prefix string
	Logger *slog.Logger
	// InsecureCookies drops the Secure flag (plain-HTTP development on
	// 127.0.0.1 only).
	InsecureCookies bool
	// FaceMethod is the login method name of face + liveness
	// (authn/facelogin; "face" when empty); PasskeyMethod, when set, adds a
	// passkey button.
	FaceMethod, PasskeyMethod string
	// RecordSeconds is how long the login page records; default 4.
	RecordSeconds float64

	// Sessions names the citizen signed in with the browser (account page).
	Sessions Sessions
	// Citizens gives the name shown on the account page.
	Citizens CitizenNamer
	// Consents lists and revokes the citizen's connected apps.
	Consents Consents
	// Clients names the connected apps.
	Clients ClientNamer
	// Passkeys lists the citizen's passkeys and removes them.
	Passkeys Passkeys
	// PasskeyRegister, when set, is the path where authn/passkey's Handler
	// serves registration (PasskeyRegister+"/register/begin" and
	// ".../finish", e.g. "/passkeys"); the account page then offers
	// "Add a passkey" in browsers with WebAuthn.
	PasskeyRegister string
	// Certificates offers the net certificate on the account page: the
	// browser generates and keeps the device key and calls the certificate
	// API at CertsAPI itself (certs.Service: devices/challenge, issue,
	// devices, devices/revoke). CertLog lists who verified it
	// (certs.Service satisfies it).
	Certificates bool
	CertLog      CertLog
	// CertsAPI is the path where cmd mounts certs.Service.Handler (the
	// pages call CertsAPI+"/issue", "/devices", "/verify", "/face-check");
	// "/certs" when empty.
	CertsAPI string
	// QRRefresh is how often the holder's page signs a new presentation
	// (30 s when zero); QRWindow is how long verifiers accept one (twice
	// QRRefresh when zero; the desk page shows a code older than that).
	QRRefresh, QRWindow time.Duration
	// Policy lists the purposes the desk page offers; certs.DefaultPolicy
	// when nil.
	Policy certs.Policy
	// NetworkNumbers shows the citizen's 网号 on the account page; Audit
	// records the citizen's revocations (rules.go). Both optional.
	NetworkNumbers NetworkNumbers
	Audit          Auditor
	// Issuer, when set, is the provider's base URL: a signed-out /account
	// then offers "Sign in" through the first-party account client
	// (AccountClientID, registered by cmd).
	Issuer string
	// AuthLog, when set, shows the citizen's own sign-ins on the account page.
	AuthLog AuthLog
	// FaceTemplates, when set, lists the citizen's face templates on the
	// account page and deletes enrolled ones.
	FaceTemplates FaceTemplates
	// LoginApps, when set, names the app on the login page.
	LoginApps LoginApps
	// ConsentWriter, when set, lets the citizen allow a desk that verified
	// their certificate to see their name and ID number (rules.go).
	ConsentWriter ConsentWriter

	Now  func() time.Time
	Rand io.Reader
}

// Site serves the pages. Safe for concurrent use.
type Site struct {
	cfg    Config
	tmpl   map[string]*template.Template
	static http.Handler
}

// New checks cfg and returns the Site.
func New(cfg Config) (*Site, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("%w: Logger is nil", ErrConfig)
	}
	if cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/")) {
		return nil, fmt.Errorf("%w: Prefix %q must start and not end with /", ErrConfig, cfg.Prefix)
	}
	if cfg.FaceMethod == "" {
		cfg.FaceMethod = "face"
	}
	if cfg.RecordSeconds == 0 {
		cfg.RecordSeconds = 4
	}
	if cfg.CertsAPI == "" {
		cfg.CertsAPI = "/certs"
	}
	if cfg.QRRefresh <= 0 {
		cfg.QRRefresh = 30 * time.Second
	}
	if cfg.QRWindow <= 0 {
		cfg.QRWindow = 2 * cfg.QRRefresh
	}
	if cfg.Policy == nil {
		cfg.Policy = certs.DefaultPolicy()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	s := &Site{cfg: cfg, tmpl: map[string]*template.Template{}}
	for _, page := range []string{"login", "account", "certificate", "desk", "consent", "logout", "message"} {
		files := []string{"assets/templates/layout.html", "assets/templates/" + page + ".html"}
		if page == "account" || page == "certificate" {
			files = append(files, "assets/templates/holder.html") // the QR shared by both
		}
		t, err := template.New("layout.html").Funcs(funcs).Funcs(rulesFuncs).ParseFS(assets, files...)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", page, err)
		}
		s.tmpl[page] = t
	}
	sub, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix(cfg.Prefix+"/assets/", http.FileServerFS(sub))
	return s, nil
}

// Paths of the pages, relative to Prefix.
const (
	PathLogin   = "/oauth2/login"
	PathAccount = "/account"
	PathDesk    = "/desk"
	PathAssets  = "/assets/"
)

// Mount adds the site's routes to mux. The login page pattern
// "GET {Prefix}/oauth2/login" is more specific than the provider's "/"
// mount, so it takes over the provider's built-in page; the provider keeps
// .../begin, .../finish and everything else.
func (s *Site) Mount(mux *http.ServeMux) {
	p := s.cfg.Prefix
	mux.Handle("GET "+p+PathAssets, s.secure(s.assets))
	mux.Handle("GET "+p+"/favicon.ico", s.secure(s.favicon))
	mux.Handle("GET "+p+PathLogin, s.secure(s.loginPage))
	mux.Handle("GET "+p+PathAccount, s.secure(s.accountPage))
	mux.Handle("GET "+p+PathAccount+"/signin", s.secure(s.accountSignIn))
	mux.Handle("GET "+p+PathCertificate, s.secure(s.certificatePage))
	mux.Handle("GET "+p+PathAccount+"/sw.js", s.secure(s.serviceWorker))
	mux.Handle("POST "+p+PathAccount+"/apps/revoke", s.secure(s.form(s.csrf(s.revokeApp))))
	mux.Handle("POST "+p+PathAccount+"/faces/delete", s.secure(s.form(s.csrf(s.deleteTemplate))))
	mux.Handle("POST "+p+PathAccount+"/verifiers/allow", s.secure(s.form(s.csrf(s.allowVerifier))))
	mux.Handle("POST "+p+PathAccount+"/passkeys/remove", s.secure(s.form(s.csrf(s.removePasskey))))
	mux.Handle("GET "+p+PathDesk, s.secure(s.deskPage))
	mux.Handle("POST "+p+PathDesk+"/decode", s.secure(s.api(s.csrf(s.deskDecode))))
}

// Handler returns a handler serving only the site's routes.
func (s *Site) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}

// CSP is the Content-Security-Policy of every page: everything from this
// origin only, no inline script or style, camera/microphone streams and
// recorded blobs allowed as media, QR images as data: URLs.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// secure sets the security headers of every response of the site.
func (s *Site) secure(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(self), microphone=(self), geolocation=(), payment=()")
		if !s.cfg.InsecureCookies {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h(w, r)
	})
}

func (s *Site) assets(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	s.static.ServeHTTP(w, r)
}

// csrfCookie is the double-submit cookie; with Secure cookies it takes the
// __Host- prefix (bound to this origin, path /, no Domain).
func (s *Site) csrfCookie() string {
	if s.cfg.InsecureCookies {
		return "trustid_csrf"
	}
	return "__Host-trustid_csrf"
}

// ErrCSRF is the refusal of a state-changing request without a valid token.
var ErrCSRF = errors.New("web: missing or wrong CSRF token")

// csrfToken returns the browser's CSRF token, setting the cookie when new.
func (s *Site) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.csrfCookie()); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		panic(fmt.Sprintf("web: random: %v", err))
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: s.csrfCookie(), Value: tok, Path: "/", HttpOnly: true,
		Secure: !s.cfg.InsecureCookies, SameSite: http.SameSiteStrictMode})
	return tok
}

// checkCSRF accepts a request whose X-CSRF-Token header or csrf form field
// equals the cookie and whose Origin (when sent) is this host. Chromium
// sends "Origin: null" with a plain form post from a page served with
// Referrer-Policy: no-referrer (the account page's revoke buttons); such a
// post is accepted only when the browser also says Sec-Fetch-Site:
// same-origin (the token is checked as for any other).
func (s *Site) checkCSRF(r *http.Request) error {
	if o := r.Header.Get("Origin"); o == "null" {
		if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
			return fmt.Errorf("%w: origin null without Sec-Fetch-Site: same-origin", ErrCSRF)
		}
	} else if o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("%w: origin %q", ErrCSRF, o)
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return fmt.Errorf("%w: cross-site", ErrCSRF)
	}
	c, err := r.Cookie(s.csrfCookie())
	if err != nil || c.Value == "" {
		return fmt.Errorf("%w: no cookie", ErrCSRF)
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) != 1 {
		return ErrCSRF
	}
	return nil
}

func (s *Site) csrf(h httperr.HandlerFunc) httperr.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
		if err := s.checkCSRF(r); err != nil {
			return httperr.New(http.StatusForbidden, "csrf", "the form has expired; reload the page").WithCause(err)
		}
		return h(w, r)
	}
}

// The site's error contract: its JSON endpoints (the pages' XHR calls)
// answer through internal/httperr; a plain form post gets an HTML page.

// api serves one of the pages' JSON endpoints.
func (s *Site) api(h httperr.HandlerFunc) http.HandlerFunc {
	return httperr.Handle(s.cfg.Logger, h).ServeHTTP
}

// form serves an endpoint that pages call both with XHR (the scripts send
// X-CSRF-Token) and as a plain form post: JSON errors for the first, an
// HTML error page for the second.
func (s *Site) form(h httperr.HandlerFunc) http.HandlerFunc {
	return httperr.HandlePage(s.cfg.Logger, h, s.errorPage).ServeHTTP
}

// wantsJSON reports a script's call: the pages' scripts send the CSRF
// token in a header; a form sends it as a field.
func wantsJSON(r *http.Request) bool {
	return r.Header.Get("X-CSRF-Token") != "" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// errorPage draws an error (mapped and logged by httperr) as a page in
// the request's language, or as httperr's JSON for a script.
func (s *Site) errorPage(w http.ResponseWriter, r *http.Request, e *httperr.Error) {
	if wantsJSON(r) {
		httperr.Write(w, r, nil, e)
		return
	}
	text := "error.internal"
	switch {
	case e.Status == http.StatusUnauthorized:
		text = "account.signin"
	case e.Code == "csrf":
		text = "error.forbidden"
	case e.Status == http.StatusForbidden:
		text = "error.refused"
	case e.Status == http.StatusNotFound:
		text = "error.notfound"
	case e.Status == http.StatusServiceUnavailable:
		text = "error.unavailable"
	case e.Status < 500:
		text = "error.request"
	}
	s.render(w, r, e.Status, "message", map[string]string{"Title": "error.title", "Text": text})
}

// maxUpload bounds the bodies of the site's own POST endpoints (a QR photo).
const maxUpload = 8 << 20

// view is what every template gets.
type view struct {
	Lang   string
	Other  string // the other language, for the switch
	T      map[string]string
	Msgs   string // JSON of the page's JavaScript messages
	CSRF   string
	Prefix string
	Path   string
	Page   string
	Data   any
}

// render writes a page in the request's language.
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	lang := s.language(w, r)
	v := view{Lang: lang, Other: otherLang(lang), T: dict[lang], Msgs: jsMessages(lang), CSRF: s.csrfToken(w, r),
		Prefix: s.cfg.Prefix, Path: r.URL.Path, Page: page, Data: data}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(status)
	if err := s.tmpl[page].Execute(w, v); err != nil {
		s.cfg.Logger.Warn("web: render", "page", page, "err", err)
	}
}

func (s *Site) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", map[string]any{
		"Face":          s.cfg.FaceMethod,
		"Passkey":       s.cfg.PasskeyMethod,
		"RecordSeconds": s.cfg.RecordSeconds,
		"App":           s.loginApp(r),
	})
}
