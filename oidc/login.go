package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// Cookies. Both hold only an opaque random id; the state lives in the
// ephemeral store under a hash of it, so any node can continue any step.
const (
	cookieLogin   = "trustid_login"
	cookieSession = "trustid_session"
)

// loginState is an authorization request waiting for login and/or consent.
type loginState struct {
	Attempt LoginAttempt `json:"attempt"`
	// Form is the authorization request's parameters as fosite resolved
	// them (after a pushed request was merged), replayed to resume.
	Form url.Values      `json:"form"`
	Auth *Authentication `json:"auth,omitempty"`
	// SessionID is the browser session the login belongs to.
	SessionID string `json:"session_id,omitempty"`
	CSRF      string `json:"csrf"`
	// StepUp is set when the session's acr was below acr_values.
	StepUp bool `json:"step_up,omitempty"`
}

// browserSession is a citizen's logged-in session at the provider. It is
// changed only under its sessionLock (rememberGrant, logout).
type browserSession struct {
	SID  string         `json:"sid"`
	Auth Authentication `json:"auth"`
	// Clients that received tokens in this session (back-channel logout).
	Clients []string `json:"clients,omitempty"`
	// Grants are the authorizations given in this session: logout
	// revokes their access tokens.
	Grants sessionGrants `json:"grants,omitempty"`
}

// sessionGrant is one authorization given in a browser session.
type sessionGrant struct {
	// ID is the fosite request id, which every access token of the grant
	// carries (refreshed ones too).
	ID string `json:"id"`
	// At is when the grant was given (its code or implicit tokens
	// issued); zero for a grant stored as a bare id before it was
	// recorded, which is kept until the session ends.
	At time.Time `json:"at,omitzero"`
	// Offline: a refresh token was granted, whose refreshed access
	// tokens carry the same request id at any time; never pruned.
	Offline bool `json:"offline,omitempty"`
}

// sessionGrants reads both the current form (objects) and the one stored
// before grants had a time (a list of request ids): sessions live for
// SessionTTL across an upgrade, and their grants must still be revoked.
type sessionGrants []sessionGrant

func (g *sessionGrants) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("oidc: session grants: %w", err)
	}
	out := make(sessionGrants, 0, len(raw))
	for _, r := range raw {
		var sg sessionGrant
		if err := json.Unmarshal(r, &sg.ID); err != nil {
			if err := json.Unmarshal(r, &sg); err != nil {
				return fmt.Errorf("oidc: session grant: %w", err)
			}
		}
		if sg.ID == "" {
			return errors.New("oidc: session grant without id")
		}
		out = append(out, sg)
	}
	*g = out
	return nil
}

// prune drops the grants that can have no live access token at now: given
// before now-life (life is the code lifetime plus the access token
// lifetime, plus grantClockSlack between nodes), without a refresh token,
// and with a known time.
func (g sessionGrants) prune(now time.Time, life time.Duration) sessionGrants {
	cut := now.Add(-life - grantClockSlack)
	return slices.DeleteFunc(g, func(sg sessionGrant) bool {
		return !sg.Offline && !sg.At.IsZero() && sg.At.Before(cut)
	})
}

// grantClockSlack covers clock differences between the nodes that give a
// grant, exchange its code and check its tokens.
const grantClockSlack = time.Minute

// maxSessionGrants bounds the grants of a browser session that may still
// have live access tokens. A session at the bound refuses further
// authorizations (errSessionFull) instead of forgetting a grant whose
// tokens logout would then miss.
const maxSessionGrants = 1024

// errSessionEnded: the browser session was gone (logged out or expired)
// when its grant was to be recorded. errSessionFull: see maxSessionGrants.
// Neither is a fault; no code is issued.
var (
	errSessionEnded = errors.New("oidc: browser session ended")
	errSessionFull  = errors.New("oidc: browser session has too many live grants")
)

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("oidc: crypto/rand: %v", err)) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(prefix, id string) string {
	h := sha256.Sum256([]byte(id))
	return prefix + base64.RawURLEncoding.EncodeToString(h[:])
}

func loginKey(id string) string   { return hashKey("oidc:login:", id) }
func sessionKey(id string) string { return hashKey("oidc:session:", id) }

func prompts(form url.Values) []string { return strings.Fields(form.Get("prompt")) }

// minACR is the lowest acceptable acr in acr_values (the first known one).
func minACR(form url.Values) string {
	for _, v := range strings.Fields(form.Get("acr_values")) {
		if acrRank(v) >= 0 {
			return v
		}
	}
	return ""
}

