package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// maxFormBytes bounds request bodies of the OAuth endpoints.
const maxFormBytes = 64 << 10

// assertionAlgs are the JWS algs accepted for private_key_jwt assertions.
var assertionAlgs = []string{"ES256", "ES384", "RS256"}

// confidentialAuthMethods are AuthMethods without "none".
func confidentialAuthMethods() []string {
	return slices.DeleteFunc(slices.Clone(AuthMethods), func(m string) bool { return m == "none" })
}

func (p *Provider) routes() {
	m := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" "+p.prefix+path, fn)
	}
	h("GET "+PathDiscovery, p.serveStatic(func() staticDoc { return p.disco }))
	h("GET "+PathJWKS, p.serveStatic(p.ring.doc))
	h("GET "+PathAuth, p.authorizer.authorize)
	h("POST "+PathAuth, p.authorizer.authorize)
	h("GET "+PathResume, p.authorizer.resume)
	h("POST "+PathToken, p.tokens.token)
	h("POST "+PathPAR, p.tokens.par)
	h("POST "+PathIntrospect, p.tokens.introspect)
	h("POST "+PathRevoke, p.tokens.revoke)
	h("GET "+PathUserinfo, p.tokens.userinfo)
	h("POST "+PathUserinfo, p.tokens.userinfo)
	h("GET "+PathLogout, p.logout.serve)
	h("POST "+PathLogout, p.logout.serve)
	h("GET "+PathLogin, p.authorizer.loginPage)
	h("POST "+PathLogin+"/{method}/begin", p.authorizer.loginBegin)
	h("POST "+PathLogin+"/{method}/finish", p.authorizer.loginFinish)
	h("POST "+PathBackchannel, p.ciba.backchannel)
	h("GET "+PathBackchannelPending, p.jsonAPI(p.ciba.backchannelPending))
	h("POST "+PathBackchannelDecision, p.jsonAPI(p.ciba.backchannelDecision))
	h("GET "+PathConsent, p.authorizer.consentPage)
	h("POST "+PathConsent, p.authorizer.consentDecision)
	h("GET "+PathClaims, p.authorizer.claimsPage)
	h("POST "+PathClaims, p.authorizer.claimsDecision)
	if p.registration != nil {
		h("POST "+PathRegister, p.registration.register)
	}
	if a := p.admin; a != nil {
		h("GET "+PathAdmin, a.guard(a.list))
		h("POST "+PathAdmin, a.guard(a.create))
		h("GET "+PathAdmin+"/{id}", a.guard(a.get))
		h("PUT "+PathAdmin+"/{id}", a.guard(a.update))
		h("DELETE "+PathAdmin+"/{id}", a.guard(a.delete))
		h("POST "+PathAdmin+"/{id}/rotate-secret", a.guard(a.rotate))
	}
	p.mux = m
}

// serveStatic serves a precomputed JSON document with an ETag: discovery
// and JWKS are read by every relying party and must be cheap.
func (p *Provider) serveStatic(doc func() staticDoc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := doc()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("ETag", d.etag)
		if r.Header.Get("If-None-Match") == d.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(d.body)
	}
}

// staticDoc is a JSON document and its ETag.
type staticDoc struct {
	body []byte
	etag string
}

