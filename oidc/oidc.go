// Package oidc is TrustID's OpenID Connect provider, built on ory/fosite
// (the only package tree that imports it). It owns discovery, the JWKS with
// rotating ES256/RS256 keys, the authorization code flow with PKCE, client
// credentials, refresh with rotation and reuse detection, userinfo,
// introspection (RFC 7662), revocation (RFC 7009), pushed authorization
// requests (RFC 9126), RP-initiated and back-channel logout, the login and
// consent pages, and client administration. Login methods (face + liveness,
// passkeys) plug in as Authenticators (the authn.Method contract); cmd/
// wires the real ones from authn/facelogin and authn/passkey.
//
// Structure (in fosite's style): one component per concern, each holding
// only what it uses and declaring the narrow storage it needs in its own
// *_storage.go with a compile-time assertion against the store: authorizer
// (authorize, login, consent; login.go), tokenEndpoints with dpopChecker
// (token, PAR, introspection, revocation, userinfo; endpoints.go, dpop.go),
// logout (logout.go), ciba (ciba.go), registration (register.go),
// clientAdminAPI and ClientAdmin (clients.go), keyRing (keys.go), with the
// shared browser (cookies, sessions), claimSource (subjects, claims) and
// events (audit). New builds them and the Provider only mounts them; a
// component reaches another concern through a small func it is given, never
// through the Provider.
//
// Wiring:
//
//	p, err := oidc.New(oidc.Config{Issuer: "https://id.example.gov", Store: st, Ephemeral: eph,
//		Logger: log, Secret: masterKey, Authenticators: []oidc.Authenticator{face, passkey}})
//	go p.Run(ctx) // key rotation and expired-record cleanup
//	mux.Handle("/", p.Handler())
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// ErrConfig wraps every problem New finds in a Config.
var ErrConfig = errors.New("oidc: invalid config")

