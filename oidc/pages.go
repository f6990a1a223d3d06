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
	// Claims, when set, makes this the separate claims consent: one
	// checkbox per plaintext claim, none ticked. The form POSTs the ticked
	// names as "claim" values with decision "share" (or "none": continue
	// with the result only).
	Claims []ConsentClaim
}

// ConsentClaim is one plaintext claim on the claims consent page.
type ConsentClaim struct {
	Name string // e.g. "name", "birthdate", "id_number", "verified_claims"
	Text string // English description
	// Masked: the ID number is masked for this client.
	Masked bool
}

// LogoutPage is the sign-out confirmation (OpenID Connect RP-Initiated
// Logout 1.0 section 2). The form must POST every field of Hidden, csrf,
// and decision ("logout" or "stay") to Action.
type LogoutPage struct {
	// Client is the display name of the application that asked, "" when
	// the request named none.
	Client string
	CSRF   string
	Action string
	Hidden map[string]string // the request's parameters, carried to the POST
}

// LogoutRenderer is implemented by a PageRenderer that also draws the
// sign-out confirmation; the built-in minimal page is used otherwise.
type LogoutRenderer interface {
	RenderLogout(w http.ResponseWriter, r *http.Request, l LogoutPage)
}

// PageRenderer draws the consent screen in place of the built-in minimal
// page (package web provides a styled, translated one). It writes the whole
// response, security headers included.
type PageRenderer interface {
	RenderConsent(w http.ResponseWriter, r *http.Request, c ConsentPage)
}
