package oidc_test

import (
	"fmt"
	"html"
	"net/http"
	"slices"
	"testing"

	"golang.org/x/oauth2"

	"github.com/trustid/trustid/oidc"
)

// recordingPages draws the consent form like the built-in page and keeps
// what it was asked to show.
type recordingPages struct{ got *[]oidc.ConsentPage }

func (p recordingPages) RenderConsent(w http.ResponseWriter, r *http.Request, c oidc.ConsentPage) {
	*p.got = append(*p.got, c)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<form method="post" action="%s"><input type="hidden" name="csrf" value="%s">`,
		html.EscapeString(c.Action), html.EscapeString(c.CSRF))
	for _, cl := range c.Claims {
		fmt.Fprintf(w, `<input type="checkbox" name="claim" value="%s">`, html.EscapeString(cl.Name))
	}
	fmt.Fprint(w, `</form>`)
}

func TestConsentPageRenderer(t *testing.T) {
	var got []oidc.ConsentPage
	e := newFakeEnv(t, func(c *oidc.Config) { c.Pages = recordingPages{&got} })
	q := e.login(e.conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil, true)
	if q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	// Two separate pages: the sign-in consent, then the claims consent.
	if len(got) != 2 {
		t.Fatalf("renderer called %d times", len(got))
	}
	c := got[0]
	if c.ClientID != "rp" || c.Client == "" || c.CSRF == "" || c.Action != "/oauth2/consent" ||
		!slices.Contains(c.Scopes, "openid") || len(c.Texts) != len(c.Scopes) || len(c.Claims) != 0 {
		t.Fatalf("consent page %+v", c)
	}
	for _, s := range c.Scopes {
		if s == oidc.ScopeProfile || s == oidc.ScopeIDNumber || s == oidc.ScopeIdentity {
			t.Fatalf("the sign-in consent bundles the identity scope %q", s)
		}
	}
	c = got[1]
	var names []string
	for _, cl := range c.Claims {
		names = append(names, cl.Name)
	}
	if c.Action != "/oauth2/consent/claims" || c.ClientID != "rp" || len(c.Scopes) != 0 || !slices.Contains(names, "name") {
		t.Fatalf("claims consent page %+v", c)
	}
}
