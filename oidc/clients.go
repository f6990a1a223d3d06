package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
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

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// ErrInvalidClient wraps every problem found in a ClientSpec.
var ErrInvalidClient = errors.New("oidc: invalid client")

// ClientSpec is what an operator sets on a client.
type ClientSpec struct {
	Name                 string   `json:"name"`
	RedirectURIs         []string `json:"redirect_uris,omitempty"`
	PostLogoutURIs       []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI string   `json:"backchannel_logout_uri,omitempty"`
	Public               bool     `json:"public,omitempty"`
	FirstParty           bool     `json:"first_party,omitempty"`
	GrantTypes           []string `json:"grant_types,omitempty"`
	Scopes               []string `json:"scopes,omitempty"`
	Claims               []string `json:"claims,omitempty"`
	SectorIdentifier     string   `json:"sector_identifier,omitempty"`
	Role                 string   `json:"role,omitempty"`
	// AuthMethod is token_endpoint_auth_method: client_secret_basic (the
	// default), client_secret_post or private_key_jwt; none for public clients.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS is the client's public key set, required for private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// IDTokenAlg signs the client's ID tokens: RS256 or ES256. Create
	// stores NewClientIDTokenAlg (ES256) when it is empty; Update keeps the
	// client's alg when it is empty. Only a client registered before
	// ES256 became the default (issue 21) has none stored, and its tokens
	// are signed with the provider's default (Config.SigningAlg).
	IDTokenAlg string `json:"id_token_signed_response_alg,omitempty"`
}

// NewClientIDTokenAlg is the id_token_signed_response_alg of a client
// registered without one (CLI, admin API, RFC 7591 registration): ES256,
// whose signature costs a few hundredths of RS256's, so a relying party
// that refreshes often does not make the token endpoint sign-bound. A
// client that needs RS256 asks for it. It is stored with the client, so
// changing Config.SigningAlg later never changes the alg of a client
// registered with this default.
const NewClientIDTokenAlg = AlgES256

// AuthMethods are the token endpoint authentication methods supported.
var AuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}

// SpecOf returns the spec of an existing client.
func SpecOf(c *store.Client) ClientSpec {
	return ClientSpec{Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutURIs: c.PostLogoutURIs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, Public: c.Public, FirstParty: c.FirstParty,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, Claims: c.Claims, SectorIdentifier: c.SectorIdentifier, Role: c.Role,
		AuthMethod: storage.NewClient(c, nil).GetTokenEndpointAuthMethod(), JWKS: jwksRaw(c.JWKS),
		IDTokenAlg: c.IDTokenAlg}
}

func jwksRaw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// knownGrants are the token endpoint's grant types (discovery's
// grant_types_supported); any other is unsupported_grant_type.
var knownGrants = []string{"authorization_code", "refresh_token", "client_credentials", GrantCIBA}