func newStaticDoc(b []byte) staticDoc {
	sum := sha256.Sum256(b)
	return staticDoc{body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

func (p *Provider) buildDiscovery() error {
	iss := p.cfg.Issuer
	d := map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + PathAuth,
		"token_endpoint":                                   iss + PathToken,
		"userinfo_endpoint":                                iss + PathUserinfo,
		"jwks_uri":                                         iss + PathJWKS,
		"introspection_endpoint":                           iss + PathIntrospect,
		"revocation_endpoint":                              iss + PathRevoke,
		"end_session_endpoint":                             iss + PathLogout,
		"pushed_authorization_request_endpoint":            iss + PathPAR,
		"scopes_supported":                                 KnownScopes,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            knownGrants,
		"backchannel_authentication_endpoint":              iss + PathBackchannel,
		"backchannel_token_delivery_modes_supported":       []string{"poll"},
		"backchannel_user_code_parameter_supported":        false,
		"subject_types_supported":                          []string{"pairwise", "public"},
		"id_token_signing_alg_values_supported":            idTokenAlgs(p.cfg.SigningAlg),
		"token_endpoint_auth_methods_supported":            AuthMethods,
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		// Introspection needs a confidential client; revocation also takes
		// a public client's own tokens (RFC 7009 section 5).
		"introspection_endpoint_auth_methods_supported":            confidentialAuthMethods(),
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"revocation_endpoint_auth_methods_supported":               AuthMethods,
		"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs,
		"code_challenge_methods_supported":                         []string{"S256"},
		"dpop_signing_alg_values_supported":                        DPoPAlgs,
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
			"name", "birthdate", "id_number", "verified_claims", "network_number"},
		"acr_values_supported": ACRLadder,
		// Not in OpenID Connect Discovery 1.0: the amr values (RFC 8176
		// where registered) this provider reports, so relying parties can
		// tell the liveness challenges apart.
		"amr_values_supported":                  AMRValues,
		"prompt_values_supported":               []string{"none", "login", "consent"},
		"claims_parameter_supported":            false,
		"request_parameter_supported":           false,
		"request_uri_parameter_supported":       false,
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
		"verified_claims_supported":             true,
		"trust_frameworks_supported":            []string{p.cfg.TrustFramework},
		"evidence_supported":                    []string{"electronic_record"},
		"claims_in_verified_claims_supported":   []string{"name", "birthdate", "id_number"},
		"require_pushed_authorization_requests": false,
	}
	if p.cfg.DynamicRegistration != nil {
		d["registration_endpoint"] = iss + PathRegister
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("oidc: discovery: %w", err)
	}
	p.disco = newStaticDoc(b)
	return nil
}

// idTokenAlgs lists the ID token algs, the provider's default first.
func idTokenAlgs(def string) []string {
	out := []string{def}
	for _, a := range SigningAlgs {
		if a != def {
			out = append(out, a)
		}
	}
	return out
}

// tokenEndpoints is the token concern: the token endpoint, PAR,
// introspection, revocation and userinfo, over fosite. It holds fosite,
// the DPoP checker and hooks of the provider's other concerns; New builds
// it once fosite is composed.
type tokenEndpoints struct {
	f      fosite.OAuth2Provider
	issuer string
	log    *slog.Logger
	dpop   *dpopChecker

	// authenticateClient is fosite's client authentication (introspection
	// authenticates the client itself).
	authenticateClient func(context.Context, *http.Request, url.Values) (fosite.Client, error)
	// writeOAuthError is the provider's one OAuth error writer.
	writeOAuthError func(context.Context, http.ResponseWriter, error)
	// claims are the consented identity claims of a citizen (claims.go).
	claims func(ctx context.Context, c *store.Client, citizenID string, scopes []string, acr string, amr []string, authTime time.Time) (map[string]any, error)
}

// token is the token endpoint (RFC 6749 section 3.2).
func (t *tokenEndpoints) token(w http.ResponseWriter, r *http.Request) {
	// A retried refresh within the grace period is not a reuse (oidc/storage/grace.go).
	ctx := storage.WithRefreshGrace(r.Context())
	if err := readForm(w, r); err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	// RFC 6749 section 5.2: a grant type the server does not support is
	// unsupported_grant_type (fosite answers a bare invalid_request).
	if gt := r.PostForm.Get("grant_type"); gt != "" && !slices.Contains(knownGrants, gt) {
		t.writeOAuthError(ctx, w, fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", truncate(gt, 64)))
		return
	}
	sess := newSession()
	jkt, err := t.dpop.dpopProof(ctx, r, t.issuer+PathToken, "")
	if err != nil {
		t.writeDPoPError(ctx, w, err)
		return
	}
	// A code authorized with dpop_jkt is redeemed only with that key (RFC
	// 9449 section 10).
	if bound := t.dpop.codeBinding(ctx, r); bound != "" && bound != jkt {
		t.writeDPoPError(ctx, w, fmt.Errorf("%w: the code is bound to another key", errDPoP))
		return
	}
	ar, err := t.f.NewAccessRequest(ctx, r, sess)
	if err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	if s, ok := ar.GetSession().(*Session); ok {
		// A public client's refresh token stays bound to its first key
		// (RFC 9449 section 5); fosite's refresh check changed nothing yet.
		if ar.GetGrantTypes().ExactOne("refresh_token") && ar.GetClient().IsPublic() && s.DPoPJKT != "" && s.DPoPJKT != jkt {
			t.writeDPoPError(ctx, w, fmt.Errorf("%w: the refresh token is bound to another key", errDPoP))
			return
		}
		s.DPoPJKT = jkt
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// fosite checked each requested scope against the client; machine
		// clients act for themselves, so the subject is the client.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		sess.Subject = ar.GetClient().GetID()
	}
	resp, err := t.f.NewAccessResponse(ctx, ar)
	if err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	if jkt != "" {
		resp.SetTokenType("DPoP")
	}
	writeAccessResponse(w, resp)
}

// writeAccessResponse writes a successful token response (RFC 6749
// section 5.1) byte for byte as fosite's WriteAccessResponse does, headers
// included, with the JSON written by appendClaimsJSON instead of
// encoding/json's reflection over the response map
// (TestWriteAccessResponseAsFosite).
func writeAccessResponse(w http.ResponseWriter, resp fosite.AccessResponder) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	js, err := appendClaimsJSON(make([]byte, 0, 2048), resp.ToMap())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(js)
}

