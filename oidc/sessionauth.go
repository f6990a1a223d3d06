package oidc

import (
	"errors"
	"net/http"
)

// ErrNoSession: the request carries no signed-in browser session.
var ErrNoSession = errors.New("oidc: no signed-in session")

// SessionAuthentication reports how and when the citizen signed in to the
// browser session of r authenticated (citizen, acr, amr, auth_time), for
// features that need a recent proof of identity (certificate issuance).
// Without a session it returns ErrNoSession; a session that could not be
// read (the ephemeral store failing) is that error, never ErrNoSession: a
// fault is not a verdict.
func (p *Provider) SessionAuthentication(r *http.Request) (Authentication, error) {
	s, _, err := p.browser.sessionOrFault(r)
	if err != nil {
		return Authentication{}, err
	}
	if s == nil {
		return Authentication{}, ErrNoSession
	}
	return s.Auth, nil
}

// SessionCitizen reports the citizen signed in to the browser session of r
// and the assurance reached, for features that need a signed-in citizen
// (passkey registration). Without a session citizenID is empty and err nil;
// err is a session that could not be read (a store fault), never "no
// session".
func (p *Provider) SessionCitizen(r *http.Request) (citizenID, acr string, err error) {
	a, err := p.SessionAuthentication(r)
	if errors.Is(err, ErrNoSession) {
		return "", "", nil
	}
	return a.CitizenID, a.ACR, err
}

// LoginClient reports the client whose authorization request the
// browser's sign-in in progress belongs to (the login page names the app
// that asks for the sign-in).
func (p *Provider) LoginClient(r *http.Request) (clientID string, ok bool) {
	ls, _, err := p.browser.login(r)
	if err != nil || ls == nil || ls.Attempt.ClientID == "" {
		return "", false
	}
	return ls.Attempt.ClientID, true
}
