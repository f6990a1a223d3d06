package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/trustid/trustid/web"
)

// webDeps are the pieces of the other features the pages use; nil fields
// turn the matching part of a page off.
type webDeps struct {
	Sessions web.Sessions   // the provider's browser session (account page)
	Certs    web.CertIssuer // *certs.Issuer (live QR)
	CertLog  web.CertLog    // *certs.Service (verification log)
	CertsAPI string         // where certs.Service.Handler is mounted ("/certs")
}

// mountWeb mounts the login, account and desk pages (package web) on mux.
// Call it after the provider is mounted at "/": the page patterns are more
// specific, so GET .../oauth2/login is served by web while the provider
// keeps .../begin and .../finish.
func mountWeb(a *app, mux *http.ServeMux, d webDeps) error {
	u, err := url.Parse(a.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("web: issuer: %w", err)
	}
	site, err := web.New(web.Config{
		Prefix:          strings.TrimSuffix(u.Path, "/"),
		Logger:          a.log.With("area", "web"),
		InsecureCookies: u.Scheme == "http",
		Sessions:        d.Sessions,
		Citizens:        a.store.Citizens(),
		Consents:        a.store.Consents(),
		Clients:         a.store.Clients(),
		Passkeys:        a.store.Passkeys(),
		Certs:           d.Certs,
		CertLog:         d.CertLog,
		Holders:         a.eph,
		CertsAPI:        d.CertsAPI,
	})
	if err != nil {
		return err
	}
	site.Mount(mux)
	return nil
}
