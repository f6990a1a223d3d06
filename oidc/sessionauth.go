package oidc

import "net/http"

// SessionAuthentication reports how and when the citizen signed in to the
// browser session of r authenticated (citizen, acr, amr, auth_time), for
// features that need a recent proof of identity (certificate issuance).
func (p *Provider) SessionAuthentication(r *http.Request) (Authentication, bool) {
	s, _ := p.currentSession(r)
	if s == nil {
		return Authentication{}, false
	}
	return s.Auth, true
}