// Config holds the provider's live dependencies and settings. Zero
// durations take the defaults listed.
type Config struct {
	// Issuer is the public base URL, e.g. "https://id.example.gov"; endpoints
	// are served under its path.
	Issuer    string
	Store     store.Store
	Ephemeral ephemeral.Store
	Logger    *slog.Logger
	// Clock defaults to time.Now. (fosite itself reads the wall clock.)
	Clock func() time.Time
	// Secret is the master key (at least 32 bytes). The token HMAC key, the
	// pairwise-subject key and the client-secret hashing key are derived from
	// it, so it must be the same on every node and in `trustid client`.
	Secret []byte
	// Authenticators are the login methods offered, in order.
	Authenticators []Authenticator

	AccessTokenTTL time.Duration // default 15m
	// AccessTokenStore is storage.AccessTokensEphemeral (default: access
	// tokens in Ephemeral) or storage.AccessTokensDurable (in Store).
	AccessTokenStore string
	// Sealer encrypts what the provider keeps in the ephemeral store
	// (access tokens); nil keeps it as plain JSON.
	Sealer          storage.Sealer
	RefreshTokenTTL time.Duration // default 30 days
	IDTokenTTL      time.Duration // default 1h
	AuthCodeTTL     time.Duration // default 1m
	LoginTTL        time.Duration // login/consent state, default 10m
	SessionTTL      time.Duration // browser session, default 8h
	PARTTL          time.Duration // pushed request lifetime, default 90s

	// ClientAuth checks client secrets and limits failed client
	// authentications; shared with the other APIs that
	// authenticate OAuth clients. Nil: one is built from Secret
	// (ClientSecretKey).
	ClientAuth *clientauth.Authenticator

	// RefreshGracePeriod: a retry of the refresh token rotated last, this
	// soon after its rotation, gets new tokens instead of ending the
	// family (oidc/storage/grace.go). Zero disables it.
	RefreshGracePeriod time.Duration

	// SigningAlg signs the ID tokens of clients with no
	// id_token_signed_response_alg stored: RS256 (default) or ES256. Both
	// kinds of keys are published and rotated, and discovery lists both.
	// Clients registered since issue 21 always have an alg stored (ES256
	// unless they asked for RS256, NewClientIDTokenAlg), so this is the alg
	// of clients registered before, which keep what they had.
	SigningAlg    string
	KeyRotation   time.Duration // how long a key signs, default 30 days
	KeyPrepublish time.Duration // published this long before signing, default 24h
	KeyRefresh    time.Duration // nodes reload keys this often, default 1m

	// CleanupInterval runs DeleteExpired on the OAuth records, default 10m.
	CleanupInterval time.Duration
	// ClientCacheTTL keeps clients in memory, default 5s (negative: off).
	ClientCacheTTL time.Duration

	// TrustFramework names the verification framework in verified_claims.
	TrustFramework string // default "trustid"
	// DynamicRegistration enables RFC 7591 registration at /oauth2/register
	// under its policy; nil disables it.
	DynamicRegistration *RegistrationPolicy
	// AdminToken guards /admin/clients; empty disables the admin API.
	AdminToken string
	// HTTPClient posts back-channel logout tokens; default has a 5s timeout.
	HTTPClient *http.Client
	// InsecureCookies drops the Secure flag (plain-HTTP development only).
	InsecureCookies bool
	// Pages, when set, draws the consent screen; the built-in minimal page
	// otherwise.
	Pages PageRenderer
	// NetworkNumbers assigns the citizen's 网号 at the first verified
	// sign-in and gives it to first-party or authorised clients
	// (network_number claim); nil: neither.
	NetworkNumbers NetworkNumbers
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, 15*time.Minute)
	def(&c.RefreshTokenTTL, 30*24*time.Hour)
	def(&c.IDTokenTTL, time.Hour)
	def(&c.AuthCodeTTL, time.Minute)
	def(&c.LoginTTL, 10*time.Minute)
	def(&c.SessionTTL, 8*time.Hour)
	def(&c.PARTTL, 90*time.Second)
	def(&c.KeyRotation, 30*24*time.Hour)
	def(&c.KeyPrepublish, 24*time.Hour)
	def(&c.KeyRefresh, time.Minute)
	def(&c.CleanupInterval, 10*time.Minute)
	def(&c.ClientCacheTTL, 5*time.Second)
	if c.SigningAlg == "" {
		c.SigningAlg = AlgRS256
	}
	if c.TrustFramework == "" {
		c.TrustFramework = "trustid"
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.DynamicRegistration != nil {
		pol := *c.DynamicRegistration
		pol.defaults()
		c.DynamicRegistration = &pol
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("%w: "+f, append([]any{ErrConfig}, a...)...)) }
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		bad("Issuer %q is not an absolute http(s) URL", c.Issuer)
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/"):
		bad("Issuer %q must have no query, fragment or trailing slash", c.Issuer)
	}
	if c.Store == nil {
		bad("Store is nil")
	}
	if c.Ephemeral == nil {
		bad("Ephemeral is nil")
	}
	if c.Logger == nil {
		bad("Logger is nil")
	}
	if len(c.Secret) < 32 {
		bad("Secret must be at least 32 bytes")
	}
	if len(c.Authenticators) == 0 {
		bad("no Authenticators")
	}
	seen := map[string]bool{}
	for _, a := range c.Authenticators {
		if a == nil || a.Method() == "" || seen[a.Method()] || strings.ContainsAny(a.Method(), "/ ?#") {
			bad("authenticator method names must be unique, non-empty and URL-safe")
			continue
		}
		seen[a.Method()] = true
		if acrRank(a.MaxACR()) < 0 {
			bad("authenticator %q: unknown acr %q", a.Method(), a.MaxACR())
		}
	}
	if c.SigningAlg != AlgRS256 && c.SigningAlg != AlgES256 {
		bad("SigningAlg %q (want RS256 or ES256)", c.SigningAlg)
	}
	if c.KeyPrepublish <= c.KeyRefresh {
		bad("KeyPrepublish must exceed KeyRefresh, or a node could sign with a key others have not loaded")
	}
	for name, d := range map[string]time.Duration{"AccessTokenTTL": c.AccessTokenTTL, "RefreshTokenTTL": c.RefreshTokenTTL,
		"IDTokenTTL": c.IDTokenTTL, "AuthCodeTTL": c.AuthCodeTTL, "LoginTTL": c.LoginTTL, "SessionTTL": c.SessionTTL,
		"KeyRotation": c.KeyRotation, "KeyRefresh": c.KeyRefresh, "CleanupInterval": c.CleanupInterval, "PARTTL": c.PARTTL} {
		if d < 0 {
			bad("%s is negative", name)
		}
	}
	return errors.Join(errs...)
}