// normalise fills defaults and checks s, reporting every problem at once.
func (s *ClientSpec) normalise() error {
	var errs []error
	bad := func(f string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+f, append([]any{ErrInvalidClient}, a...)...))
	}
	if len(s.GrantTypes) == 0 {
		s.GrantTypes = []string{"authorization_code"}
		if slices.Contains(s.Scopes, ScopeOffline) {
			s.GrantTypes = append(s.GrantTypes, "refresh_token")
		}
	}
	if len(s.Scopes) == 0 && slices.Contains(s.GrantTypes, "authorization_code") {
		s.Scopes = []string{ScopeOpenID}
	}
	for _, g := range s.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			bad("unknown grant type %q", g)
		}
	}
	if s.Public && slices.Contains(s.GrantTypes, "client_credentials") {
		bad("a public client cannot use client_credentials")
	}
	if s.Public && slices.Contains(s.GrantTypes, GrantCIBA) {
		bad("a public client cannot use CIBA")
	}
	for _, sc := range s.Scopes {
		if !slices.Contains(KnownScopes, sc) && !slices.Contains(APIScopes, sc) {
			bad("unknown scope %q", sc)
		}
	}
	for _, c := range s.Claims {
		if c != ClaimIDNumber && c != ClaimNetworkNumber {
			bad("unknown claim permission %q", c)
		}
	}
	if slices.Contains(s.GrantTypes, "authorization_code") && len(s.RedirectURIs) == 0 {
		bad("authorization_code needs at least one redirect URI")
	}
	check := func(kind, raw string) {
		u, err := url.Parse(raw)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "":
			bad("%s %q is not an absolute URL", kind, raw)
		case u.Fragment != "":
			bad("%s %q has a fragment", kind, raw)
		case u.Scheme != "https" && !(u.Scheme == "http" && fosite.IsLocalhost(u)):
			bad("%s %q must be https (http only for loopback)", kind, raw)
		}
	}
	for _, u := range s.RedirectURIs {
		check("redirect URI", u)
	}
	for _, u := range s.PostLogoutURIs {
		check("post-logout redirect URI", u)
	}
	if s.BackchannelLogoutURI != "" {
		check("back-channel logout URI", s.BackchannelLogoutURI)
	}
	switch {
	case s.AuthMethod == "" || s.AuthMethod == "client_secret_basic":
		s.AuthMethod = ""
		if s.Public {
			s.AuthMethod = "none"
		}
	case !slices.Contains(AuthMethods, s.AuthMethod):
		bad("unknown token_endpoint_auth_method %q (supported: %s)", s.AuthMethod, strings.Join(AuthMethods, ", "))
	case (s.AuthMethod == "none") != s.Public:
		bad("token_endpoint_auth_method none is for public clients only, and public clients use none")
	}
	if s.AuthMethod == "private_key_jwt" {
		if _, err := storage.ParseJWKS(string(s.JWKS)); err != nil {
			bad("private_key_jwt needs jwks, a public key set: %v", err)
		}
	} else if len(s.JWKS) > 0 {
		bad("jwks is only used with private_key_jwt")
	}
	if s.AuthMethod == "none" {
		s.AuthMethod = ""
	}
	if s.IDTokenAlg != "" && !slices.Contains(SigningAlgs, s.IDTokenAlg) {
		bad("unsupported id_token_signed_response_alg %q (supported: %s)", s.IDTokenAlg, strings.Join(SigningAlgs, ", "))
	}
	return errors.Join(errs...)
}

// ClientAdmin registers, updates, rotates and deletes clients. Used by the
// admin HTTP API and by `trustid client`, both through Audited so every
// change is in the audit log.
type ClientAdmin struct {
	st       clientStorage
	hasher   *SecretHasher
	now      func() time.Time
	onChange func(id string)

	// rec, when set, records each change as actor (see Audited).
	rec    *audit.Recorder
	actor  string
	detail map[string]string
}

// Audited returns a copy of a that records every change it makes
// (client.create, client.update, client.rotate_secret, client.delete) in
// the audit log through rec, as actor (for example "operator:admin-api" or
// "operator:<name>"), with detail (for example which surface made it).
func (a *ClientAdmin) Audited(rec *audit.Recorder, actor string, detail map[string]string) *ClientAdmin {
	c := *a
	c.rec, c.actor, c.detail = rec, actor, detail
	return &c
}

// record notes a change after the fact: the change is made, so a store
// fault while recording it is logged by the recorder, not returned.
func (a *ClientAdmin) record(ctx context.Context, action, id string) {
	if a.rec != nil {
		a.rec.RecordOrLog(ctx, &store.AuditEvent{Actor: a.actor, Action: action, Object: id, Outcome: "ok", Detail: a.detail})
	}
}

// NewClientAdmin returns a ClientAdmin hashing secrets with the key derived
// from the provider's master secret (Config.Secret); now may be nil.
func NewClientAdmin(st store.ClientStore, masterSecret []byte, now func() time.Time) (*ClientAdmin, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: nil client store", ErrConfig)
	}
	h, err := NewSecretHasher(deriveKey(masterSecret, "client-secret"))
	if err != nil || len(masterSecret) < 32 {
		return nil, fmt.Errorf("%w: secret must be at least 32 bytes", ErrConfig)
	}
	if now == nil {
		now = time.Now
	}
	return &ClientAdmin{st: st, hasher: h, now: now, onChange: func(string) {}}, nil
}

