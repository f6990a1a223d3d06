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
	fmt.Fprintf(w, `<form method="post" action="%s"><input type="hidden" name="csrf" value="%s"></form>`,
		html.EscapeString(c.Action), html.EscapeString(c.CSRF))
}

func TestConsentPageRenderer(t *testing.T) {
	var got []oidc.ConsentPage
	e := newFakeEnv(t, func(c *oidc.Config) { c.Pages = recordingPages{&got} })
	q := e.login(e.conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil, true)
	if q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	if len(got) != 1 {
		t.Fatalf("renderer called %d times", len(got))
	}
	c := got[0]
	if c.ClientID != "rp" || c.Client == "" || c.CSRF == "" || c.Action != "/oauth2/consent" ||
		!slices.Contains(c.Scopes, "openid") || len(c.Texts) != len(c.Scopes) {
		t.Fatalf("consent page %+v", c)
	}
}
