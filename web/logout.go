package web

import "net/http"

// Logout is the provider's sign-out confirmation (OpenID Connect
// RP-Initiated Logout 1.0 section 2; cmd adapts oidc.LogoutPage to it).
type Logout struct {
	Client string // the asking application's name, "" when none was named
	CSRF   string
	Action string            // the form's POST target
	Hidden map[string]string // the request's parameters, carried to the POST
}

// RenderLogout draws the sign-out confirmation in the request's language
// with the site's security headers.
func (s *Site) RenderLogout(w http.ResponseWriter, r *http.Request, l Logout) {
	s.secure(func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "logout", l)
	}).ServeHTTP(w, r)
}
