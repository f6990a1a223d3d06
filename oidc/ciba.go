package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// Client-Initiated Backchannel Authentication (OpenID Connect CIBA Core
// 1.0, poll mode): a client that knows who is in front of it (a vehicle
// office desk) asks for that citizen's login; the citizen sees the request
// with its binding message in their signed-in TrustID session and approves
// or denies it; the client polls the token endpoint for the tokens.

const (
	// GrantCIBA is the CIBA grant type of the token endpoint.
	GrantCIBA = "urn:openid:params:grant-type:ciba"
	// PathBackchannel is the backchannel authentication endpoint.
	PathBackchannel = "/oauth2/bc-authorize"
	// PathBackchannelPending lists the signed-in citizen's pending requests (GET, JSON).
	PathBackchannelPending = "/oauth2/bc/pending"
	// PathBackchannelDecision takes the citizen's decision (POST form id, decision=approve|deny).
	PathBackchannelDecision = "/oauth2/bc/decision"

	cibaDefaultExpiry = 5 * time.Minute
	cibaMaxExpiry     = 10 * time.Minute
	cibaInterval      = 5 * time.Second
	cibaMaxBinding    = 64 // characters of binding_message
	cibaRecent        = 10 // pending requests a citizen sees
	// cibaPerClientMinute bounds a client's requests: each one reaches a
	// citizen's account page, and unknown_user_id answers whether an ID
	// number is registered.
	cibaPerClientMinute = 30
	// cibaMaxAuthAge is how recent the session's sign-in must be to approve:
	// an unattended browser signed in hours ago must not approve a desk.
	cibaMaxAuthAge = 15 * time.Minute
)

// cibaRequest is one backchannel authentication request.
type cibaRequest struct {
	ID             string          `json:"id"` // shown to the citizen; not the auth_req_id
	ClientID       string          `json:"client_id"`
	ClientName     string          `json:"client_name"`
	CitizenID      string          `json:"citizen_id"`
	Scopes         []string        `json:"scopes"`
	MinACR         string          `json:"min_acr,omitempty"`
	BindingMessage string          `json:"binding_message,omitempty"`
	Status         string          `json:"status"` // pending, approved, denied
	Auth           *Authentication `json:"auth,omitempty"`
	RequestedAt    time.Time       `json:"requested_at"`
	ExpiresAt      time.Time       `json:"expires_at"`
}

func cibaKey(authReqID string) string { return hashKey("oidc:ciba:", authReqID) }

// ciba is the CIBA component: the backchannel authentication endpoint,
// the account page's list and decision, and the token grant (cibaGrant).
// It holds only what it uses; New builds it and the provider's handler
// mounts its endpoints.
type ciba struct {
	eph      cibaEphemeral
	citizens cibaCitizens
	// consents records the plaintext claims a citizen releases by
	// approving a request that asks for them.
	consents authorizeConsents
	events   events
	now      func() time.Time
	origin   string // the provider's own Origin (scheme://host[:port])

	accessTokenTTL time.Duration
	idTokenTTL     time.Duration

	// Hooks of the provider's other concerns.
	// authenticateClient is fosite's client authentication (the
	// backchannel endpoint authenticates outside fosite's own endpoints);
	// set once fosite is composed.
	authenticateClient func(context.Context, *http.Request, url.Values) (fosite.Client, error)
	// writeOAuthError is the provider's one OAuth error writer.
	writeOAuthError func(context.Context, http.ResponseWriter, error)
	// session returns the browser session of the request, or nil.
	session func(*http.Request) (*browserSession, error)
	// subject is the subject identifier a client sees for a citizen.
	subject func(*store.Client, string) string
}

// backchannel is the backchannel authentication endpoint (CIBA 7); its
// errors are CIBA 13's, in RFC 6749 form.
func (c *ciba) backchannel(w http.ResponseWriter, r *http.Request) {
	if err := c.backchannelAuthenticate(w, r); err != nil {
		c.writeOAuthError(r.Context(), w, err)
	}
}