// needLogin says why a session cannot be reused for this request ("" if it can).
func (az *authorizer) needLogin(s *browserSession, form url.Values, requestedAt time.Time) string {
	switch {
	case s == nil:
		return "no session"
	case slices.Contains(prompts(form), "login"):
		return "prompt=login"
	case acrRank(s.Auth.ACR) < acrRank(minACR(form)):
		return "step-up"
	}
	if ma := form.Get("max_age"); ma != "" {
		if n, err := strconv.ParseInt(ma, 10, 64); err == nil && n >= 0 &&
			s.Auth.AuthTime.Add(time.Duration(n)*time.Second).Before(requestedAt) {
			return "max_age"
		}
	}
	return ""
}

// authorizeError answers a failed authorization request. A dependency's
// fault (httperr.IsUnavailable) is never a verdict: fosite calls every
// GetClient error "The requested OAuth 2.0 Client does not exist" (401
// invalid_client), which during a store outage told a valid app its
// client was unknown (the fault suite's "PostgreSQL stopped" scenario).
// Without a client whose redirect URI is known the answer is a 503 with
// Retry-After to the browser; with one, the app gets
// error=temporarily_unavailable at its redirect URI.
func (az *authorizer) authorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	if httperr.IsUnavailable(err) {
		if ar == nil || ar.GetClient() == nil || ar.GetRedirectURI() == nil {
			w.Header().Set("Retry-After", retryAfter)
			az.f.WriteAccessError(ctx, w, nil, fosite.ErrTemporarilyUnavailable.WithWrap(err))
			return
		}
		err = fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	az.f.WriteAuthorizeError(ctx, w, ar, err)
}

// authorize is the authorization endpoint (RFC 6749 4.1.1, OIDC Core 3.1.2).
func (az *authorizer) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := az.f.NewAuthorizeRequest(ctx, r)
	if err != nil {
		az.authorizeError(ctx, w, ar, err)
		return
	}
	// fosite checks PKCE only when issuing the code; refuse before the
	// citizen goes through a login that could not succeed.
	if f := ar.GetRequestForm(); ar.GetClient().IsPublic() && f.Get("code_challenge") == "" {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE (S256)."))
		return
	} else if m := f.Get("code_challenge_method"); f.Get("code_challenge") != "" && m != "S256" {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256."))
		return
	}
	form := url.Values{}
	for k, v := range ar.GetRequestForm() {
		form[k] = v
	}
	// A pushed request is single use; its parameters are in form now.
	delete(form, "request_uri")
	form.Set("client_id", ar.GetClient().GetID())
	form.Set("response_type", strings.Join(ar.GetResponseTypes(), " "))
	form.Set("redirect_uri", ar.GetRedirectURI().String())
	form.Set("scope", strings.Join(ar.GetRequestedScopes(), " "))
	if ar.GetState() != "" {
		form.Set("state", ar.GetState())
	}
	now := az.now().UTC().Truncate(time.Second)
	ls := &loginState{
		Attempt: LoginAttempt{ID: randomID(), ClientID: ar.GetClient().GetID(), LoginHint: form.Get("login_hint"),
			MinACR: minACR(form), RequestedAt: now},
		Form: form, CSRF: randomID(),
	}
	sess, _, err := az.browser.sessionOrFault(r)
	if err != nil {
		// Not "signed out": a store fault is answered as one.
		az.authorizeError(ctx, w, ar, fmt.Errorf("%w: %w", httperr.ErrUnavailable, err))
		return
	}
	if why := az.needLogin(sess, form, now); why != "" {
		if slices.Contains(prompts(form), "none") {
			az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrLoginRequired.WithHintf("Login is required (%s) but prompt=none was given.", why))
			return
		}
		if sess != nil {
			ls.Attempt.CitizenID = sess.Auth.CitizenID
			ls.StepUp = why == "step-up"
		}
		if err := putJSON(ctx, az.eph, loginKey(ls.Attempt.ID), ls, az.loginTTL); err != nil {
			az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		az.browser.setCookie(w, cookieLogin, ls.Attempt.ID, az.loginTTL)
		http.Redirect(w, r, az.prefix+PathLogin, http.StatusFound)
		return
	}
	auth := sess.Auth
	ls.Auth, ls.SessionID = &auth, sess.SID
	az.afterLogin(w, r, ar, ls)
}

// resume continues an authorization request after the login step.
func (az *authorizer) resume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ls, _, err := az.browser.login(r)
	if err != nil || ls.Auth == nil {
		az.html.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or was already used. Return to the application and start again.", nil)
		return
	}
	ar, err := az.rebuild(ctx, ls)
	if err != nil {
		az.authorizeError(ctx, w, ar, err)
		return
	}
	az.afterLogin(w, r, ar, ls)
}

// rebuild re-parses the stored authorization request (fosite validates it again).
func (az *authorizer) rebuild(ctx context.Context, ls *loginState) (fosite.AuthorizeRequester, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, az.issuer+PathAuth+"?"+ls.Form.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return az.f.NewAuthorizeRequest(ctx, req)
}

