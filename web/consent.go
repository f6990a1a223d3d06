package web

import "net/http"

// Consent is the consent screen of the OIDC provider (cmd adapts
// oidc.ConsentPage to it, so this package does not import the provider and
// its fosite dependency).
type Consent struct {
	Client string
	// Scopes are the requested scope names, Texts the provider's English
	// descriptions (same order), used for scopes without a translation.
	Scopes []string
	Texts  []string
	// Masked says the ID number will be masked for this client.
	Masked bool
	CSRF   string
	Action string // the form's POST target
	// Claims, when set, makes the page the separate claims consent: one
	// checkbox per claim, none ticked (rules.go).
	Claims []ConsentClaim
}

type consentView struct {
	Client string
	Scopes []string
	Claims []claimView
	CSRF   string
	Action string
}

// RenderConsent draws the consent screen in the request's language with the
// site's security headers.
func (s *Site) RenderConsent(w http.ResponseWriter, r *http.Request, c Consent) {
	lang := s.language(w, r)
	v := consentView{Client: c.Client, CSRF: c.CSRF, Action: c.Action}
	for i, sc := range c.Scopes {
		t, ok := dict[lang]["scope."+sc]
		if !ok && i < len(c.Texts) {
			t = c.Texts[i]
		}
		if sc == "id_number" && c.Masked {
			t += dict[lang]["scope.masked"]
		}
		v.Scopes = append(v.Scopes, t)
	}
	for _, c := range c.Claims {
		v.Claims = append(v.Claims, claimView{Name: c.Name, Label: claimLabel(lang, c.Name, c.Masked)})
	}
	s.secure(func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "consent", v)
	}).ServeHTTP(w, r)
}