// Create registers a client; id may be empty for a random one. The secret
// (empty for public clients) is returned once and only its hash is stored.
func (a *ClientAdmin) Create(ctx context.Context, id string, spec ClientSpec) (*store.Client, string, error) {
	if err := spec.normalise(); err != nil {
		return nil, "", err
	}
	if spec.IDTokenAlg == "" {
		spec.IDTokenAlg = NewClientIDTokenAlg
	}
	if id == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, "", err
		}
		id = base64.RawURLEncoding.EncodeToString(b)
	}
	now := a.now().UTC()
	c := &store.Client{ID: id, Public: spec.Public, CreatedAt: now, UpdatedAt: now}
	apply(c, spec)
	var secret string
	if !spec.Public && spec.AuthMethod != "private_key_jwt" {
		var err error
		if secret, err = NewClientSecret(); err != nil {
			return nil, "", err
		}
		c.SecretHash, _ = a.hasher.Hash(ctx, []byte(secret))
	}
	if err := a.st.Create(ctx, c); err != nil {
		return nil, "", fmt.Errorf("oidc: create client %s: %w", id, err)
	}
	a.record(ctx, "client.create", id)
	return c, secret, nil
}

func apply(c *store.Client, s ClientSpec) {
	c.Name, c.RedirectURIs, c.PostLogoutURIs, c.BackchannelLogoutURI = s.Name, s.RedirectURIs, s.PostLogoutURIs, s.BackchannelLogoutURI
	c.FirstParty, c.GrantTypes, c.Scopes, c.Claims = s.FirstParty, s.GrantTypes, s.Scopes, s.Claims
	c.SectorIdentifier, c.Role, c.ResponseTypes = s.SectorIdentifier, s.Role, []string{"code"}
	c.AuthMethod, c.JWKS, c.IDTokenAlg = s.AuthMethod, string(s.JWKS), s.IDTokenAlg
}

