package oidc

import "net/http"

// ConsentPage is what the consent screen shows. The form must POST csrf
// and decision ("approve" or "deny") to Action.
type ConsentPage struct {
	// Client is the application's display name (its id when it has none).
	Client   string
	ClientID string
	// Scopes are the requested scopes, Texts their English descriptions
	// (same order); Masked is set when the ID number will be masked.
	Scopes []string
	Texts  []string
	Masked bool
	CSRF   string
	Action string
}

// PageRenderer draws the consent screen in place of the built-in minimal
// page (package web provides a styled, translated one). It writes the whole
// response, security headers included.
type PageRenderer interface {
	RenderConsent(w http.ResponseWriter, r *http.Request, c ConsentPage)
}