// writeDPoPError answers a rejected proof: invalid_dpop_proof (RFC 9449
// section 5), or a server error (503 when the replay cache is down).
func (t *tokenEndpoints) writeDPoPError(ctx context.Context, w http.ResponseWriter, err error) {
	if errors.Is(err, errDPoP) {
		err = oauthErr(http.StatusBadRequest, "invalid_dpop_proof", err.Error())
	}
	t.writeOAuthError(ctx, w, err)
}

// par is the pushed authorization request endpoint (RFC 9126). A body
// that is not a form, or lacks response_type, is invalid_request (RFC 9126
// section 2.3; fosite calls a missing response_type unsupported).
func (t *tokenEndpoints) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	if len(r.PostForm) == 0 || r.PostForm.Get("response_type") == "" {
		t.writeOAuthError(ctx, w, fosite.ErrInvalidRequest.WithHint("The body must be a form with the authorization request's parameters, response_type included."))
		return
	}
	ar, err := t.f.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		if clientRefusal(err) {
			t.writeOAuthError(ctx, w, err)
			return
		}
		t.f.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := t.f.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		t.f.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	t.f.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// clientRefusal reports an error of client authentication that is not
// fosite's to write: a limited client (429), malformed credentials or a
// dependency's fault (fosite's PAR, introspection and revocation writers
// would call them invalid_client or, for revocation, success).
func clientRefusal(err error) bool {
	return errors.Is(err, clientauth.ErrLimited) || errors.Is(err, clientauth.ErrMalformed) || httperr.IsUnavailable(err)
}

// introspect is RFC 7662 token introspection. The caller authenticates as
// a confidential client with the method it is registered with (RFC 7662
// section 2.1; fosite v0.49's introspection takes only HTTP Basic, so the
// provider authenticates the client itself), or with an access token as a
// bearer token (fosite's path).
func (t *tokenEndpoints) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	if fosite.AccessTokenFromRequest(r) != "" {
		ir, err := t.f.NewIntrospectionRequest(ctx, r, newSession())
		if err != nil {
			t.writeIntrospectionError(ctx, w, err)
			return
		}
		t.f.WriteIntrospectionResponse(ctx, w, ir)
		return
	}
	if len(r.PostForm) == 0 {
		t.writeOAuthError(ctx, w, fosite.ErrInvalidRequest.WithHint("The POST body can not be empty."))
		return
	}
	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == "" {
		// RFC 7662 section 2.1: the endpoint requires authorization (401).
		t.writeOAuthError(ctx, w, fosite.ErrInvalidClient.WithHint("Client authentication is required."))
		return
	}
	c, err := t.authenticateClient(ctx, r, r.PostForm)
	if err == nil && c.IsPublic() {
		err = fosite.ErrInvalidClient.WithHint("A public client cannot introspect tokens.")
	}
	if err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	f := r.PostForm
	tu, ar, err := t.f.IntrospectToken(ctx, f.Get("token"), fosite.TokenUse(f.Get("token_type_hint")), newSession(),
		fosite.RemoveEmpty(strings.Split(f.Get("scope"), " "))...)
	if err != nil {
		t.writeIntrospectionError(ctx, w, fosite.ErrInactiveToken.WithWrap(err))
		return
	}
	ir := &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: tu}
	if tu == fosite.AccessToken {
		ir.AccessTokenType = fosite.BearerAccessToken
	}
	t.f.WriteIntrospectionResponse(ctx, w, ir)
}

// writeIntrospectionError answers an inactive token {"active":false}
// (fosite's writer) unless a fault or a limit caused the error: a store
// that cannot answer does not make a token inactive.
func (t *tokenEndpoints) writeIntrospectionError(ctx context.Context, w http.ResponseWriter, err error) {
	if clientRefusal(err) {
		t.writeOAuthError(ctx, w, err)
		return
	}
	t.f.WriteIntrospectionError(ctx, w, err)
}

