package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/ephemeral"
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

// backchannel is the backchannel authentication endpoint (CIBA 7).
func (p *Provider) backchannel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusBadRequest, "invalid_request", "the form could not be read")
		return
	}
	fc, err := p.authenticateClient(ctx, r, r.PostForm)
	if err != nil {
		jsonError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	client, ok := fc.(*storage.Client)
	if !ok || fc.IsPublic() || !slices.Contains(fc.GetGrantTypes(), GrantCIBA) {
		jsonError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use CIBA")
		return
	}
	ok, retry, err := p.eph.Allow(ctx, "oidc:ciba:client:"+client.ID, cibaPerClientMinute, time.Minute)
	if err != nil {
		p.log.Error("oidc: ciba rate limit", "err", err)
		jsonError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		jsonError(w, http.StatusTooManyRequests, "slow_down", fmt.Sprintf("at most %d requests per minute", cibaPerClientMinute))
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if !slices.Contains(scopes, ScopeOpenID) {
		jsonError(w, http.StatusBadRequest, "invalid_scope", "scope must include openid")
		return
	}
	for _, s := range scopes {
		if !slices.Contains(client.Scopes, s) || s == ScopeOffline {
			jsonError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is not allowed", s))
			return
		}
	}
	hints := 0
	for _, h := range []string{"login_hint", "login_hint_token", "id_token_hint"} {
		if r.PostForm.Get(h) != "" {
			hints++
		}
	}
	if hints != 1 || r.PostForm.Get("login_hint") == "" {
		jsonError(w, http.StatusBadRequest, "invalid_request", "exactly one hint is required, and only login_hint (the citizen's ID number) is supported")
		return
	}
	binding := r.PostForm.Get("binding_message")
	if utf8.RuneCountInString(binding) > cibaMaxBinding {
		jsonError(w, http.StatusBadRequest, "invalid_binding_message", fmt.Sprintf("binding_message is longer than %d characters", cibaMaxBinding))
		return
	}
	var minACR string
	for _, a := range strings.Fields(r.PostForm.Get("acr_values")) {
		if acrRank(a) < 0 {
			jsonError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown acr value %q", a))
			return
		}
		if minACR == "" || acrRank(a) < acrRank(minACR) {
			minACR = a
		}
	}
	expiry := cibaDefaultExpiry
	if v := r.PostForm.Get("requested_expiry"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || time.Duration(n)*time.Second > cibaMaxExpiry {
			jsonError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("requested_expiry must be 1..%d seconds", int(cibaMaxExpiry.Seconds())))
			return
		}
		expiry = time.Duration(n) * time.Second
	}
	cit, err := p.st.Citizens().GetByIDNumber(ctx, r.PostForm.Get("login_hint"))
	if errors.Is(err, store.ErrNotFound) {
		jsonError(w, http.StatusBadRequest, "unknown_user_id", "no citizen has this ID number")
		return
	}
	if err != nil {
		p.log.Error("oidc: ciba citizen", "err", err)
		jsonError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	now := p.now().UTC()
	authReqID, req := randomID(), &cibaRequest{
		ID: randomID()[:22], ClientID: client.ID, ClientName: client.Name, CitizenID: cit.ID, Scopes: scopes,
		MinACR: minACR, BindingMessage: binding, Status: "pending", RequestedAt: now, ExpiresAt: now.Add(expiry),
	}
	// The record outlives its expiry by a minute so a late poll learns
	// expired_token rather than invalid_grant.
	if err := p.saveJSON(ctx, cibaKey(authReqID), req, expiry+time.Minute); err != nil {
		p.log.Error("oidc: ciba save", "err", err)
		jsonError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	// The citizen's list: numbered slots, so concurrent requests never
	// overwrite each other.
	n, err := p.eph.Incr(ctx, "oidc:ciba:n:"+cit.ID, 1, cibaMaxExpiry+time.Minute)
	if err == nil {
		err = p.eph.Set(ctx, fmt.Sprintf("oidc:ciba:slot:%s:%d", cit.ID, n), []byte(authReqID), expiry+time.Minute)
	}
	if err != nil {
		p.log.Error("oidc: ciba slot", "err", err)
		jsonError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	p.audit(ctx, "client:"+client.ID, "oidc.ciba.request", cit.ID, client.ID, "ok", nil)
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": authReqID, "expires_in": int(expiry.Seconds()), "interval": int(cibaInterval.Seconds()),
	})
}

// pendingFor returns the citizen's recent requests with their auth_req_ids.
func (p *Provider) pendingFor(ctx context.Context, citizenID string) (map[string]*cibaRequest, error) {
	b, err := p.eph.Get(ctx, "oidc:ciba:n:"+citizenID)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(string(b))
	out := map[string]*cibaRequest{}
	for i := n; i > 0 && i > n-cibaRecent; i-- {
		id, err := p.eph.Get(ctx, fmt.Sprintf("oidc:ciba:slot:%s:%d", citizenID, i))
		if errors.Is(err, ephemeral.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var req cibaRequest
		if err := p.loadJSON(ctx, cibaKey(string(id)), &req); err != nil {
			continue // taken or expired
		}
		if req.CitizenID == citizenID && req.Status == "pending" && p.now().Before(req.ExpiresAt) {
			out[string(id)] = &req
		}
	}
	return out, nil
}

// backchannelPending lists the signed-in citizen's pending requests.
func (p *Provider) backchannelPending(w http.ResponseWriter, r *http.Request) {
	s, _ := p.currentSession(r)
	if s == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_required"})
		return
	}
	reqs, err := p.pendingFor(r.Context(), s.Auth.CitizenID)
	if err != nil {
		p.log.Error("oidc: ciba pending", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
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
	writeJSON(w, http.StatusOK, map[string]any{"pending": list})
}

// backchannelDecision approves or denies one of the citizen's requests. The
// session cookie is SameSite=Lax, so another site cannot post it.
func (p *Provider) backchannelDecision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s, _ := p.currentSession(r)
	if s == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login_required"})
		return
	}
	// Defence in depth beside the SameSite=Lax cookie: a browser's Origin,
	// when sent, must be the provider's own.
	if o := r.Header.Get("Origin"); o != "" && o != p.origin {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross_origin"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	decision := r.PostForm.Get("decision")
	if decision != "approve" && decision != "deny" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "decision must be approve or deny"})
		return
	}
	reqs, err := p.pendingFor(ctx, s.Auth.CitizenID)
	if err != nil {
		p.log.Error("oidc: ciba pending", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	for authReqID, q := range reqs {
		if q.ID != r.PostForm.Get("id") {
			continue
		}
		if decision == "approve" && p.now().Sub(s.Auth.AuthTime) > cibaMaxAuthAge {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "fresh_login_required",
				"error_description": "sign in again to approve: the last sign-in is older than " + cibaMaxAuthAge.String()})
			return
		}
		if decision == "approve" && q.MinACR != "" && acrRank(s.Auth.ACR) < acrRank(q.MinACR) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "login_required",
				"error_description": "this request needs a stronger sign-in (" + q.MinACR + "); sign in again first"})
			return
		}
		q.Status = "denied"
		if decision == "approve" {
			auth := s.Auth
			q.Status, q.Auth = "approved", &auth
		}
		if err := p.saveJSON(ctx, cibaKey(authReqID), q, time.Until(q.ExpiresAt)+time.Minute); err != nil {
			p.log.Error("oidc: ciba decision", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		p.audit(ctx, "citizen:"+s.Auth.CitizenID, "oidc.ciba."+decision, s.Auth.CitizenID, q.ClientID, "ok", nil)
		writeJSON(w, http.StatusOK, map[string]string{"status": q.Status})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no such pending request"})
}

// cibaGrant is the token endpoint handler of the CIBA grant (poll mode).
type cibaGrant struct {
	p      *Provider
	tokens *oauth2.HandleHelper
	ids    *openid.IDTokenHandleHelper
}

var _ fosite.TokenEndpointHandler = (*cibaGrant)(nil)

func cibaErr(code, desc string) error {
	return &fosite.RFC6749Error{ErrorField: code, DescriptionField: desc, CodeField: http.StatusBadRequest}
}

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
	p := g.p
	if !r.GetClient().GetGrantTypes().Has(GrantCIBA) {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use CIBA.")
	}
	id := r.GetRequestForm().Get("auth_req_id")
	if id == "" {
		return fosite.ErrInvalidRequest.WithHint("auth_req_id is required.")
	}
	key := cibaKey(id)
	var q cibaRequest
	if err := p.loadJSON(ctx, key, &q); err != nil {
		if errors.Is(err, ephemeral.ErrNotFound) {
			return fosite.ErrInvalidGrant.WithHint("Unknown auth_req_id.")
		}
		return fosite.ErrServerError.WithWrap(err)
	}
	switch {
	case q.ClientID != r.GetClient().GetID():
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id was issued to another client.")
	case !p.now().Before(q.ExpiresAt):
		return cibaErr("expired_token", "The auth_req_id has expired.")
	case q.Status == "denied":
		_ = p.eph.Delete(ctx, key)
		return cibaErr("access_denied", "The citizen denied the request.")
	}
	fresh, err := p.eph.SetNX(ctx, key+":poll", []byte{1}, cibaInterval)
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
	b, err := p.eph.Take(ctx, key)
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
	sub := p.subject(client.Client, q.CitizenID)
	sess.CitizenID, sess.Subject = q.CitizenID, sub
	c := sess.Claims
	c.Subject, c.RequestedAt = sub, q.RequestedAt
	c.AuthTime = q.Auth.AuthTime.UTC().Truncate(time.Second)
	c.AuthenticationContextClassReference, c.AuthenticationMethodsReferences = q.Auth.ACR, q.Auth.AMR
	if slices.Contains(q.Scopes, ScopeProfile) {
		cit, err := p.st.Citizens().Get(ctx, q.CitizenID)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		c.Add("name", cit.Name)
	}
	sess.SetExpiresAt(fosite.AccessToken, p.now().UTC().Add(p.cfg.AccessTokenTTL))
	p.audit(ctx, "client:"+client.ID, "oidc.ciba.token", q.CitizenID, client.ID, "ok", map[string]string{"acr": q.Auth.ACR})
	return nil
}

// PopulateTokenEndpointResponse issues the access token and ID token.
func (g *cibaGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if _, err := g.tokens.IssueAccessToken(ctx, g.p.cfg.AccessTokenTTL, r, resp); err != nil {
		return err
	}
	return g.ids.IssueExplicitIDToken(ctx, g.p.cfg.IDTokenTTL, r, resp)
}
