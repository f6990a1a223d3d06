// Package storage implements fosite's storage interfaces (clients, authorize
// codes, access and refresh tokens, PKCE, OpenID Connect sessions, pushed
// authorization requests, client-assertion JTIs) on TrustID's durable
// store.Store, and access tokens on the ephemeral store when
// Config.AccessTokens is AccessTokensEphemeral (see access.go). Requests
// are serialised to OAuthRecord.Data as JSON; clients are rebuilt from
// store.ClientStore. This is the only package that knows how fosite's
// requests are laid out in the store.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
	"golang.org/x/text/language"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

// Compile-time checks: fosite finds these interfaces by type assertion at
// run time, so a missing method would only show up as a failed request.
var (
	_ fosite.Storage                     = (*Storage)(nil)
	_ fosite.ClientManager               = (*Storage)(nil)
	_ fosite.PARStorage                  = (*Storage)(nil)
	_ oauth2.CoreStorage                 = (*Storage)(nil)
	_ oauth2.AuthorizeCodeStorage        = (*Storage)(nil)
	_ oauth2.AccessTokenStorage          = (*Storage)(nil)
	_ oauth2.RefreshTokenStorage         = (*Storage)(nil)
	_ oauth2.TokenRevocationStorage      = (*Storage)(nil)
	_ pkce.PKCERequestStorage            = (*Storage)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Storage)(nil)
	_ fositestorage.Transactional        = (*Storage)(nil)
)

// Config holds the storage's live dependencies.
type Config struct {
	Store store.Store
	// Ephemeral holds used client-assertion JTIs (RFC 7523 replay cache).
	Ephemeral ephemeral.Store
	// NewSession returns an empty session of the provider's type; it is used
	// when fosite does not pass one in (PAR) and must not be nil.
	NewSession func() fosite.Session
	// Clock defaults to time.Now.
	Clock func() time.Time
	// ClientCacheTTL keeps clients in memory this long (0: no cache). Changes
	// made on another node take up to this long to be seen here.
	ClientCacheTTL time.Duration
	// DefaultLifespan is the expiry of records whose session carries none.
	DefaultLifespan time.Duration
	// AccessTokens says where access tokens live: AccessTokensEphemeral
	// (the default when empty) or AccessTokensDurable.
	AccessTokens string
	// AccessTokenTTL is the longest access token lifespan the provider
	// issues (default 1h). With ephemeral access tokens no token is kept
	// longer, and a family's revocation mark lasts this long.
	AccessTokenTTL time.Duration
	// Sealer encrypts the records kept in the ephemeral store (access
	// tokens carry identity claims); nil keeps them as plain JSON.
	// *seal.Ring is one.
	Sealer Sealer
	// RefreshGracePeriod: a token request (WithRefreshGrace) that presents
	// the refresh token rotated last, less than this after its rotation,
	// is a retry and gets new tokens instead of ending the family (see
	// grace.go). Zero or less disables it.
	RefreshGracePeriod time.Duration
}

// Sealer encrypts and authenticates a record bound to associated data.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Where access tokens are kept (Config.AccessTokens).
const (
	// AccessTokensEphemeral keeps access tokens in the ephemeral store:
	// no database write per token; losing the store refuses them all.
	AccessTokensEphemeral = "ephemeral"
	// AccessTokensDurable keeps them in store.OAuthStore with the rest.
	AccessTokensDurable = "durable"
)

// Storage is fosite storage on a store.Store. Safe for concurrent use.
type Storage struct {
	st         store.Store
	eph        ephemeral.Store
	newSession func() fosite.Session
	now        func() time.Time
	ttl        time.Duration
	deflife    time.Duration
	// ephAT: access tokens live in eph (access.go); atTTL bounds them.
	ephAT  bool
	atTTL  time.Duration
	sealer Sealer
	grace  time.Duration // Config.RefreshGracePeriod

	mu    sync.Mutex
	cache map[string]cachedClient
}

type cachedClient struct {
	c   *Client
	exp time.Time
}

// ErrConfig reports a missing dependency.
var ErrConfig = errors.New("oidc/storage: invalid config")

