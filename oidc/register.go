package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// PathRegister is the RFC 7591 dynamic client registration endpoint.
const PathRegister = "/oauth2/register"

// RegistrationPolicy enables RFC 7591 dynamic client registration and
// bounds what a self-registered client may get. Self-registered clients are
// never first-party (so they always get pairwise subjects) and never get
// the full ID number.
type RegistrationPolicy struct {
	// AllowedScopes a registered client may ask for (default openid, profile, offline_access).
	AllowedScopes []string
	// AllowConfidential lets clients register with a secret
	// (token_endpoint_auth_method client_secret_basic); otherwise only public clients.
	AllowConfidential bool
	// PerIPPerHour limits registrations per client address (default 10).
	PerIPPerHour int
}

func (p *RegistrationPolicy) defaults() {
	if len(p.AllowedScopes) == 0 {
		p.AllowedScopes = []string{ScopeOpenID, ScopeProfile, ScopeOffline}
	}
	if p.PerIPPerHour <= 0 {
		p.PerIPPerHour = 10
	}
}

// registrationRequest is the client metadata of RFC 7591 section 2 that TrustID accepts.
type registrationRequest struct {
	RedirectURIs            []string        `json:"redirect_uris"`
	ClientName              string          `json:"client_name"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	Scope                   string          `json:"scope"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri"`
	JWKS                    json.RawMessage `json:"jwks"`
	IDTokenAlg              string          `json:"id_token_signed_response_alg"`
}

// privateHost reports literal private, loopback or link-local addresses.
func privateHost(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// idTokenAlg is the alg that signs c's ID tokens when the provider's
// default is def.
func idTokenAlg(c *store.Client, def string) string {
	if c.IDTokenAlg != "" {
		return c.IDTokenAlg
	}
	return def
}

// registration is the RFC 7591 dynamic registration component: it holds
// its policy, its narrow storage (register_storage.go), the unaudited
// client administration (it records its own client.register event) and
// the provider's OAuth error writer.
type registration struct {
	policy          RegistrationPolicy
	limits          registrationLimits
	clients         *ClientAdmin
	events          events
	signingAlg      string // the provider's default ID token alg
	writeOAuthError func(context.Context, http.ResponseWriter, error)
}

// register implements RFC 7591 section 3 under the configured policy; its
// errors (section 3.2.2) are in RFC 6749 form.
func (g *registration) register(w http.ResponseWriter, r *http.Request) {
	if err := g.registerClient(w, r); err != nil {
		g.writeOAuthError(r.Context(), w, err)
	}
}

// errMetadata is RFC 7591's invalid_client_metadata.
func errMetadata(desc string) error {
	return oauthErr(http.StatusBadRequest, "invalid_client_metadata", desc)
}

func (g *registration) registerClient(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pol := &g.policy
	ok, _, err := g.limits.Allow(ctx, "oidc:register:"+clientIP(r), pol.PerIPPerHour, time.Hour)
	if err != nil {
		return fosite.ErrTemporarilyUnavailable.WithHint("Try again later.").WithWrap(fmt.Errorf("oidc: register rate limit: %w", err))
	}
	if !ok {
		return oauthErr(http.StatusTooManyRequests, "invalid_client_metadata", "too many registrations from this address")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var req registrationRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		return errMetadata("the body is not valid JSON client metadata")
	}
	if req.SectorIdentifierURI != "" {
		return errMetadata("sector_identifier_uri is not supported")
	}
	public := true
	switch req.TokenEndpointAuthMethod {
	case "", "none":
	case "client_secret_basic", "client_secret_post", "private_key_jwt":
		if !pol.AllowConfidential {
			return errMetadata("only public clients (token_endpoint_auth_method none) may register")
		}
		public = false
	default:
		return errMetadata("unsupported token_endpoint_auth_method")
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			return errMetadata("only response_type code is supported")
		}
	}
	if req.BackchannelLogoutURI != "" {
		// The provider itself calls this URI: a self-registered client must
		// not point it at the provider's own network (loopback, private).
		u, err := url.Parse(req.BackchannelLogoutURI)
		if err != nil || u.Scheme != "https" || fosite.IsLocalhost(u) || privateHost(u.Hostname()) {
			return errMetadata("backchannel_logout_uri must be a public https URL")
		}
	}
	scopes := strings.Fields(req.Scope)
	if len(scopes) == 0 {
		scopes = []string{ScopeOpenID}
	}
	for _, s := range scopes {
		// API permissions (identity:face_verify) are an operator's
		// decision, never self-service, whatever the policy lists.
		if !slices.Contains(pol.AllowedScopes, s) || slices.Contains(APIScopes, s) {
			return errMetadata(fmt.Sprintf("scope %q may not be registered", s))
		}
	}
	for _, g := range req.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return errMetadata(fmt.Sprintf("grant type %q may not be registered", g))
		}
	}
	spec := ClientSpec{Name: req.ClientName, RedirectURIs: req.RedirectURIs, PostLogoutURIs: req.PostLogoutRedirectURIs,
		BackchannelLogoutURI: req.BackchannelLogoutURI, Public: public, GrantTypes: req.GrantTypes, Scopes: scopes,
		IDTokenAlg: req.IDTokenAlg}
	if !public {
		spec.AuthMethod, spec.JWKS = req.TokenEndpointAuthMethod, req.JWKS
	} else if len(req.JWKS) > 0 {
		return errMetadata("jwks is only used with private_key_jwt")
	}
	c, secret, err := g.clients.Create(ctx, "", spec)
	if err != nil {
		code := "invalid_client_metadata"
		if errors.Is(err, ErrInvalidClient) && strings.Contains(err.Error(), "redirect URI") {
			code = "invalid_redirect_uri"
		}
		if !errors.Is(err, ErrInvalidClient) {
			return fmt.Errorf("oidc: register: %w", err)
		}
		return oauthErr(http.StatusBadRequest, code, invalidClientReason(err))
	}
	g.events.record(ctx, "system", "client.register", "", c.ID, "ok", map[string]string{"ip": clientIP(r)})
	method := storage.NewClient(c, nil).GetTokenEndpointAuthMethod()
	out := map[string]any{
		"client_id":                  c.ID,
		"client_id_issued_at":        c.CreatedAt.Unix(),
		"client_name":                c.Name,
		"redirect_uris":              c.RedirectURIs,
		"grant_types":                c.GrantTypes,
		"response_types":             []string{"code"},
		"scope":                      strings.Join(c.Scopes, " "),
		"token_endpoint_auth_method": method,
		"subject_type":               "pairwise",
		// RFC 7591 section 3.2.1: the registered metadata, defaults included.
		"id_token_signed_response_alg": idTokenAlg(c, g.signingAlg),
	}
	if len(c.PostLogoutURIs) > 0 {
		out["post_logout_redirect_uris"] = c.PostLogoutURIs
	}
	if c.JWKS != "" {
		out["jwks"] = json.RawMessage(c.JWKS)
	}
	if secret != "" {
		out["client_secret"] = secret
		out["client_secret_expires_at"] = 0
	}
	_ = httperr.WriteJSON(w, http.StatusCreated, out)
	return nil
}