func (c *ciba) backchannelAuthenticate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		return err
	}
	fc, err := c.authenticateClient(ctx, r, r.PostForm)
	if err != nil {
		if httperr.IsUnavailable(err) { // a fault is not a verdict
			return fosite.ErrTemporarilyUnavailable.WithWrap(err)
		}
		if clientRefusal(err) { // limited (429) or malformed credentials
			return err
		}
		return oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	client, ok := fc.(*storage.Client)
	if !ok || fc.IsPublic() || !slices.Contains(fc.GetGrantTypes(), GrantCIBA) {
		return oauthErr(http.StatusBadRequest, "unauthorized_client", "the client may not use CIBA")
	}
	ok, retry, err := c.eph.Allow(ctx, "oidc:ciba:client:"+client.ID, cibaPerClientMinute, time.Minute)
	if err != nil {
		return fmt.Errorf("oidc: ciba rate limit: %w", err)
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		return oauthErr(http.StatusTooManyRequests, "slow_down", fmt.Sprintf("at most %d requests per minute", cibaPerClientMinute))
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if !slices.Contains(scopes, ScopeOpenID) {
		return oauthErr(http.StatusBadRequest, "invalid_scope", "scope must include openid")
	}
	for _, s := range scopes {
		if !slices.Contains(client.Scopes, s) || s == ScopeOffline {
			return oauthErr(http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is not allowed", s))
		}
	}
	hints := 0
	for _, h := range []string{"login_hint", "login_hint_token", "id_token_hint"} {
		if r.PostForm.Get(h) != "" {
			hints++
		}
	}
	if hints != 1 || r.PostForm.Get("login_hint") == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "exactly one hint is required, and only login_hint (the citizen's ID number) is supported")
	}
	binding := r.PostForm.Get("binding_message")
	if utf8.RuneCountInString(binding) > cibaMaxBinding {
		return oauthErr(http.StatusBadRequest, "invalid_binding_message", fmt.Sprintf("binding_message is longer than %d characters", cibaMaxBinding))
	}
	var minACR string
	for _, a := range strings.Fields(r.PostForm.Get("acr_values")) {
		if acrRank(a) < 0 {
			return oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown acr value %q", a))
		}
		if minACR == "" || acrRank(a) < acrRank(minACR) {
			minACR = a
		}
	}
	expiry := cibaDefaultExpiry
	if v := r.PostForm.Get("requested_expiry"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || time.Duration(n)*time.Second > cibaMaxExpiry {
			return oauthErr(http.StatusBadRequest, "invalid_request", fmt.Sprintf("requested_expiry must be 1..%d seconds", int(cibaMaxExpiry.Seconds())))
		}
		expiry = time.Duration(n) * time.Second
	}
	cit, err := c.citizens.GetByIDNumber(ctx, r.PostForm.Get("login_hint"))
	if errors.Is(err, store.ErrNotFound) {
		return oauthErr(http.StatusBadRequest, "unknown_user_id", "no citizen has this ID number")
	}
	if err != nil {
		return fmt.Errorf("oidc: ciba citizen: %w", err)
	}
	now := c.now().UTC()
	authReqID, req := randomID(), &cibaRequest{
		ID: randomID()[:22], ClientID: client.ID, ClientName: client.Name, CitizenID: cit.ID, Scopes: scopes,
		MinACR: minACR, BindingMessage: binding, Status: "pending", RequestedAt: now, ExpiresAt: now.Add(expiry),
	}
	// The record outlives its expiry by a minute so a late poll learns
	// expired_token rather than invalid_grant.
	if err := putJSON(ctx, c.eph, cibaKey(authReqID), req, expiry+time.Minute); err != nil {
		return fmt.Errorf("oidc: ciba save: %w", err)
	}
	// The citizen's list: numbered slots, so concurrent requests never
	// overwrite each other.
	n, err := c.eph.Incr(ctx, "oidc:ciba:n:"+cit.ID, 1, cibaMaxExpiry+time.Minute)
	if err == nil {
		err = c.eph.Set(ctx, fmt.Sprintf("oidc:ciba:slot:%s:%d", cit.ID, n), []byte(authReqID), expiry+time.Minute)
	}
	if err != nil {
		return fmt.Errorf("oidc: ciba slot: %w", err)
	}
	c.events.record(ctx, "client:"+client.ID, "oidc.ciba.request", cit.ID, client.ID, "ok", nil)
	_ = httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": authReqID, "expires_in": int(expiry.Seconds()), "interval": int(cibaInterval.Seconds()),
	})
	return nil
}