// ErrClientUnavailable marks a client that could not be read (the store is
// down or failing), as opposed to an unknown client (fosite.ErrNotFound).
// fosite answers every GetClient error as invalid_client (token endpoint,
// revocation) or request_unauthorized (introspection); the provider answers
// this one as 503 temporarily_unavailable instead, since valid clients must
// not be told their credentials are wrong during an outage (issue 16.3).
// It has a method Unavailable() bool, which internal/httperr recognises.
var ErrClientUnavailable error = clientUnavailable{}

type clientUnavailable struct{}

func (clientUnavailable) Error() string     { return "oidc/storage: client store unavailable" }
func (clientUnavailable) Unavailable() bool { return true }

// New checks cfg and returns a Storage.
func New(cfg Config) (*Storage, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, fmt.Errorf("%w: Store is nil", ErrConfig))
	}
	if cfg.Ephemeral == nil {
		errs = append(errs, fmt.Errorf("%w: Ephemeral is nil", ErrConfig))
	}
	if cfg.NewSession == nil {
		errs = append(errs, fmt.Errorf("%w: NewSession is nil", ErrConfig))
	}
	switch cfg.AccessTokens {
	case "", AccessTokensEphemeral, AccessTokensDurable:
	default:
		errs = append(errs, fmt.Errorf("%w: AccessTokens %q is not %q or %q", ErrConfig, cfg.AccessTokens, AccessTokensEphemeral, AccessTokensDurable))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.DefaultLifespan <= 0 {
		cfg.DefaultLifespan = 24 * time.Hour
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = time.Hour
	}
	return &Storage{
		st: cfg.Store, eph: cfg.Ephemeral, newSession: cfg.NewSession, now: cfg.Clock,
		ttl: cfg.ClientCacheTTL, deflife: cfg.DefaultLifespan, cache: map[string]cachedClient{},
		ephAT: cfg.AccessTokens != AccessTokensDurable, atTTL: cfg.AccessTokenTTL, sealer: cfg.Sealer,
		grace: cfg.RefreshGracePeriod,
	}, nil
}

// GetClient implements fosite.ClientManager.
func (s *Storage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Storage) client(ctx context.Context, id string) (*Client, error) {
	now := s.now()
	if s.ttl > 0 {
		s.mu.Lock()
		cc, ok := s.cache[id]
		s.mu.Unlock()
		if ok && now.Before(cc.exp) {
			return cc.c, nil
		}
	}
	sc, err := s.st.Clients().Get(s.joined(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, mapErr(err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read client %q: %w", ErrClientUnavailable, id, err)
	}
	c := NewClient(sc, s.now)
	if s.ttl > 0 {
		s.mu.Lock()
		if len(s.cache) > 10000 {
			clear(s.cache)
		}
		s.cache[id] = cachedClient{c: c, exp: now.Add(s.ttl)}
		s.mu.Unlock()
	}
	return c, nil
}

// ForgetClient drops id from this node's client cache (after an update here).
func (s *Storage) ForgetClient(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

// OAuthJTI is the kind of the durable record of a used private_key_jwt
// client assertion (RFC 7523 section 3: a jti is used once). The record is
// durable, not in the ephemeral store, so that a Redis restart or flush
// cannot make a used assertion usable again; it expires with the assertion
// (DeleteExpired removes it). It costs one insert per assertion.
const OAuthJTI store.OAuthKind = "jti"

// jtiSignature keys the record by a hash of the client's jti (any length).
func jtiSignature(jti string) string {
	sum := sha256.Sum256([]byte(jti))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ClientAssertionJWTValid implements fosite.ClientManager: an error if jti
// was seen. fosite answers any error here as "jti_known", so a fault of
// the store is not reported here: SetClientAssertionJWT, which is the
// authoritative, atomic check, reports it as a fault.
func (s *Storage) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	rec, err := s.st.OAuth().Get(ctx, OAuthJTI, jtiSignature(jti))
	if err == nil && (rec.ExpiresAt.IsZero() || rec.ExpiresAt.After(s.now())) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager: it records jti
// durably until the assertion expires; a second use fails (ErrJTIKnown) even
// when two arrive at once.
func (s *Storage) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	now := s.now()
	if !exp.After(now) {
		return nil
	}
	err := s.st.OAuth().Create(ctx, &store.OAuthRecord{Kind: OAuthJTI, Signature: jtiSignature(jti), Active: true,
		ExpiresAt: exp.UTC(), CreatedAt: now.UTC()})
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		// An expired record not yet swept does not count as a use.
		if rec, gerr := s.st.OAuth().Get(ctx, OAuthJTI, jtiSignature(jti)); gerr == nil && !rec.ExpiresAt.IsZero() && !rec.ExpiresAt.After(now) {
			if derr := s.st.OAuth().Delete(ctx, OAuthJTI, jtiSignature(jti)); derr != nil {
				return fmt.Errorf("oidc/storage: jti: %w", derr)
			}
			return s.SetClientAssertionJWT(ctx, jti, exp)
		}
		return fosite.ErrJTIKnown
	case err != nil:
		return fmt.Errorf("oidc/storage: jti: %w", err)
	}
	return nil
}

// mapErr turns store sentinels into fosite's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", fosite.ErrNotFound, err)
	}
	return err
}