// Provider is the OpenID Connect provider. Safe for concurrent use.
type Provider struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	f       fosite.OAuth2Provider
	fc      *fosite.Config
	storage *storage.Storage
	ring    *keyRing
	signer  *signer
	secrets *clientauth.Authenticator
	prefix  string // issuer path
	origin  string // issuer scheme://host[:port]
	events  events
	// The components, each holding only what it uses.
	claims       *claimSource
	browser      *browser
	authorizer   *authorizer
	ciba         *ciba
	tokens       *tokenEndpoints
	logout       *logout
	admin        *clientAdminAPI // nil without an AdminToken
	registration *registration   // nil without DynamicRegistration
	auths        map[string]Authenticator
	mux          *http.ServeMux
	disco        staticDoc
}

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathJWKS       = "/oauth2/jwks"
	PathAuth       = "/oauth2/auth"
	PathResume     = "/oauth2/auth/resume"
	PathToken      = "/oauth2/token"
	PathPAR        = "/oauth2/par"
	PathIntrospect = "/oauth2/introspect"
	PathRevoke     = "/oauth2/revoke"
	PathUserinfo   = "/userinfo"
	PathLogout     = "/oauth2/logout"
	PathLogin      = "/oauth2/login"
	PathConsent    = "/oauth2/consent"
	PathClaims     = "/oauth2/consent/claims" // the separate consent to plaintext claims
	PathAdmin      = "/admin/clients"
)