// revoke is RFC 7009 token revocation. A storage failure is 503
// temporarily_unavailable with Retry-After (RFC 7009 section 2.2.1), never
// the 200 of fosite's WriteRevocationResponse, which writes every error but
// invalid_request and invalid_client as success: the client must retry,
// since the token may still be valid. A limited client gets 429.
func (t *tokenEndpoints) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		t.writeOAuthError(ctx, w, err)
		return
	}
	err := t.f.NewRevocationRequest(ctx, r)
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) || errors.Is(err, fosite.ErrServerError) || httperr.IsUnavailable(err) {
		t.log.Error("oidc: revoke", "err", err)
		w.Header().Set("Retry-After", retryAfter)
		t.f.WriteAccessError(ctx, w, nil, fosite.ErrTemporarilyUnavailable.WithHint("The token could not be revoked now; retry."))
		return
	}
	if clientRefusal(err) {
		t.writeOAuthError(ctx, w, err)
		return
	}
	t.f.WriteRevocationResponse(ctx, w, err)
}

// readForm reads an OAuth endpoint's form body (RFC 6749 section 3.2)
// under maxFormBytes. A larger body is 413 with invalid_request (RFC 6749
// has no code for it; the request is malformed for this server), an
// unreadable one 400 invalid_request. fosite parses with
// ParseMultipartForm, which drops a form's parse error (a body cut by the
// size limit then reads as empty), so the form is parsed here first.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return oauthErr(http.StatusRequestEntityTooLarge, fosite.ErrInvalidRequest.ErrorField,
				fmt.Sprintf("The request body is larger than %d bytes.", maxFormBytes)).WithWrap(err)
		}
		return oauthErr(http.StatusBadRequest, fosite.ErrInvalidRequest.ErrorField, "The request body is not a valid form.").WithWrap(err)
	}
	return nil
}

// truncate cuts s to at most n bytes for an error description.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// userinfo is OpenID Connect Core 5.3: the consented claims of the token's
// citizen, read live from the store.
func (t *tokenEndpoints) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, scheme := accessTokenAndScheme(r)
	if tok == "" || (scheme != "bearer" && scheme != "dpop") {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", DPoP algs="`+strings.Join(DPoPAlgs, " ")+`"`)
		t.writeOAuthError(ctx, w, fosite.ErrRequestUnauthorized.WithHint("A bearer or DPoP access token is required."))
		return
	}
	sess := newSession()
	_, ar, err := t.f.IntrospectToken(ctx, tok, fosite.AccessToken, sess, ScopeOpenID)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		t.writeOAuthError(ctx, w, fosite.ErrRequestUnauthorized.WithWrap(err).WithHint("The access token is not valid."))
		return
	}
	sess, _ = ar.GetSession().(*Session)
	if sess != nil && (sess.DPoPJKT != "" || scheme == "dpop") {
		// A bound token needs the DPoP scheme and a proof by its key; the
		// DPoP scheme with a bearer token is refused too (RFC 9449 7.1).
		jkt, err := t.dpop.dpopProof(ctx, r, t.issuer+PathUserinfo, tok)
		if err == nil && (scheme != "dpop" || jkt == "" || jkt != sess.DPoPJKT) {
			err = fmt.Errorf("%w: the token is not bound to this proof's key", errDPoP)
		}
		if err != nil {
			if !errors.Is(err, errDPoP) {
				t.writeOAuthError(ctx, w, fmt.Errorf("oidc: dpop: %w", err))
				return
			}
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", algs="`+strings.Join(DPoPAlgs, " ")+`"`)
			t.writeOAuthError(ctx, w, fosite.ErrRequestUnauthorized.WithHint(err.Error()))
			return
		}
	}
	client, ok := ar.GetClient().(*storage.Client)
	if sess == nil || !ok || sess.CitizenID == "" {
		t.writeOAuthError(ctx, w, fosite.ErrRequestUnauthorized.WithHint("The token was not issued to a citizen."))
		return
	}
	claims, err := t.claims(ctx, client.Client, sess.CitizenID, ar.GetGrantedScopes(), sess.Claims.AuthenticationContextClassReference,
		sess.Claims.AuthenticationMethodsReferences, sess.Claims.AuthTime)
	if err != nil {
		t.writeOAuthError(ctx, w, fmt.Errorf("oidc: userinfo claims: %w", err))
		return
	}
	claims["sub"] = sess.Claims.Subject
	_ = httperr.WriteJSON(w, http.StatusOK, claims)
}