// Update replaces the client's settings (not its secret or public flag).
// A spec without IDTokenAlg keeps the client's: an update never changes
// the alg of the ID tokens a relying party verifies unless it names one.
func (a *ClientAdmin) Update(ctx context.Context, id string, spec ClientSpec) (*store.Client, error) {
	c, err := a.st.Update(ctx, id, func(c *store.Client) error {
		spec.Public = c.Public
		if err := spec.normalise(); err != nil {
			return err
		}
		if spec.IDTokenAlg == "" {
			spec.IDTokenAlg = c.IDTokenAlg
		}
		apply(c, spec)
		c.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oidc: update client %s: %w", id, err)
	}
	a.onChange(id)
	a.record(ctx, "client.update", id)
	return c, nil
}

// RotateSecret issues a new secret; the previous one stays valid for grace.
func (a *ClientAdmin) RotateSecret(ctx context.Context, id string, grace time.Duration) (string, error) {
	secret, err := NewClientSecret()
	if err != nil {
		return "", err
	}
	hash, _ := a.hasher.Hash(ctx, []byte(secret))
	_, err = a.st.Update(ctx, id, func(c *store.Client) error {
		if c.Public {
			return fmt.Errorf("%w: public clients have no secret", ErrInvalidClient)
		}
		c.SecretHashOld, c.SecretOldExpiresAt = c.SecretHash, a.now().UTC().Add(grace)
		c.SecretHash = hash
		c.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("oidc: rotate secret of %s: %w", id, err)
	}
	a.onChange(id)
	a.record(ctx, "client.rotate_secret", id)
	return secret, nil
}

// Delete removes the client.
func (a *ClientAdmin) Delete(ctx context.Context, id string) error {
	if err := a.st.Delete(ctx, id); err != nil {
		return fmt.Errorf("oidc: delete client %s: %w", id, err)
	}
	a.onChange(id)
	a.record(ctx, "client.delete", id)
	return nil
}

// List returns every client.
func (a *ClientAdmin) List(ctx context.Context) ([]*store.Client, error) { return a.st.List(ctx) }

// Get returns one client.
func (a *ClientAdmin) Get(ctx context.Context, id string) (*store.Client, error) {
	return a.st.Get(ctx, id)
}

// clientView is a client as the admin API shows it (never the hashes).
type clientView struct {
	ID string `json:"client_id"`
	ClientSpec
	Secret    string    `json:"client_secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func view(c *store.Client, secret string) clientView {
	return clientView{ID: c.ID, ClientSpec: SpecOf(c), Secret: secret, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// clientAdminAPI is the client administration API (/admin/clients), a
// JSON API guarded by the operator's bearer token; its changes are audited
// as the token's holder.
type clientAdminAPI struct {
	token   string
	clients *ClientAdmin // reads
	audited *ClientAdmin // changes
	log     *slog.Logger
}

func newClientAdminAPI(token string, clients *ClientAdmin, rec *audit.Recorder, log *slog.Logger) *clientAdminAPI {
	return &clientAdminAPI{token: token, clients: clients, log: log,
		audited: clients.Audited(rec, "operator:admin-api", map[string]string{"via": "admin-api"})}
}

// guard guards the admin API with the bearer admin token. It is a JSON API:
// errors answer through internal/httperr.
func (a *clientAdminAPI) guard(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return httperr.Handle(a.log, func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(a.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
			return httperr.Unauthorized("the admin token is required")
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		return adminError(fn(w, r))
	}).ServeHTTP
}

// invalidClientReason is the client-safe part of an ErrInvalidClient: what
// follows the sentinel's text, without the wrapping layers before it.
func invalidClientReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ErrInvalidClient.Error()+": "); i >= 0 {
		return s[i+len(ErrInvalidClient.Error())+2:]
	}
	return "invalid client metadata"
}

// adminError maps the client administration's errors to the admin API's
// answers; others (a store fault, a bug) are left to httperr.
func adminError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalidClient):
		return httperr.BadRequest("invalid_client_metadata", invalidClientReason(err)).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return httperr.NotFound("no such client").WithCause(err)
	case errors.Is(err, store.ErrAlreadyExists):
		return httperr.New(http.StatusConflict, "already_exists", "a client with this id exists").WithCause(err)
	}
	return err
}

func decodeSpec(r *http.Request) (string, ClientSpec, error) {
	var in struct {
		ID string `json:"client_id"`
		ClientSpec
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return "", ClientSpec{}, fmt.Errorf("%w: %v", ErrInvalidClient, err)
	}
	return in.ID, in.ClientSpec, nil
}

func (a *clientAdminAPI) create(w http.ResponseWriter, r *http.Request) error {
	id, spec, err := decodeSpec(r)
	if err != nil {
		return err
	}
	c, secret, err := a.audited.Create(r.Context(), id, spec)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusCreated, view(c, secret))
}

func (a *clientAdminAPI) list(w http.ResponseWriter, r *http.Request) error {
	cs, err := a.clients.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]clientView, 0, len(cs))
	for _, c := range cs {
		out = append(out, view(c, ""))
	}
	return httperr.WriteJSON(w, http.StatusOK, out)
}

func (a *clientAdminAPI) get(w http.ResponseWriter, r *http.Request) error {
	c, err := a.clients.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, view(c, ""))
}

func (a *clientAdminAPI) update(w http.ResponseWriter, r *http.Request) error {
	_, spec, err := decodeSpec(r)
	if err != nil {
		return err
	}
	c, err := a.audited.Update(r.Context(), r.PathValue("id"), spec)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, view(c, ""))
}

func (a *clientAdminAPI) delete(w http.ResponseWriter, r *http.Request) error {
	if err := a.audited.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotate rotates the secret; the old one stays valid for ?grace= (default 24h).
func (a *clientAdminAPI) rotate(w http.ResponseWriter, r *http.Request) error {
	grace := 24 * time.Hour
	if g := r.URL.Query().Get("grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 {
			return fmt.Errorf("%w: grace %q", ErrInvalidClient, g)
		}
		grace = d
	}
	secret, err := a.audited.RotateSecret(r.Context(), r.PathValue("id"), grace)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]string{"client_id": r.PathValue("id"), "client_secret": secret})
}
