package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestAuthorizeAfterLogoutInAnotherTab: an authorization waiting at the
// consent page while the session is signed out elsewhere issues no code
// and answers login_required (the grant could not be recorded in a
// session that logout already revoked and deleted; before, the code was
// issued and the session re-created).
func TestAuthorizeAfterLogoutInAnotherTab(t *testing.T) {
	e := newFakeEnv(t, nil)
	v := oauth2.GenerateVerifier()
	if _, body := e.get(e.conf.AuthCodeURL("state-tab", oauth2.S256ChallengeOption(v))); !strings.Contains(body, "/oauth2/login/fake/finish") {
		t.Fatalf("expected the login page: %s", body)
	}
	_, body := e.post(e.issuer+"/oauth2/login/fake/finish", url.Values{})
	// The other tab: the same session cookie, signing out.
	u, _ := url.Parse(e.issuer + "/")
	other := e.with(t, true)
	for _, c := range e.browser.Jar.Cookies(u) {
		if c.Name == "trustid_session" {
			other.browser.Jar.SetCookies(u, []*http.Cookie{c})
		}
	}
	if resp, _ := other.logoutConfirmed(); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout in the other tab: %d", resp.StatusCode)
	}
	// This tab consents, as env.login does.
	if !strings.Contains(body, `action="/oauth2/consent/claims"`) {
		m := csrfRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("expected the consent page: %s", body)
		}
		var resp *http.Response
		resp, body = e.post(e.issuer+"/oauth2/consent", url.Values{"csrf": {m[1]}, "decision": {"approve"}})
		if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("consent answered %d before the claims page", resp.StatusCode)
		}
	}
	if q := callback(t, e.shareClaims(body, nil)); q.Get("code") != "" || q.Get("error") != "login_required" {
		t.Fatalf("consent after the session was signed out: %v, want error=login_required and no code", q)
	}
}