// pendingFor returns the citizen's recent requests with their auth_req_ids.
func (c *ciba) pendingFor(ctx context.Context, citizenID string) (map[string]*cibaRequest, error) {
	b, err := c.eph.Get(ctx, "oidc:ciba:n:"+citizenID)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(string(b))
	out := map[string]*cibaRequest{}
	for i := n; i > 0 && i > n-cibaRecent; i-- {
		id, err := c.eph.Get(ctx, fmt.Sprintf("oidc:ciba:slot:%s:%d", citizenID, i))
		if errors.Is(err, ephemeral.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var req cibaRequest
		if err := getJSON(ctx, c.eph, cibaKey(string(id)), &req); err != nil {
			continue // taken or expired
		}
		if req.CitizenID == citizenID && req.Status == "pending" && c.now().Before(req.ExpiresAt) {
			out[string(id)] = &req
		}
	}
	return out, nil
}

// errLoginRequired answers the account page's calls without a session.
var errLoginRequired = httperr.New(http.StatusUnauthorized, "login_required", "sign in first")

// backchannelPending lists the signed-in citizen's pending requests (a
// JSON API of the account page).
func (c *ciba) backchannelPending(w http.ResponseWriter, r *http.Request) error {
	s, err := c.session(r)
	if err != nil {
		return httperr.Unavailable(err)
	}
	if s == nil {
		return errLoginRequired
	}
	reqs, err := c.pendingFor(r.Context(), s.Auth.CitizenID)
	if err != nil {
		return fmt.Errorf("oidc: ciba pending: %w", err)
	}
	type view struct {
		ID             string    `json:"id"`
		Client         string    `json:"client"`
		Scopes         []string  `json:"scopes"`
		BindingMessage string    `json:"binding_message,omitempty"`
		ExpiresAt      time.Time `json:"expires_at"`
	}
	list := []view{}
	for _, q := range reqs {
		list = append(list, view{q.ID, q.ClientName, q.Scopes, q.BindingMessage, q.ExpiresAt})
	}
	slices.SortFunc(list, func(a, b view) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{"pending": list})
}

// backchannelDecision approves or denies one of the citizen's requests (a
// JSON API of the account page). The session cookie is SameSite=Lax, so
// another site cannot post it.
func (c *ciba) backchannelDecision(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s, err := c.session(r)
	if err != nil {
		return httperr.Unavailable(err)
	}
	if s == nil {
		return errLoginRequired
	}
	// Defence in depth beside the SameSite=Lax cookie: a browser's Origin,
	// when sent, must be the provider's own.
	if o := r.Header.Get("Origin"); o != "" && o != c.origin {
		return httperr.New(http.StatusForbidden, "cross_origin", "the request comes from another site")
	}
	if err := r.ParseForm(); err != nil {
		return httperr.InvalidRequest("the form could not be read").WithCause(err)
	}
	decision := r.PostForm.Get("decision")
	if decision != "approve" && decision != "deny" {
		return httperr.InvalidRequest("decision must be approve or deny")
	}
	reqs, err := c.pendingFor(ctx, s.Auth.CitizenID)
	if err != nil {
		return fmt.Errorf("oidc: ciba pending: %w", err)
	}
	for authReqID, q := range reqs {
		if q.ID != r.PostForm.Get("id") {
			continue
		}
		if decision == "approve" && c.now().Sub(s.Auth.AuthTime) > cibaMaxAuthAge {
			return httperr.New(http.StatusForbidden, "fresh_login_required",
				"sign in again to approve: the last sign-in is older than "+cibaMaxAuthAge.String())
		}
		if decision == "approve" && q.MinACR != "" && acrRank(s.Auth.ACR) < acrRank(q.MinACR) {
			return httperr.New(http.StatusForbidden, "login_required",
				"this request needs a stronger sign-in ("+q.MinACR+"); sign in again first")
		}
		q.Status = "denied"
		if decision == "approve" {
			auth := s.Auth
			q.Status, q.Auth = "approved", &auth
		}
		if decision == "approve" {
			if err := c.consentClaims(ctx, s.Auth.CitizenID, q); err != nil {
				return fmt.Errorf("oidc: ciba decision: %w", err)
			}
		}
		if err := putJSON(ctx, c.eph, cibaKey(authReqID), q, time.Until(q.ExpiresAt)+time.Minute); err != nil {
			return fmt.Errorf("oidc: ciba decision: %w", err)
		}
		c.events.record(ctx, "citizen:"+s.Auth.CitizenID, "oidc.ciba."+decision, s.Auth.CitizenID, q.ClientID, "ok", nil)
		return httperr.WriteJSON(w, http.StatusOK, map[string]string{"status": q.Status})
	}
	return httperr.NotFound("no such pending request")
}

// consentClaims records the approval of a request that asks for plaintext
// claims as the citizen's claims consent for that client: the approval is
// its own step (the citizen is already signed in, and the account page
// lists the client and what it asks), and the claims are released, like
// every others, only while the consent stands.
func (c *ciba) consentClaims(ctx context.Context, citizenID string, q *cibaRequest) error {
	asked := requestedClaims(q.Scopes)
	if len(asked) == 0 {
		return nil
	}
	now := c.now().UTC()
	con, err := c.consents.Get(ctx, citizenID, q.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		con = &store.Consent{CitizenID: citizenID, ClientID: q.ClientID, GrantedAt: now}
	case err != nil:
		return err
	}
	for _, a := range asked {
		if !slices.Contains(con.Claims, a) {
			con.Claims = append(con.Claims, a)
		}
	}
	for _, s := range q.Scopes {
		if identityScope(s) && !slices.Contains(con.Scopes, s) {
			con.Scopes = append(con.Scopes, s)
		}
	}
	con.ClaimsGrantedAt, con.UpdatedAt = now, now
	if err := c.consents.Put(ctx, con); err != nil {
		return err
	}
	c.events.record(ctx, "citizen:"+citizenID, "oidc.consent.claims", citizenID, q.ClientID, "ok", map[string]string{
		"claims": strings.Join(asked, " "), "at": now.Format(time.RFC3339), "via": "backchannel"})
	return nil
}

// cibaGrant is the token endpoint handler of the CIBA grant (poll mode).
type cibaGrant struct {
	c      *ciba
	tokens *oauth2.HandleHelper
	ids    *openid.IDTokenHandleHelper
}

var _ fosite.TokenEndpointHandler = (*cibaGrant)(nil)

func cibaErr(code, desc string) error { return oauthErr(http.StatusBadRequest, code, desc) }

func (g *cibaGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (g *cibaGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(GrantCIBA)
}

// HandleTokenEndpointRequest answers a poll: pending, slow_down, denied,
// expired, or (once) the approved authentication in the session.
func (g *cibaGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	c := g.c
	if !r.GetClient().GetGrantTypes().Has(GrantCIBA) {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use CIBA.")
	}
	id := r.GetRequestForm().Get("auth_req_id")
	if id == "" {
		return fosite.ErrInvalidRequest.WithHint("auth_req_id is required.")
	}
	key := cibaKey(id)
	var q cibaRequest
	if err := getJSON(ctx, c.eph, key, &q); err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return fosite.ErrInvalidGrant.WithHint("Unknown auth_req_id.")
		}
		return fosite.ErrServerError.WithWrap(err)
	}
	switch {
	case q.ClientID != r.GetClient().GetID():
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id was issued to another client.")
	case !c.now().Before(q.ExpiresAt):
		return cibaErr("expired_token", "The auth_req_id has expired.")
	case q.Status == "denied":
		_ = c.eph.Delete(ctx, key)
		return cibaErr("access_denied", "The citizen denied the request.")
	}
	fresh, err := c.eph.SetNX(ctx, key+":poll", []byte{1}, cibaInterval)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if q.Status == "pending" {
		if !fresh {
			return cibaErr("slow_down", "Poll at most every "+cibaInterval.String()+".")
		}
		return cibaErr("authorization_pending", "The citizen has not answered yet.")
	}
	// Approved: the tokens are issued once.
	b, err := c.eph.Take(ctx, key)
	if err != nil || q.Auth == nil {
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id was already used.")
	}
	if err := json.Unmarshal(b, &q); err != nil || q.Auth == nil {
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id was already used.")
	}
	client, ok := r.GetClient().(*storage.Client)
	sess, ok2 := r.GetSession().(*Session)
	if !ok || !ok2 {
		return fosite.ErrServerError
	}
	for _, s := range q.Scopes {
		r.GrantScope(s)
	}
	sub := c.subject(client.Client, q.CitizenID)
	sess.CitizenID, sess.Subject = q.CitizenID, sub
	claims := sess.Claims
	claims.Subject, claims.RequestedAt = sub, q.RequestedAt
	claims.AuthTime = q.Auth.AuthTime.UTC().Truncate(time.Second)
	claims.AuthenticationContextClassReference, claims.AuthenticationMethodsReferences = q.Auth.ACR, q.Auth.AMR
	// The identity claims are added by the ID token strategy from the live consent.
	sess.SetExpiresAt(fosite.AccessToken, c.now().UTC().Add(c.accessTokenTTL))
	c.events.record(ctx, "client:"+client.ID, "oidc.ciba.token", q.CitizenID, client.ID, "ok", map[string]string{"acr": q.Auth.ACR})
	return nil
}

// PopulateTokenEndpointResponse issues the access token and ID token.
func (g *cibaGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if _, err := g.tokens.IssueAccessToken(ctx, g.c.accessTokenTTL, r, resp); err != nil {
		return err
	}
	return g.ids.IssueExplicitIDToken(ctx, g.c.idTokenTTL, r, resp)
}