// sensitiveForm are request parameters never written to the store.
var sensitiveForm = []string{"client_secret", "code_verifier", "code", "refresh_token", "password", "client_assertion", "id_token_hint"}

// record is a fosite request as stored in OAuthRecord.Data.
type record struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"scopes,omitempty"`
	GrantedScope      []string   `json:"granted_scopes,omitempty"`
	RequestedAudience []string   `json:"audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form,omitempty"`
	Lang              string     `json:"lang,omitempty"`
	// Session is the fosite.Session itself, encoded and decoded in the
	// same pass as the rest (decode sets it to the session to fill).
	Session any `json:"session,omitempty"`
	// Authorize request fields, kept for pushed authorization requests.
	Authorize *authorizeFields `json:"authorize,omitempty"`
}

type authorizeFields struct {
	ResponseTypes        []string `json:"response_types,omitempty"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	HandledResponseTypes []string `json:"handled,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
}

func encode(r fosite.Requester) ([]byte, error) {
	form := url.Values{}
	for k, v := range r.GetRequestForm() {
		form[k] = v
	}
	for _, k := range sensitiveForm {
		delete(form, k)
	}
	rec := record{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt().UTC(),
		ClientID:          r.GetClient().GetID(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              form,
	}
	if l, ok := r.(interface{ GetLang() language.Tag }); ok && l.GetLang() != language.Und {
		rec.Lang = l.GetLang().String()
	}
	if sess := r.GetSession(); sess != nil {
		rec.Session = sess
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		af := &authorizeFields{
			ResponseTypes:        ar.GetResponseTypes(),
			State:                ar.GetState(),
			HandledResponseTypes: nil,
			ResponseMode:         string(ar.GetResponseMode()),
			DefaultResponseMode:  string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			af.RedirectURI = u.String()
		}
		rec.Authorize = af
	}
	if bs, ok := rec.Session.(binarySession); ok {
		return appendRecord(make([]byte, 0, 512), &rec, bs)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("oidc/storage: encode request: %w", err)
	}
	return b, nil
}

// decode rebuilds a request; session is filled in place when not nil.
func (s *Storage) decode(ctx context.Context, data []byte, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	if session == nil {
		session = s.newSession()
	}
	rec := record{Session: session}
	if len(data) > 0 && data[0] == recordBinaryV1 {
		if err := readRecord(data, &rec, session); err != nil {
			return nil, err
		}
		return s.request(ctx, &rec, session)
	}
	// A non-nil pointer in an interface field is decoded into in place.
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("oidc/storage: decode request: %w", err)
	}
	return s.request(ctx, &rec, session)
}

// consumedRequest stands for the request of a consumed record, whose data
// the store dropped (store.OAuthStore.Consume): what fosite does with a
// used code or a rotated refresh token (revoke the family, answer
// introspection and revocation) needs only its request ID and client.
func (s *Storage) consumedRequest(ctx context.Context, r *store.OAuthRecord, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	if session == nil {
		session = s.newSession()
	}
	return s.request(ctx, &record{ID: r.RequestID, RequestedAt: r.CreatedAt, ClientID: r.ClientID}, session)
}

// request builds the fosite request rec describes, with session.
func (s *Storage) request(ctx context.Context, rec *record, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	client, err := s.client(ctx, rec.ClientID)
	if err != nil {
		return nil, fmt.Errorf("oidc/storage: client of request: %w", err)
	}
	if rec.Form == nil {
		rec.Form = url.Values{}
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{},
		HandledResponseTypes: fosite.Arguments{},
		Request: fosite.Request{
			ID:                rec.ID,
			RequestedAt:       rec.RequestedAt,
			Client:            client,
			RequestedScope:    fosite.Arguments(nonNil(rec.RequestedScope)),
			GrantedScope:      fosite.Arguments(nonNil(rec.GrantedScope)),
			RequestedAudience: fosite.Arguments(nonNil(rec.RequestedAudience)),
			GrantedAudience:   fosite.Arguments(nonNil(rec.GrantedAudience)),
			Form:              rec.Form,
			Session:           session,
		},
	}
	if rec.Lang != "" {
		if t, err := language.Parse(rec.Lang); err == nil {
			ar.Lang = t
		}
	}
	if af := rec.Authorize; af != nil {
		ar.ResponseTypes = fosite.Arguments(nonNil(af.ResponseTypes))
		ar.State = af.State
		ar.ResponseMode = fosite.ResponseModeType(af.ResponseMode)
		ar.DefaultResponseMode = fosite.ResponseModeType(af.DefaultResponseMode)
		if af.RedirectURI != "" {
			u, err := url.Parse(af.RedirectURI)
			if err != nil {
				return nil, fmt.Errorf("oidc/storage: decode redirect uri: %w", err)
			}
			ar.RedirectURI = u
		}
	}
	return ar, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// create stores r under (kind, sig), expiring with the session's expiry of tt.
func (s *Storage) create(ctx context.Context, kind store.OAuthKind, sig string, tt fosite.TokenType, r fosite.Requester) error {
	data, err := s.encodeIn(ctx, r)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	exp := time.Time{}
	if sess := r.GetSession(); sess != nil && tt != "" {
		exp = sess.GetExpiresAt(tt)
	}
	if exp.IsZero() {
		exp = now.Add(s.deflife)
	}
	subject := ""
	if sess := r.GetSession(); sess != nil {
		subject = sess.GetSubject()
	}
	rec := &store.OAuthRecord{
		Kind: kind, Signature: sig, RequestID: r.GetID(), ClientID: r.GetClient().GetID(),
		Subject: subject, Active: true, Data: data, ExpiresAt: exp.UTC(), CreatedAt: now,
	}
	if t := s.txFrom(ctx); t != nil && kind == store.OAuthRefresh {
		t.successor = rec
	}
	if s.deferCreate(ctx, rec) {
		return nil
	}
	ctx, err = s.open(ctx)
	if err != nil {
		return err
	}
	if err := s.st.OAuth().Create(ctx, rec); err != nil {
		return fmt.Errorf("oidc/storage: create %s: %w", kind, err)
	}
	return nil
}

// get loads (kind, sig); inactive records come back with the request and inactiveErr.
func (s *Storage) get(ctx context.Context, kind store.OAuthKind, sig string, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	ctx, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := s.st.OAuth().Get(ctx, kind, sig)
	if err != nil {
		return nil, mapErr(err)
	}
	if !rec.Active && len(rec.Data) == 0 {
		ar, err := s.consumedRequest(ctx, rec, session)
		if err != nil {
			return nil, err
		}
		return ar, inactiveErr
	}
	ar, err := s.decode(ctx, rec.Data, session)
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		return ar, inactiveErr
	}
	return ar, nil
}

func (s *Storage) del(ctx context.Context, kind store.OAuthKind, sig string) error {
	ctx, err := s.open(ctx)
	if err != nil {
		return err
	}
	return mapErr(s.st.OAuth().Delete(ctx, kind, sig))
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Storage) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, store.OAuthCode, sig, fosite.AuthorizeCode, r)
}

// GetAuthorizeCodeSession returns fosite.ErrInvalidatedAuthorizeCode, with
// the request, for a used code so fosite can revoke the tokens issued from it.
func (s *Storage) GetAuthorizeCodeSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, store.OAuthCode, sig, session, fosite.ErrInvalidatedAuthorizeCode)
}

// InvalidateAuthorizeCodeSession marks the code used. Of two concurrent
// exchanges only one succeeds: the row is checked and changed in one
// statement. Inside BeginTX it runs at Commit, with the tokens created
// after it (see tx.go).
func (s *Storage) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	op := &consumeOp{kind: store.OAuthCode, sig: sig, inactive: fosite.ErrInvalidatedAuthorizeCode}
	if s.deferConsume(ctx, op) {
		return nil
	}
	ctx, err := s.open(ctx)
	if err != nil {
		return err
	}
	return s.consume(ctx, op)
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Storage) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	if s.ephAT {
		return s.createEphemeralAT(ctx, sig, r)
	}
	return s.create(ctx, store.OAuthAccess, sig, fosite.AccessToken, r)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage. A revoked
// ephemeral token comes back with its request and fosite.ErrInactiveToken.
func (s *Storage) GetAccessTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	if s.ephAT {
		return s.getEphemeralAT(ctx, sig, session)
	}
	return s.get(ctx, store.OAuthAccess, sig, session, fosite.ErrInactiveToken)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Storage) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	if s.ephAT {
		return s.deleteEphemeralAT(ctx, sig)
	}
	return s.del(ctx, store.OAuthAccess, sig)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Storage) CreateRefreshTokenSession(ctx context.Context, sig, _ string, r fosite.Requester) error {
	return s.create(ctx, store.OAuthRefresh, sig, fosite.RefreshToken, r)
}

// GetRefreshTokenSession returns fosite.ErrInactiveToken, with the request,
// for a rotated token: fosite then revokes the whole family (RFC 6819 5.2.2.3).
//
// In a token request (WithRefreshGrace), a token rotated less than
// Config.RefreshGracePeriod ago comes back instead as the request of its
// successor, which RotateRefreshToken then rotates (grace.go).
func (s *Storage) GetRefreshTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	if g := graceFrom(ctx); g == nil || s.grace <= 0 || s.txFrom(ctx) != nil {
		return s.get(ctx, store.OAuthRefresh, sig, session, fosite.ErrInactiveToken)
	}
	rec, err := s.st.OAuth().Get(ctx, store.OAuthRefresh, sig)
	if err != nil {
		return nil, mapErr(err)
	}
	if rec.Active {
		return s.decode(ctx, rec.Data, session)
	}
	if ar, ok, err := s.retry(ctx, rec, session); err != nil || ok {
		return ar, err
	}
	if len(rec.Data) == 0 {
		ar, err := s.consumedRequest(ctx, rec, session)
		if err != nil {
			return nil, err
		}
		return ar, fosite.ErrInactiveToken
	}
	ar, err := s.decode(ctx, rec.Data, session)
	if err != nil {
		return nil, err
	}
	return ar, fosite.ErrInactiveToken
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Storage) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return s.del(ctx, store.OAuthRefresh, sig)
}

// RotateRefreshToken marks the used refresh token inactive (kept so a reuse
// is recognised) and revokes the access tokens of the family, in one
// statement. A token already rotated by a concurrent request gives
// fosite.ErrInactiveToken. Inside BeginTX it runs at Commit, with the
// tokens created after it, so a refresh is one write (see tx.go).
//
// With ephemeral access tokens the statement touches only refresh tokens;
// the family's access tokens are revoked in the ephemeral store: inside
// BeginTX by making the new access token the family's only valid one after
// the write (see tx.go), outside it by revoking them all.
func (s *Storage) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	t := s.txFrom(ctx)
	if t != nil && !t.done {
		t.holder = sig
	}
	if g := graceFrom(ctx); g != nil && g.from != "" && g.from == sig {
		sig = g.to // a retry within the grace period rotates the successor (grace.go)
	}
	op := &consumeOp{kind: store.OAuthRefresh, sig: sig, revoke: store.OAuthAccess, requestID: requestID, inactive: fosite.ErrInactiveToken}
	if s.ephAT {
		op.revoke = ""
		if t != nil && !t.done {
			t.family = requestID // its next access token becomes current at Commit
		}
	}
	if s.deferConsume(ctx, op) {
		return nil
	}
	octx, err := s.open(ctx)
	if err != nil {
		return err
	}
	if err := s.consume(octx, op); err != nil {
		return err
	}
	if s.ephAT && t == nil {
		return s.revokeEphemeralATs(ctx, requestID, false)
	}
	return nil
}

// RevokeRefreshToken removes every refresh token of the request (family).
// fosite calls it only when the family ends (refresh token reuse, code
// reuse, RFC 7009 revocation), so with ephemeral access tokens it also
// revokes the family's access tokens and bars a rotation that raced with
// it from making its new access token valid (see access.go).
//
// The ephemeral marks are written first: if the ephemeral store refuses
// them, the refresh tokens are left in place and the error is returned
// (the revocation endpoint answers 503), so a retry finds the family
// again. The other order would answer the retry 200 (the refresh token is
// gone, nothing left to revoke) while the family's access token stayed
// valid.
func (s *Storage) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if s.ephAT {
		if err := s.revokeEphemeralATs(ctx, requestID, true); err != nil {
			return err
		}
	}
	octx, err := s.open(ctx)
	if err != nil {
		return err
	}
	if _, err := s.st.OAuth().DeleteByRequestID(octx, store.OAuthRefresh, requestID); err != nil {
		return fmt.Errorf("oidc/storage: revoke refresh: %w", err)
	}
	return nil
}

// RevokeAccessToken removes every access token of the request.
func (s *Storage) RevokeAccessToken(ctx context.Context, requestID string) error {
	if s.ephAT {
		return s.revokeEphemeralATs(ctx, requestID, false)
	}
	ctx, err := s.open(ctx)
	if err != nil {
		return err
	}
	if _, err := s.st.OAuth().DeleteByRequestID(ctx, store.OAuthAccess, requestID); err != nil {
		return fmt.Errorf("oidc/storage: revoke access: %w", err)
	}
	return nil
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, store.OAuthPKCE, sig, fosite.AuthorizeCode, r)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) GetPKCERequestSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, store.OAuthPKCE, sig, session, fosite.ErrNotFound)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Storage) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return s.del(ctx, store.OAuthPKCE, sig)
}

// codeKey derives the record key of an OpenID Connect session: fosite passes
// the raw authorization code, which is a credential and is not stored.
func codeKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.create(ctx, store.OAuthOIDC, codeKey(code), fosite.AuthorizeCode, r)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	var sess fosite.Session
	if r != nil {
		sess = r.GetSession()
	}
	got, err := s.get(ctx, store.OAuthOIDC, codeKey(code), sess, fosite.ErrNotFound)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, openid.ErrNoSessionFound
	}
	return got, err
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Storage) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.del(ctx, store.OAuthOIDC, codeKey(code))
}

// CreatePARSession implements fosite.PARStorage.
func (s *Storage) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.create(ctx, store.OAuthPAR, codeKey(requestURI), fosite.PushedAuthorizeRequestContext, r)
}

// GetPARSession implements fosite.PARStorage.
func (s *Storage) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	ctx, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := s.st.OAuth().Get(ctx, store.OAuthPAR, codeKey(requestURI))
	if err != nil {
		return nil, mapErr(err)
	}
	if !rec.ExpiresAt.After(s.now()) {
		return nil, fmt.Errorf("oidc/storage: pushed request expired: %w", fosite.ErrNotFound)
	}
	return s.decode(ctx, rec.Data, nil)
}

// DeletePARSession implements fosite.PARStorage.
func (s *Storage) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.del(ctx, store.OAuthPAR, codeKey(requestURI))
}

// DeleteExpired removes expired records; the provider calls it on a timer.
func (s *Storage) DeleteExpired(ctx context.Context) (int, error) {
	ctx, err := s.open(ctx)
	if err != nil {
		return 0, err
	}
	n, err := s.st.OAuth().DeleteExpired(ctx, s.now().UTC())
	if err != nil {
		return n, fmt.Errorf("oidc/storage: delete expired: %w", err)
	}
	return n, nil
}
