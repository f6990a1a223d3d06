package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc"
	"github.com/trustid/trustid/web"
)

// providerSessions adapts the provider's browser session to web.Sessions.
type providerSessions struct{ p *oidc.Provider }

var _ web.Sessions = providerSessions{}

func (s providerSessions) Session(r *http.Request) (web.Session, error) {
	a, err := s.p.SessionAuthentication(r)
	if errors.Is(err, oidc.ErrNoSession) || (err == nil && a.CitizenID == "") {
		return web.Session{}, web.ErrNoSession
	}
	if err != nil {
		return web.Session{}, err
	}
	// The id changes with every login.
	h := sha256.Sum256([]byte(a.CitizenID + "\x00" + a.AuthTime.UTC().String()))
	return web.Session{SID: hex.EncodeToString(h[:16]), CitizenID: a.CitizenID, ACR: a.ACR, AuthTime: a.AuthTime}, nil
}

// ensureAccountClient registers the first-party public client through
// which a signed-out citizen signs in to /account (web.AccountClientID),
// once per store.
func ensureAccountClient(a *app) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	redirect := a.cfg.Issuer + web.PathAccount
	c, err := a.store.Clients().Get(ctx, web.AccountClientID)
	switch {
	case err == nil && slices.Contains(c.RedirectURIs, redirect):
		return nil
	case err == nil:
		return fmt.Errorf("client %s exists with other redirect URIs %v", web.AccountClientID, c.RedirectURIs)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	adm, err := oidc.NewClientAdmin(a.store.Clients(), masterSecret(a), nil)
	if err != nil {
		return err
	}
	_, _, err = adm.Create(ctx, web.AccountClientID, oidc.ClientSpec{Name: "TrustID account", RedirectURIs: []string{redirect},
		Public: true, FirstParty: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{oidc.ScopeOpenID}})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil // another node registered it
	}
	return err
}

// loginApps names the app of the browser's sign-in in progress.
type loginApps struct {
	p       *oidc.Provider
	clients interface {
		Get(ctx context.Context, id string) (*store.Client, error)
	}
}

func (l loginApps) LoginApp(r *http.Request) (string, bool) {
	id, ok := l.p.LoginClient(r)
	if !ok {
		return "", false
	}
	c, err := l.clients.Get(r.Context(), id)
	if err != nil || c.Name == "" {
		return id, err == nil
	}
	return c.Name, true
}

// consentPages draws the provider's consent screen with the web package.
// It is given to oidc.Config.Pages before the site exists; mountWeb fills
// in the site.
type consentPages struct{ site *web.Site }

var (
	_ oidc.PageRenderer   = (*consentPages)(nil)
	_ oidc.LogoutRenderer = (*consentPages)(nil)
)

func (c *consentPages) RenderConsent(w http.ResponseWriter, r *http.Request, p oidc.ConsentPage) {
	if c.site == nil {
		// A page, so an HTML answer; the site exists moments after start.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<!doctype html><title>Starting</title><p>The service is starting. Please try again in a moment.</p>\n"))
		return
	}
	wc := web.Consent{Client: p.Client, Scopes: p.Scopes, Texts: p.Texts, Masked: p.Masked, CSRF: p.CSRF, Action: p.Action}
	for _, c := range p.Claims {
		wc.Claims = append(wc.Claims, web.ConsentClaim{Name: c.Name, Text: c.Text, Masked: c.Masked})
	}
	c.site.RenderConsent(w, r, wc)
}

// RenderLogout draws the provider's sign-out confirmation with the web
// package (oidc.LogoutRenderer).
func (c *consentPages) RenderLogout(w http.ResponseWriter, r *http.Request, p oidc.LogoutPage) {
	if c.site == nil {
		c.RenderConsent(w, r, oidc.ConsentPage{}) // the same "starting" answer
		return
	}
	c.site.RenderLogout(w, r, web.Logout{Client: p.Client, CSRF: p.CSRF, Action: p.Action, Hidden: p.Hidden})
}

// mountWeb mounts the login, account and desk pages (package web) on mux.
// Call it after the provider is mounted at "/" and the certificate service
// at "/certs/": the page patterns are more specific, so GET .../oauth2/login
// is served by web while the provider keeps .../begin and .../finish.
// svc may be nil (no net certificate, no verification log); pages, when not nil,
// is the renderer given to oidc.Config.Pages.
func mountWeb(a *app, mux *http.ServeMux, p *oidc.Provider, svc *certs.Service, pages *consentPages, ids *identity.Service) error {
	u, err := url.Parse(a.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("web: issuer: %w", err)
	}
	cfg := web.Config{
		Prefix:          strings.TrimSuffix(u.Path, "/"),
		Logger:          a.log.With("area", "web"),
		InsecureCookies: u.Scheme == "http",
		Sessions:        providerSessions{p},
		Citizens:        a.store.Citizens(),
		Consents:        a.store.Consents(),
		ConsentWriter:   a.store.Consents(),
		AuthLog: func(ctx context.Context, citizenID string, limit int) ([]audit.AuthEntry, error) {
			return audit.AuthLog(ctx, a.store.Audit(), citizenID, limit)
		},
		LoginApps:       loginApps{p: p, clients: a.store.Clients()},
		Clients:         a.store.Clients(),
		Passkeys:        a.store.Passkeys(),
		CertsAPI:        "/certs",
		QRRefresh:       a.cfg.Certs.PresentationRefresh,
		QRWindow:        a.cfg.Certs.PresentationTTL,
		FaceMethod:      "face",
		PasskeyMethod:   "passkey", // authn/passkey's method, offered by serve
		PasskeyRegister: "/passkeys",
	}
	if cfg.NetworkNumbers, err = newNetNumbers(a); err != nil {
		return err
	}
	if cfg.Audit, err = audit.New(audit.Config{Store: a.store.Audit(), Logger: cfg.Logger}); err != nil {
		return err
	}
	if ids != nil {
		cfg.FaceTemplates = ids
	}
	if len(a.cfg.Certs.Policy) > 0 {
		// The desk's purposes and what a citizen may allow a desk follow the
		// certificate service's policy (certs.policy), not the default.
		cfg.Policy = certs.Policy(a.cfg.Certs.Policy)
	}
	if err := ensureAccountClient(a); err != nil {
		a.log.Warn("web: the account page's sign-in link is off", "err", err)
	} else {
		cfg.Issuer = a.cfg.Issuer
	}
	if svc != nil {
		// The browser holds the device key and calls the certificate API itself.
		cfg.Certificates, cfg.CertLog = true, svc
	}
	site, err := web.New(cfg)
	if err != nil {
		return err
	}
	site.Mount(mux)
	if pages != nil {
		pages.site = site
	}
	return nil
}