// signInScopes are the requested scopes the sign-in consent covers: all
// but the identity scopes, which have their own, separate consent.
func signInScopes(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if !identityScope(s) {
			out = append(out, s)
		}
	}
	return out
}

// consentNeeded lists the requested sign-in scopes the citizen has not
// granted yet (first-party clients need no sign-in consent), and the
// identity scopes on which the citizen has not decided yet (every client,
// first-party included: plaintext identity always takes the separate
// consent). prompt=consent asks both again.
func (az *authorizer) consentNeeded(ctx context.Context, c *store.Client, citizenID string, scopes []string, form url.Values) (signIn, identity []string, err error) {
	var con *store.Consent
	if !slices.Contains(prompts(form), "consent") {
		con, err = az.consents.Get(ctx, citizenID, c.ID)
		if errors.Is(err, store.ErrNotFound) {
			con, err = nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
	for _, s := range scopes {
		decided := con != nil && slices.Contains(con.Scopes, s)
		switch {
		case identityScope(s) && !decided:
			identity = append(identity, s)
		case !identityScope(s) && !decided && !c.FirstParty:
			signIn = append(signIn, s)
		}
	}
	return signIn, identity, nil
}

func (az *authorizer) afterLogin(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, ls *loginState) {
	ctx := r.Context()
	client := ar.GetClient().(*storage.Client)
	signIn, identity, err := az.consentNeeded(ctx, client.Client, ls.Auth.CitizenID, ar.GetRequestedScopes(), ls.Form)
	if err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	next := ""
	switch {
	case len(signIn) > 0:
		if slices.Contains(prompts(ls.Form), "none") {
			az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrConsentRequired.WithHint("Consent is required but prompt=none was given."))
			return
		}
		next = PathConsent
	case len(identity) > 0 && !slices.Contains(prompts(ls.Form), "none"):
		// prompt=none: the sign-in completes result-only; the claims the
		// citizen was never asked about are not released.
		next = PathClaims
	}
	if next == "" {
		az.finish(w, r, ar, ls)
		return
	}
	if err := putJSON(ctx, az.eph, loginKey(ls.Attempt.ID), ls, az.loginTTL); err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	az.browser.setCookie(w, cookieLogin, ls.Attempt.ID, az.loginTTL)
	http.Redirect(w, r, az.prefix+next, http.StatusFound)
}

// finish issues the authorization code.
func (az *authorizer) finish(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, ls *loginState) {
	ctx := r.Context()
	client := ar.GetClient().(*storage.Client)
	for _, s := range ar.GetRequestedScopes() {
		if s == ScopeNetworkNumber && !mayReceiveNetworkNumber(client.Client) {
			continue // asked for but not allowed: the token says so by its scope
		}
		ar.GrantScope(s)
	}
	sess := newSession()
	sess.CitizenID = ls.Auth.CitizenID
	sess.SID = ls.SessionID
	// dpop_jkt (RFC 9449 section 10) binds the code to the client's DPoP key.
	jkt := ar.GetRequestForm().Get("dpop_jkt")
	if jkt != "" && !validJKT(jkt) {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("dpop_jkt must be a base64url SHA-256 JWK thumbprint."))
		return
	}
	sess.DPoPJKT = jkt
	sub := az.subject(client.Client, ls.Auth.CitizenID)
	sess.Subject = sub
	c := sess.Claims
	c.Subject = sub
	c.RequestedAt = ls.Attempt.RequestedAt
	c.AuthTime = ls.Auth.AuthTime.UTC().Truncate(time.Second)
	c.AuthenticationContextClassReference = ls.Auth.ACR
	c.AuthenticationMethodsReferences = ls.Auth.AMR
	c.Add("sid", ls.SessionID)
	// No identity claim goes into the stored session: the ID token
	// strategy (liveClaimsStrategy) adds what the consent releases at each
	// token call.
	// The session records the grant before the code exists: logout
	// revokes the session's grants, so a grant it could not record would
	// outlive the logout. A fault here answers 503 and issues nothing; a
	// session that ended meanwhile (logout) asks for a new sign-in.
	offline := ar.GetGrantedScopes().HasOneOf(ScopeOffline)
	if err := az.rememberGrant(r, client.ID, ar.GetID(), offline); err != nil {
		switch {
		case errors.Is(err, errSessionEnded):
			az.log.Info("oidc: authorization refused: session ended", "client", client.ID)
			az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrLoginRequired.WithHint("The sign-in session has ended. Please sign in again."))
		case errors.Is(err, errSessionFull):
			az.log.Warn("oidc: authorization refused: session full", "client", client.ID, "max", maxSessionGrants)
			az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("This sign-in session has given too many authorizations. Please sign out and sign in again."))
		default:
			az.authorizeError(ctx, w, ar, fmt.Errorf("%w: %w", httperr.ErrUnavailable, err))
		}
		return
	}
	resp, err := az.f.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		az.authorizeError(ctx, w, ar, err)
		return
	}
	if err := az.eph.Delete(ctx, loginKey(ls.Attempt.ID)); err != nil {
		az.log.Warn("oidc: delete login state", "err", err)
	}
	az.browser.clearCookie(w, cookieLogin)
	az.events.record(ctx, "client:"+client.ID, "oidc.authorize", ls.Auth.CitizenID, client.ID, "ok", map[string]string{"acr": ls.Auth.ACR})
	az.f.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// rememberGrant records, under the session's lock, that the browser
