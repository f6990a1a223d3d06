package web

import (
	"net/http"
	"sort"
	"time"
)

// The net certificate in the browser. The account page puts the
// certificate on the device: the page's script (assets/static/holder.js)
// generates an ECDSA P-256 key with WebCrypto as non-extractable, keeps it
// in IndexedDB, proves possession to the certificate API and stores the
// certificate beside it. The script then builds and signs every QR
// presentation itself, every QRRefresh. The certificate page is the same
// QR without anything personal in its HTML, so a service worker can cache
// it and the certificate shows without network. The server never sees the
// private key; this package only serves the pages and scripts.

// PathCertificate is the certificate page that works offline (its service
// worker, PathAccount+"/sw.js", caches it).
const PathCertificate = PathAccount + "/certificate"

// holderView is what the QR block of the account and certificate pages gets.
type holderView struct {
	CertsAPI string
	Refresh  int // seconds between presentations
	Window   int // seconds verifiers accept one
	Purposes []purposeView
}

func (s *Site) holderView() holderView {
	return holderView{CertsAPI: s.cfg.CertsAPI, Refresh: int(s.cfg.QRRefresh / time.Second),
		Window: int(s.cfg.QRWindow / time.Second), Purposes: s.purposes()}
}

// purposes lists the policy's purposes, sorted by role then purpose.
func (s *Site) purposes() []purposeView {
	var ps []purposeView
	for role, m := range s.cfg.Policy {
		for p := range m {
			ps = append(ps, purposeView{role, p})
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Role != ps[j].Role {
			return ps[i].Role < ps[j].Role
		}
		return ps[i].Purpose < ps[j].Purpose
	})
	return ps
}

// certificatePage is the offline certificate: no session needed and
// nothing personal in the HTML (the certificate is in the device's
// IndexedDB), so the service worker may cache it.
func (s *Site) certificatePage(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Certificates {
		s.render(w, r, http.StatusNotFound, "message", map[string]string{"Title": "error.title", "Text": "error.notfound"})
		return
	}
	s.render(w, r, http.StatusOK, "certificate", map[string]any{"Holder": s.holderView()})
}

// serviceWorker serves assets/static/sw.js from under the account path so
// its scope (PathAccount+"/") covers the certificate page.
func (s *Site) serviceWorker(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/static/sw.js")
	if err != nil || !s.cfg.Certificates {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	// Browsers check for a new worker at most daily anyway; no-cache makes
	// a deploy reach them at the next visit.
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
