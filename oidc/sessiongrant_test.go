package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/trustid/trustid/internal/store"
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

// TestSignInOverSessionKeepsGrantsRevocable: signing in again on a browser
// that holds a session (prompt=login, a step-up) replaces the session.
// The same citizen's earlier grants move to the new session, so the
// logout that ends it still ends their access tokens; another citizen's
// sign-in ends the earlier citizen's access tokens at once. Before, the
// replaced session's grants were dropped and their tokens outlived every
// logout.
func TestSignInOverSessionKeepsGrantsRevocable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		second      string // citizen of the second sign-in
		activeAfter bool   // the first token right after the second sign-in
		backchannel int    // back-channel logouts sent by the second sign-in
	}{
		{"same citizen", "", true, 0},
		{"another citizen", "citizen-b", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, nil)
			if err := e.st.Citizens().Create(ctx, &store.Citizen{ID: "citizen-b", IDNumber: "11010519491231002X", Name: "Li Na"}); err != nil {
				t.Fatal(err)
			}
			token := func(q url.Values, v string) string {
				tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				return tok.AccessToken
			}
			v1 := oauth2.GenerateVerifier()
			first := token(e.login(e.conf.AuthCodeURL("state-0001", oauth2.S256ChallengeOption(v1)), nil, true), v1)
			v2 := oauth2.GenerateVerifier()
			form := url.Values{}
			if tc.second != "" {
				form.Set("citizen", tc.second)
			}
			second := token(e.login(e.conf.AuthCodeURL("state-0002", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "login")), form, true), v2)
			if got := e.active(first); got != tc.activeAfter {
				t.Fatalf("first token active after the second sign-in = %v, want %v", got, tc.activeAfter)
			}
			if !e.active(second) {
				t.Fatal("second token not active")
			}
			e.mu.Lock()
			sent := len(e.logouts)
			e.mu.Unlock()
			if sent != tc.backchannel {
				t.Fatalf("back-channel logouts after the second sign-in: %d, want %d", sent, tc.backchannel)
			}
			if resp, _ := e.logoutConfirmed(); resp.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
			if e.active(first) || e.active(second) {
				t.Fatalf("after logout: first active %v, second active %v; want both ended", e.active(first), e.active(second))
			}
		})
	}
}