// session's citizen signed in to client by the authorization with fosite
// request id requestID (offline: with a refresh token). It re-reads the
// session under the lock, so concurrent authorizations all land and a
// logout in between is seen: errSessionEnded, nothing written. It returns
// errSessionFull if the session holds maxSessionGrants grants that may
// still have live access tokens. Any other error is a fault.
func (az *authorizer) rememberGrant(r *http.Request, clientID, requestID string, offline bool) error {
	ctx := r.Context()
	c, err := r.Cookie(cookieSession)
	if err != nil || c.Value == "" {
		return errSessionEnded
	}
	id := c.Value
	return withSessionLock(ctx, az.eph, az.log, id, func(lk *sessionLock) error {
		var s browserSession
		if err := getJSON(ctx, az.eph, sessionKey(id), &s); err != nil {
			if errors.Is(err, ephemeral.ErrNotFound) {
				return errSessionEnded
			}
			return fmt.Errorf("oidc: load session: %w", err)
		}
		now := az.now().UTC()
		s.Grants = s.Grants.prune(now, az.grantLife)
		if len(s.Grants) >= maxSessionGrants {
			return errSessionFull
		}
		if !slices.Contains(s.Clients, clientID) {
			s.Clients = append(s.Clients, clientID)
		}
		s.Grants = append(s.Grants, sessionGrant{ID: requestID, At: now, Offline: offline})
		if err := putJSON(ctx, az.eph, sessionKey(id), &s, az.sessionTTL); err != nil {
			return fmt.Errorf("oidc: update session: %w", err)
		}
		// Held all along: a logout cannot have read the session in between.
		return lk.held(ctx)
	})
}

