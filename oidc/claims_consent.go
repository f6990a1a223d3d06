package oidc

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/store"
)

// The separate claims consent (MPS Order No. 173: plaintext identity only
// with the citizen's separate consent). It follows the sign-in (and its
// consent, if any) on its own page: one checkbox per plaintext claim the
// identity scopes ask for, none ticked; "Continue without sharing"
// completes the sign-in result-only. The decision is stored on the
// citizen's consent for the client (Claims, ClaimsGrantedAt; the identity
// scopes are recorded as decided so the page is not shown at every
// sign-in) and audited as oidc.consent.claims with the claims shared and
// refused and the time.

// claimItems are the checkboxes for the claims scopes ask of client c.
func claimItems(c *store.Client, scopes []string) []ConsentClaim {
	var out []ConsentClaim
	for _, name := range requestedClaims(scopes) {
		out = append(out, ConsentClaim{Name: name, Text: claimText[name],
			Masked: name == ClaimIDNumber && !slices.Contains(c.Claims, ClaimIDNumber)})
	}
	return out
}

// claimsPage shows the claims consent.
func (az *authorizer) claimsPage(w http.ResponseWriter, r *http.Request) {
	ls, c, ok := az.consentLogin(w, r)
	if !ok {
		return
	}
	items := claimItems(c, strings.Fields(ls.Form.Get("scope")))
	if len(items) == 0 {
		az.html.page(w, http.StatusBadRequest, "Nothing to share", "Return to the application and start again.", nil)
		return
	}
	if az.pages != nil {
		az.pages.RenderConsent(w, r, ConsentPage{Client: clientName(c), ClientID: c.ID, Claims: items,
			CSRF: ls.CSRF, Action: az.prefix + PathClaims})
		return
	}
	az.html.page(w, http.StatusOK, "Share your identity?", "", consentView{Client: clientName(c), Claims: items, CSRF: ls.CSRF})
}

// claimsDecision records the ticked claims (CSRF-checked) and completes
// the request; an unticked claim is refused, and refusing all still signs
// the citizen in with the result only.
func (az *authorizer) claimsDecision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ls, _, ar, ok := az.decisionForm(w, r)
	if !ok {
		return
	}
	asked := requestedClaims(ar.GetRequestedScopes())
	var shared, refused []string
	ticked := r.PostForm["claim"]
	if r.PostFormValue("decision") != "share" {
		ticked = nil
	}
	for _, c := range asked {
		if slices.Contains(ticked, c) {
			shared = append(shared, c)
		} else {
			refused = append(refused, c)
		}
	}
	for _, c := range ticked {
		if !slices.Contains(asked, c) {
			az.html.page(w, http.StatusBadRequest, "Request refused", "The form did not match the request. Please start again.", nil)
			return
		}
	}
	con, err := az.currentConsent(ctx, ls)
	if err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	// This decision replaces the earlier one for the claims asked now.
	con.Claims = slices.DeleteFunc(con.Claims, func(c string) bool { return slices.Contains(asked, c) })
	con.Claims = append(con.Claims, shared...)
	for _, s := range ar.GetRequestedScopes() {
		if identityScope(s) && !slices.Contains(con.Scopes, s) {
			con.Scopes = append(con.Scopes, s)
		}
	}
	now := az.now().UTC()
	switch {
	case len(shared) > 0:
		con.ClaimsGrantedAt = now
	case len(con.Claims) == 0:
		con.ClaimsGrantedAt = time.Time{}
	}
	if err := az.consents.Put(ctx, con); err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	outcome := "ok"
	if len(shared) == 0 {
		outcome = "denied"
	}
	az.events.record(ctx, "citizen:"+con.CitizenID, "oidc.consent.claims", con.CitizenID, con.ClientID, outcome, map[string]string{
		"claims": strings.Join(shared, " "), "refused": strings.Join(refused, " "), "at": now.Format(time.RFC3339)})
	az.finish(w, r, ar, ls)
}