// New checks cfg, loads (creating on first start) the signing keys and
// assembles fosite with exactly the handlers used.
func New(cfg Config) (*Provider, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Issuer)
	secrets := cfg.ClientAuth
	if secrets == nil {
		var err error
		if secrets, err = clientauth.New(clientauth.Config{Key: ClientSecretKey(cfg.Secret), Now: cfg.Clock, Logger: cfg.Logger, Ephemeral: cfg.Ephemeral}); err != nil {
			return nil, err
		}
	}
	hasher := &SecretHasher{auth: secrets}
	rec, err := audit.New(audit.Config{Store: cfg.Store.Audit(), Now: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg: cfg, log: cfg.Logger, now: cfg.Clock,
		secrets: secrets,
		prefix:  strings.TrimSuffix(u.Path, "/"), origin: u.Scheme + "://" + u.Host, auths: map[string]Authenticator{},
	}
	p.events = events{rec: rec, now: cfg.Clock}
	p.claims = &claimSource{citizens: cfg.Store.Citizens(), consents: cfg.Store.Consents(), numbers: cfg.NetworkNumbers,
		subKey: deriveKey(cfg.Secret, "pairwise-sub"), trustFramework: cfg.TrustFramework}
	p.browser = &browser{eph: cfg.Ephemeral, log: cfg.Logger, path: p.prefix + "/", secure: !cfg.InsecureCookies}
	html := htmlPages{prefix: p.prefix, log: cfg.Logger}
	for _, a := range cfg.Authenticators {
		p.auths[a.Method()] = a
	}
	cacheTTL := cfg.ClientCacheTTL
	if cacheTTL < 0 {
		cacheTTL = 0
	}
	p.storage, err = storage.New(storage.Config{
		Store: cfg.Store, Ephemeral: cfg.Ephemeral, Clock: cfg.Clock, ClientCacheTTL: cacheTTL,
		NewSession: func() fosite.Session { return newSession() }, DefaultLifespan: cfg.RefreshTokenTTL,
		AccessTokens: cfg.AccessTokenStore, AccessTokenTTL: cfg.AccessTokenTTL, Sealer: cfg.Sealer,
		RefreshGracePeriod: cfg.RefreshGracePeriod,
	})
	if err != nil {
		return nil, err
	}
	clients := &ClientAdmin{st: cfg.Store.Clients(), hasher: hasher, now: cfg.Clock, onChange: p.storage.ForgetClient}
	if cfg.AdminToken != "" {
		p.admin = newClientAdminAPI(cfg.AdminToken, clients, rec, cfg.Logger)
	}
	if cfg.DynamicRegistration != nil {
		p.registration = &registration{policy: *cfg.DynamicRegistration, limits: cfg.Ephemeral, clients: clients,
			events: p.events, signingAlg: cfg.SigningAlg, writeOAuthError: p.writeOAuthError}
	}
	p.ring = &keyRing{
		st: cfg.Store.Keys(), now: cfg.Clock, log: cfg.Logger, rec: rec, algs: []string{AlgRS256, AlgES256},
		rotation: cfg.KeyRotation, prepublish: cfg.KeyPrepublish, refresh: cfg.KeyRefresh,
		// A retired key stays published while ID tokens it signed are valid,
		// plus a margin for clients' JWKS caches.
		retention: cfg.IDTokenTTL + cfg.KeyPrepublish,
	}
	if err := p.ring.load(context.Background()); err != nil {
		return nil, err
	}
	p.signer = &signer{ring: p.ring, alg: cfg.SigningAlg}

	p.fc = &fosite.Config{
		AccessTokenLifespan:             cfg.AccessTokenTTL,
		RefreshTokenLifespan:            cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan:           cfg.AuthCodeTTL,
		IDTokenLifespan:                 cfg.IDTokenTTL,
		IDTokenIssuer:                   cfg.Issuer,
		AccessTokenIssuer:               cfg.Issuer,
		TokenURL:                        cfg.Issuer + PathToken,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		RefreshTokenScopes:              []string{ScopeOffline},
		MinParameterEntropy:             fosite.MinParameterEntropy,
		GlobalSecret:                    deriveKey(cfg.Secret, "token-hmac"),
		ClientSecretsHasher:             hasher,
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		PushedAuthorizeContextLifespan:  cfg.PARTTL,
		RedirectSecureChecker:           fosite.IsRedirectURISecureStrict,
		SanitationWhiteList:             []string{"nonce", "max_age", "prompt", "acr_values", "login_hint", "redirect_uri"},
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(p.fc),
		OpenIDConnectTokenStrategy: liveClaimsStrategy{clientAlgStrategy{&openid.DefaultStrategy{Signer: p.signer, Config: p.fc}}, p.claims.identityClaims},
		Signer:                     p.signer,
	}
	dpop := &dpopChecker{eph: cfg.Ephemeral, now: cfg.Clock, log: cfg.Logger, codes: strategy.CoreStrategy, auth: p.storage}
	p.ciba = &ciba{
		eph: cfg.Ephemeral, citizens: cfg.Store.Citizens(), consents: cfg.Store.Consents(), events: p.events, now: cfg.Clock, origin: p.origin,
		accessTokenTTL: cfg.AccessTokenTTL, idTokenTTL: cfg.IDTokenTTL,
		writeOAuthError: p.writeOAuthError,
		session: func(r *http.Request) (*browserSession, error) {
			s, _, err := p.browser.sessionOrFault(r)
			return s, err
		},
		subject: p.claims.subject,
	}
	p.f = compose.Compose(p.fc, p.storage, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
		func(fosite.Configurator, any, any) any {
			return &cibaGrant{c: p.ciba,
				tokens: &oauth2.HandleHelper{AccessTokenStrategy: strategy.CoreStrategy, AccessTokenStorage: p.storage, Config: p.fc},
				ids:    &openid.IDTokenHandleHelper{IDTokenStrategy: strategy.OpenIDConnectTokenStrategy}}
		},
	)
	fo, ok := p.f.(*fosite.Fosite)
	if !ok {
		return nil, fmt.Errorf("oidc: compose returned %T, not *fosite.Fosite", p.f)
	}
	quietTokenHandlers(p.fc.TokenEndpointHandlers)
	p.fc.ClientAuthenticationStrategy = p.clientAuth(fo.DefaultClientAuthenticationStrategy)
	p.tokens = &tokenEndpoints{f: p.f, issuer: cfg.Issuer, log: cfg.Logger, dpop: dpop,
		authenticateClient: fo.AuthenticateClient, writeOAuthError: p.writeOAuthError, claims: p.claims.identityClaims}
	p.ciba.authenticateClient = fo.AuthenticateClient
	p.authorizer = &authorizer{
		f: p.f, issuer: cfg.Issuer, prefix: p.prefix, loginTTL: cfg.LoginTTL, sessionTTL: cfg.SessionTTL,
		pages: cfg.Pages, authenticators: cfg.Authenticators, auths: p.auths, grantLife: cfg.AuthCodeTTL + cfg.AccessTokenTTL,
		eph: cfg.Ephemeral, clients: cfg.Store.Clients(), citizens: cfg.Store.Citizens(), consents: cfg.Store.Consents(),
		browser: p.browser, html: html, events: p.events, now: cfg.Clock, log: cfg.Logger, subject: p.claims.subject,
		numbers: cfg.NetworkNumbers, tokens: p.storage,
	}
	p.logout = &logout{
		issuer: cfg.Issuer, action: p.prefix + PathLogout, csrfKey: deriveKey(cfg.Secret, "logout-csrf"),
		clients: cfg.Store.Clients(), eph: cfg.Ephemeral, tokens: p.storage, signer: p.signer, http: cfg.HTTPClient,
		log: cfg.Logger, events: p.events, now: cfg.Clock, pages: cfg.Pages,
		session: p.browser.sessionOrFault, page: html.page, clearCookie: p.browser.clearCookie, subject: p.claims.subject,
	}
	p.authorizer.sessionEnded = p.logout.backchannelLogout
	if err := p.buildDiscovery(); err != nil {
		return nil, err
	}
	p.routes()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dpop.startDPoPMemory(ctx)
	return p, nil
}

// Handler serves every endpoint under the issuer's path.
func (p *Provider) Handler() http.Handler { return p.mux }

// Run refreshes and rotates keys and deletes expired OAuth records until
// ctx ends. Every node runs it; the work is idempotent.
func (p *Provider) Run(ctx context.Context) {
	keys := time.NewTicker(p.cfg.KeyRefresh)
	clean := time.NewTicker(p.cfg.CleanupInterval)
	defer keys.Stop()
	defer clean.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keys.C:
			p.ring.maybeRefresh(ctx)
		case <-clean.C:
			if n, err := p.storage.DeleteExpired(ctx); err != nil {
				p.log.Warn("oidc: cleanup failed", "err", err)
			} else if n > 0 {
				p.log.Debug("oidc: expired records deleted", "count", n)
			}
		}
	}
}

// ClientAuthenticator returns the provider's client-secret authentication
// (internal/clientauth, keyed like the token endpoint), for the other APIs
// that authenticate OAuth clients by their secret.
func (p *Provider) ClientAuthenticator() *clientauth.Authenticator { return p.secrets }