// replaceSession stores bs as the browser session under cookie, replacing
// the session under oldID when hadOld (a step-up or a sign-in over an
// existing session). The old session's grants must not escape the logout
// that ends them: under the old session's lock (so no authorization adds
// a grant meanwhile), the same citizen's grants and clients move to the
// new session, and another citizen's grants have their access tokens
// revoked, as a logout would, before the old session is deleted; that
// session is returned (for its back-channel logout), else nil. An error
// is a fault: the old session may be left in place, never a grant
// forgotten.
func (az *authorizer) replaceSession(ctx context.Context, hadOld bool, oldID, cookie string, bs *browserSession) (ended *browserSession, err error) {
	if !hadOld {
		return nil, putJSON(ctx, az.eph, sessionKey(cookie), bs, az.sessionTTL)
	}
	err = withSessionLock(ctx, az.eph, az.log, oldID, func(lk *sessionLock) error {
		var old browserSession
		switch err := getJSON(ctx, az.eph, sessionKey(oldID), &old); {
		case errors.Is(err, ephemeral.ErrNotFound):
			// Ended meanwhile (a logout revoked its grants): nothing to carry.
			return putJSON(ctx, az.eph, sessionKey(cookie), bs, az.sessionTTL)
		case err != nil:
			return fmt.Errorf("oidc: load session: %w", err)
		}
		same := old.Auth.CitizenID == bs.Auth.CitizenID
		if same {
			bs.Clients = append(bs.Clients, old.Clients...)
			bs.Grants = append(bs.Grants, old.Grants.prune(az.now().UTC(), az.grantLife)...)
		} else if err := revokeGrants(ctx, az.tokens, &old); err != nil {
			return fmt.Errorf("oidc: revoke the replaced session's access tokens: %w", err)
		}
		if err := putJSON(ctx, az.eph, sessionKey(cookie), bs, az.sessionTTL); err != nil {
			return err
		}
		if err := lk.held(ctx); err != nil {
			return err
		}
		if err := az.eph.Delete(ctx, sessionKey(oldID)); err != nil {
			return fmt.Errorf("oidc: delete the replaced session: %w", err)
		}
		if !same {
			ended = &old
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// methodsFor lists the authenticators able to reach minACR.
func (az *authorizer) methodsFor(min string) []Authenticator {
	var out []Authenticator
	for _, a := range az.authenticators {
		// Two-factor assurance is reached by combining methods in one session.
		if acrRank(a.MaxACR()) >= acrRank(min) || min == ACRFaceLivenessPasskey {
			out = append(out, a)
		}
	}
	return out
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - TrustID</title></head><body>
<h1>{{.Title}}</h1>
{{if .Text}}<p>{{.Text}}</p>{{end}}
{{with .Login}}
<p>Sign-in methods for this request (each needs a browser with JavaScript; the face method also a camera and a microphone):</p>
<ul>{{range .Methods}}<li>{{.Method}}: <code>POST {{$.Prefix}}/oauth2/login/{{.Method}}/begin</code>, then <code>POST {{$.Prefix}}/oauth2/login/{{.Method}}/finish</code> with the evidence</li>{{end}}</ul>
<p><a href="{{$.Prefix}}/oauth2/login">Start the sign-in again</a></p>
{{end}}
{{with .Consent}}{{if .Claims}}
<p><strong>{{.Client}}</strong> asks to see the following. It already gets the result of your sign-in; nothing below is shared unless you tick it.</p>
<form method="post" action="{{$.Prefix}}/oauth2/consent/claims">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset><legend>Share with {{.Client}}</legend>
{{range .Claims}}<p><input type="checkbox" name="claim" value="{{.Name}}" id="claim-{{.Name}}"> <label for="claim-{{.Name}}">{{.Text}}{{if .Masked}} (masked){{end}}</label></p>
{{end}}</fieldset>
<button type="submit" name="decision" value="share">Share the ticked items</button>
<button type="submit" name="decision" value="none">Continue without sharing</button>
</form>
{{else}}
<p><strong>{{.Client}}</strong> asks to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="{{$.Prefix}}/oauth2/consent">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
{{end}}{{end}}
{{with .Logout}}
<p>{{if .Client}}<strong>{{.Client}}</strong> asks to sign you out of TrustID.{{else}}Do you want to sign out of TrustID?{{end}}</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button type="submit" name="decision" value="logout">Sign out</button>
<button type="submit" name="decision" value="stay">Stay signed in</button>
</form>
{{end}}
</body></html>`))

type loginView struct{ Methods []Authenticator }

// authorizer is the authorize/consent component: the authorization
// endpoint and its resumption, the login pages and methods, and consent.
// It holds its narrow storage (authorize_storage.go), fosite (set once
// composed), the browser sessions, the pages and the provider's subject.
type authorizer struct {
	f          fosite.OAuth2Provider
	issuer     string
	prefix     string
	loginTTL   time.Duration
	sessionTTL time.Duration
	grantLife  time.Duration // AuthCodeTTL + AccessTokenTTL: a grant's longest access without refresh
	tokens     logoutTokens  // ends a replaced session's grants (replaceSession)
	// sessionEnded sends the back-channel logout of a session another
	// citizen's sign-in ended (logout.backchannelLogout).
	sessionEnded   func(ctx context.Context, s *browserSession)
	pages          PageRenderer // nil: the built-in pages
	authenticators []Authenticator
	auths          map[string]Authenticator
	eph            authorizeEphemeral
	clients        authorizeClients
	citizens       authorizeCitizens
	consents       authorizeConsents
	browser        *browser
	html           htmlPages
	events         events
	now            func() time.Time
	log            *slog.Logger
	subject        func(*store.Client, string) string
	numbers        NetworkNumbers // nil: no 网号 assignment at sign-in
}

type consentView struct {
	Client string
	Scopes []string
	Claims []ConsentClaim
	CSRF   string
}

// htmlPages draws the provider's built-in HTML pages (pageTmpl).
type htmlPages struct {
	prefix string
	log    *slog.Logger
}

func (h htmlPages) page(w http.ResponseWriter, status int, title, text string, data any) {
	v := map[string]any{"Title": title, "Text": text, "Prefix": h.prefix}
	switch d := data.(type) {
	case loginView:
		v["Login"] = d
	case consentView:
		v["Consent"] = d
	case LogoutPage:
		v["Logout"] = d
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, v); err != nil {
		h.log.Warn("oidc: render page", "err", err)
	}
}

// loginPage is the minimal server-rendered login page (the full UI comes later).
func (az *authorizer) loginPage(w http.ResponseWriter, r *http.Request) {
	ls, _, err := az.browser.login(r)
	if err != nil {
		az.html.page(w, http.StatusBadRequest, "Sign-in expired", "Return to the application and start again.", nil)
		return
	}
	az.html.page(w, http.StatusOK, "Sign in", "Prove who you are.", loginView{Methods: az.methodsFor(ls.Attempt.MinACR)})
}

func (az *authorizer) loginMethod(w http.ResponseWriter, r *http.Request) (*loginState, string, Authenticator, bool) {
	ls, id, err := az.browser.login(r)
	switch {
	case errors.Is(err, ephemeral.ErrNotFound):
		httperr.Write(w, r, az.log, httperr.BadRequest("login_expired", "this sign-in has expired; start again from the application").WithCause(err))
		return nil, "", nil, false
	case err != nil:
		// A fault of the ephemeral store is not an expired sign-in.
		httperr.Write(w, r, az.log, httperr.Unavailable(err))
		return nil, "", nil, false
	}
	a, ok := az.auths[r.PathValue("method")]
	if !ok || !slices.ContainsFunc(az.methodsFor(ls.Attempt.MinACR), func(m Authenticator) bool { return m.Method() == a.Method() }) {
		httperr.Write(w, r, az.log, httperr.NotFound("no such sign-in method for this request"))
		return nil, "", nil, false
	}
	return ls, id, a, true
}

// loginBegin starts a login step and returns the authenticator's challenge.
func (az *authorizer) loginBegin(w http.ResponseWriter, r *http.Request) {
	ls, _, a, ok := az.loginMethod(w, r)
	if !ok {
		return
	}
	var ch any
	var err error
	if rb, ok := a.(RequestBeginner); ok {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBeginBytes)
		ch, err = rb.BeginRequest(r.Context(), &ls.Attempt, r)
	} else {
		ch, err = a.Begin(r.Context(), &ls.Attempt)
	}
	switch {
	case err == nil:
		_ = httperr.WriteJSON(w, http.StatusOK, ch)
	case errors.Is(err, ErrAuthenticationFailed):
		httperr.Write(w, r, az.log, httperr.InvalidRequest("the sign-in could not be started").WithCause(err))
	default:
		httperr.Write(w, r, az.log, refusalError(err))
	}
}

// refusalError maps a login method's refusal (authn.Refusal: malformed,
// limited, unavailable) to the JSON error answered to the page; anything
// else is a fault (503: a fault is not a verdict).
func refusalError(err error) *httperr.Error {
	var ref *authn.Refusal
	if !errors.As(err, &ref) {
		return httperr.Unavailable(err)
	}
	var e *httperr.Error
	switch {
	case errors.Is(ref.Kind, authn.ErrMalformed):
		e = httperr.BadRequest(ref.Code, "the request could not be read; start again")
	case errors.Is(ref.Kind, authn.ErrNotPermitted):
		e = httperr.New(http.StatusForbidden, ref.Code, "this sign-in method cannot be used here; choose another")
	case errors.Is(ref.Kind, authn.ErrLimited):
		e = httperr.RateLimited(ref.RetryAfter)
		e.Code, e.Message = ref.Code, "too many attempts; try again later"
	default:
		e = httperr.Unavailable(nil)
		e.Code, e.RetryAfter = ref.Code, max(ref.RetryAfter, time.Second)
	}
	return e.WithCause(err)
}

// maxLoginFailures is how many failed steps one login attempt allows.
const maxLoginFailures = 5

// maxEvidenceBytes bounds a login step's evidence (a short video clip).
const maxEvidenceBytes = 32 << 20

// loginFinish checks the evidence; on success it starts a new browser
// session (a fresh id, against session fixation) and resumes the request.
func (az *authorizer) loginFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ls, id, a, ok := az.loginMethod(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxEvidenceBytes)
	old, oldID, err := az.browser.sessionOrFault(r)
	if err != nil {
		// The session being stepped up could not be read: without it the
		// new session would lose its earlier methods (and its grants'
		// logout). Nothing is checked or consumed; the citizen retries.
		httperr.Write(w, r, az.log, httperr.Unavailable(err))
		return
	}
	auth, err := a.Finish(ctx, &ls.Attempt, r)
	if err == nil {
		if auth.AuthTime.IsZero() {
			auth.AuthTime = az.now()
		}
		if old != nil {
			combine(auth, &old.Auth)
		}
		err = az.checkAuth(ctx, ls, auth)
	}
	if err != nil && !errors.Is(err, ErrAuthenticationFailed) {
		// Not a verdict on the citizen (unreadable evidence, a limit, a
		// fault): a JSON answer with a stable code, not counted as a failure.
		az.log.Info("oidc: login step refused", "method", a.Method(), "client", ls.Attempt.ClientID, "err", err)
		httperr.Write(w, r, az.log, refusalError(err))
		return
	}
	if err != nil {
		// Same answer for every failure; the reason goes to the log and audit.
		az.log.Info("oidc: login failed", "method", a.Method(), "client", ls.Attempt.ClientID, "err", err)
		az.events.record(ctx, "system", "login."+a.Method(), ls.Attempt.CitizenID, ls.Attempt.ClientID, "fail", nil)
		// A login attempt allows a few tries; then the client must start over
		// (a new authorization request), which also resets the challenges.
		if n, ierr := az.eph.Incr(ctx, hashKey("oidc:loginfail:", id), 1, az.loginTTL); ierr == nil && n >= maxLoginFailures {
			_ = az.eph.Delete(ctx, loginKey(id))
			az.browser.clearCookie(w, cookieLogin)
			az.html.page(w, http.StatusUnauthorized, "Sign-in failed", "We could not confirm your identity. Return to the application and start again.", nil)
			return
		}
		az.html.page(w, http.StatusUnauthorized, "Sign-in failed", "We could not confirm your identity. Please try again.", loginView{Methods: az.methodsFor(ls.Attempt.MinACR)})
		return
	}
	auth.AuthTime = auth.AuthTime.UTC().Truncate(time.Second)
	cookie := randomID()
	bs := &browserSession{SID: randomID()[:22], Auth: *auth}
	ended, err := az.replaceSession(ctx, old != nil, oldID, cookie, bs)
	if err != nil {
		az.log.Error("oidc: save session", "err", err)
		az.html.page(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Please try again.", nil)
		return
	}
	if ended != nil && az.sessionEnded != nil {
		// Another citizen's session ended here: its relying parties hear
		// it as from a logout.
		az.sessionEnded(ctx, ended)
	}
	ls.Auth, ls.SessionID = auth, bs.SID
	if err := putJSON(ctx, az.eph, loginKey(id), ls, az.loginTTL); err != nil {
		az.log.Error("oidc: save login", "err", err)
		az.html.page(w, http.StatusServiceUnavailable, "Try again", "The service is busy. Please try again.", nil)
		return
	}
	if az.numbers != nil {
		// The 网号 is assigned at the first verified sign-in. A failure does
		// not refuse the sign-in: the next one, or the certificate, assigns it.
		if _, err := az.numbers.Ensure(ctx, auth.CitizenID); err != nil {
			az.log.Warn("oidc: network number not assigned", "err", err)
		}
	}
	az.browser.setCookie(w, cookieSession, cookie, az.sessionTTL)
	for _, c := range auth.Cookies {
		http.SetCookie(w, c)
	}
	az.events.record(ctx, "citizen:"+auth.CitizenID, "login."+a.Method(), auth.CitizenID, ls.Attempt.ClientID, "ok", map[string]string{"acr": auth.ACR})
	http.Redirect(w, r, az.prefix+PathResume, http.StatusSeeOther)
}

// combine raises auth to two-factor assurance when the same citizen, in
// the same browser session, already passed face + liveness and now a
// passkey (or the other way round): the acr becomes
// face+liveness+passkey and the amr lists both plus "mfa".
func combine(auth, prev *Authentication) {
	if prev.CitizenID != auth.CitizenID {
		return
	}
	face := func(a *Authentication) bool { return acrRank(a.ACR) >= acrRank(ACRFaceLiveness) }
	key := func(a *Authentication) bool { return a.ACR == ACRPasskey || slices.Contains(a.AMR, AMRHardware) }
	if (face(prev) && key(auth)) || (key(prev) && face(auth)) {
		auth.ACR = ACRFaceLivenessPasskey
		for _, m := range append(append([]string(nil), prev.AMR...), AMRMFA) {
			if !slices.Contains(auth.AMR, m) {
				auth.AMR = append(auth.AMR, m)
			}
		}
	}
}

// checkAuth applies the provider's rules to an authenticator's result.
func (az *authorizer) checkAuth(ctx context.Context, ls *loginState, auth *Authentication) error {
	switch {
	case auth == nil || auth.CitizenID == "":
		return fmt.Errorf("%w: no citizen", ErrAuthenticationFailed)
	case acrRank(auth.ACR) < 0 || acrRank(auth.ACR) < acrRank(ls.Attempt.MinACR):
		return fmt.Errorf("%w: acr %q below %q", ErrAuthenticationFailed, auth.ACR, ls.Attempt.MinACR)
	case ls.StepUp && auth.CitizenID != ls.Attempt.CitizenID:
		// A step-up must be made by the citizen already signed in.
		return fmt.Errorf("%w: step-up by another citizen", ErrAuthenticationFailed)
	}
	cit, err := az.citizens.Get(ctx, auth.CitizenID)
	if err != nil {
		return fmt.Errorf("%w: citizen: %w", ErrAuthenticationFailed, err)
	}
	if cit.Disabled {
		return fmt.Errorf("%w: citizen disabled", ErrAuthenticationFailed)
	}
	return nil
}

// consentLogin is the signed-in login a consent page belongs to and its
// client; when ok is false the answer was written.
func (az *authorizer) consentLogin(w http.ResponseWriter, r *http.Request) (*loginState, *store.Client, bool) {
	ls, _, err := az.browser.login(r)
	if err != nil || ls.Auth == nil {
		az.html.page(w, http.StatusBadRequest, "Sign-in expired", "Return to the application and start again.", nil)
		return nil, nil, false
	}
	c, err := az.clients.Get(r.Context(), ls.Attempt.ClientID)
	if err != nil {
		az.html.page(w, http.StatusBadRequest, "Unknown application", "", nil)
		return nil, nil, false
	}
	return ls, c, true
}

// consentPage lists what the client asks for.
func (az *authorizer) consentPage(w http.ResponseWriter, r *http.Request) {
	ls, c, ok := az.consentLogin(w, r)
	if !ok {
		return
	}
	scopes := signInScopes(strings.Fields(ls.Form.Get("scope")))
	var items []string
	for _, s := range scopes {
		t := scopeText[s]
		if t == "" {
			t = s
		}
		items = append(items, t)
	}
	name := clientName(c)
	if az.pages != nil {
		az.pages.RenderConsent(w, r, ConsentPage{Client: name, ClientID: c.ID, Scopes: scopes, Texts: items,
			CSRF: ls.CSRF, Action: az.prefix + PathConsent})
		return
	}
	az.html.page(w, http.StatusOK, "Allow access?", "", consentView{Client: name, Scopes: items, CSRF: ls.CSRF})
}

// clientName is a client's display name, its id when it has none.
func clientName(c *store.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// decisionForm reads a consent form post: the signed-in login it belongs
// to (CSRF-checked) and its rebuilt authorization request. When ok is
// false the answer was written.
func (az *authorizer) decisionForm(w http.ResponseWriter, r *http.Request) (ls *loginState, id string, ar fosite.AuthorizeRequester, ok bool) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ls, id, err := az.browser.login(r)
	if err != nil || ls.Auth == nil {
		az.html.page(w, http.StatusBadRequest, "Sign-in expired", "Return to the application and start again.", nil)
		return nil, "", nil, false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ls.CSRF)) != 1 {
		az.html.page(w, http.StatusForbidden, "Request refused", "The form has expired. Please start again.", nil)
		return nil, "", nil, false
	}
	ar, err = az.rebuild(ctx, ls)
	if err != nil {
		az.authorizeError(ctx, w, ar, err)
		return nil, "", nil, false
	}
	return ls, id, ar, true
}

// consentDecision records approve/deny (CSRF-checked) and completes the request.
func (az *authorizer) consentDecision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ls, id, ar, ok := az.decisionForm(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("decision") != "approve" {
		_ = az.eph.Delete(ctx, loginKey(id))
		az.browser.clearCookie(w, cookieLogin)
		az.events.record(ctx, "citizen:"+ls.Auth.CitizenID, "oidc.consent", ls.Auth.CitizenID, ls.Attempt.ClientID, "denied", nil)
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The citizen denied the request."))
		return
	}
	con, err := az.currentConsent(ctx, ls)
	if err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	granted := signInScopes(ar.GetRequestedScopes())
	for _, s := range granted {
		if !slices.Contains(con.Scopes, s) {
			con.Scopes = append(con.Scopes, s)
		}
	}
	if err := az.consents.Put(ctx, con); err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	az.events.record(ctx, "citizen:"+con.CitizenID, "oidc.consent", con.CitizenID, con.ClientID, "ok",
		map[string]string{"scopes": strings.Join(granted, " "), "at": con.UpdatedAt.UTC().Format(time.RFC3339)})
	// The separate claims consent comes after, never on the same page.
	if _, identity, err := az.consentNeeded(ctx, ar.GetClient().(*storage.Client).Client, con.CitizenID, ar.GetRequestedScopes(), ls.Form); err != nil {
		az.f.WriteAuthorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	} else if len(identity) > 0 {
		http.Redirect(w, r, az.prefix+PathClaims, http.StatusSeeOther)
		return
	}
	az.finish(w, r, ar, ls)
}

// currentConsent is the stored consent of the login's citizen for its
// client, or a new one.
func (az *authorizer) currentConsent(ctx context.Context, ls *loginState) (*store.Consent, error) {
	now := az.now().UTC()
	con := &store.Consent{CitizenID: ls.Auth.CitizenID, ClientID: ls.Attempt.ClientID, GrantedAt: now}
	old, err := az.consents.Get(ctx, con.CitizenID, con.ClientID)
	switch {
	case err == nil:
		con.Scopes, con.Claims, con.GrantedAt, con.ClaimsGrantedAt = old.Scopes, old.Claims, old.GrantedAt, old.ClaimsGrantedAt
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	con.UpdatedAt = now
	return con, nil
}
