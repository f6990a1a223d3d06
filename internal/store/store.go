// Package store defines TrustID's durable storage: one Store made of
// per-entity parts, the records they hold and the sentinel errors callers may
// branch on. Backends live in subpackages (sqlite, postgres) and all pass the
// conformance suite in storetest.
//
// Contract for every implementation:
//   - safe for concurrent use by many goroutines and many processes;
//   - every time.Time returned is in UTC, truncated to microseconds;
//   - Get/Update/Delete of a missing record return an error wrapping ErrNotFound;
//   - Create of a record whose key (or unique field) exists returns ErrAlreadyExists;
//   - Update* methods run the updater inside one transaction holding a row
//     lock, so concurrent updaters of one record never lose a write; an error
//     from the updater aborts the transaction and is returned wrapped;
//   - sensitive fields (ID numbers, face template vectors, private keys, and
//     the serialised OAuth session Data) are encrypted at rest by the backend
//     with the seal.Ring it was given, bound to their row; lookups by ID
//     number use a keyed hash, never the plaintext, of the number's canonical
//     form (spaces trimmed, upper case), so "...x" and "...X" are one number;
//   - Create fills a zero CreatedAt (and UpdatedAt, GrantedAt, IssuedAt,
//     At) from the backend's clock and normalises the caller's record to the
//     stored form (UTC, microseconds); Update* sets UpdatedAt and keeps the
//     key fields and CreatedAt unchanged whatever the updater does;
//   - records that reference a citizen (templates, passkeys, consents,
//     certificates) or a client (consents) need it to exist: creating one
//     for a missing citizen/client returns an error wrapping ErrNotFound;
//     deleting a client deletes its consents;
//   - List methods with a limit <= 0 use DefaultPageSize.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Wrap them with %w; compare with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict reports a state change that is not allowed (for example
	// reactivating a revoked certificate).
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable is wrapped by errors that are faults of the backend
	// itself (the server is down, restarting or refusing connections),
	// not of the request: callers answer "try again" (internal/httperr
	// recognises its Unavailable method), never a verdict.
	ErrUnavailable error = unavailable{}
)

// DefaultPageSize is the page size of List methods given a limit <= 0.
const DefaultPageSize = 100

// Store is the whole durable store.
type Store interface {
	Citizens() CitizenStore
	Templates() TemplateStore
	Passkeys() PasskeyStore
	Clients() ClientStore
	OAuth() OAuthStore
	Consents() ConsentStore
	Certificates() CertificateStore
	Audit() AuditStore
	Keys() KeyStore

	// Ping checks the backend is reachable (readiness).
	Ping(ctx context.Context) error
	// Migrate applies the embedded schema migrations forward; idempotent.
	Migrate(ctx context.Context) error
	Close() error
}

// Transactor is implemented by stores that can run several calls in one
// write transaction whose end the caller chooses (both SQL backends' DB,
// through sqlstore.Store). BeginTx returns a context in which every call on
// the store runs in that transaction until Commit or Rollback with the same
// context; Rollback after Commit does nothing. The context must be used by
// one goroutine at a time. Stores without it commit each call on its own.
type Transactor interface {
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Citizen is a record of the population register joined with the citizen's
// account on TrustID. IDNumber is the national ID number in plaintext in
// memory only; backends store it sealed and index it by keyed hash.
type Citizen struct {
	ID        string // opaque internal id (random), never the ID number
	IDNumber  string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Disabled accounts cannot log in or be issued certificates.
	Disabled bool
	// NetworkNumber is the citizen's 网号 (network number): letters and
	// digits that reveal nothing of the ID number, assigned once at the
	// first verified sign-in (authn/netnumber) and never changed: Update
	// refuses to change or clear it once set. Empty until assigned.
	NetworkNumber string
}

// CitizenStore holds register records / accounts.
type CitizenStore interface {
	// Create stores c; ErrAlreadyExists when c.ID or c.IDNumber is taken.
	Create(ctx context.Context, c *Citizen) error
	Get(ctx context.Context, id string) (*Citizen, error)
	GetByIDNumber(ctx context.Context, idNumber string) (*Citizen, error)
	Update(ctx context.Context, id string, fn func(*Citizen) error) (*Citizen, error)
	// GetByNetworkNumber finds the citizen behind a 网号 (lawful requests).
	GetByNetworkNumber(ctx context.Context, networkNumber string) (*Citizen, error)
	// List returns citizens ordered by ID after the given id (paging), at most limit.
	List(ctx context.Context, after string, limit int) ([]*Citizen, error)
}

// TemplateKind says where a face template came from.
type TemplateKind string

const (
	TemplateRegister TemplateKind = "register" // the register (ID-card) photo
	TemplateLive     TemplateKind = "live"     // enrolled after a successful verification
)

// Template is a face embedding of a citizen.
type Template struct {
	ID           string
	CitizenID    string
	Kind         TemplateKind
	ModelVersion string
	Vector       []float32 // L2-normalised; sealed at rest
	// PhotoHash is SHA-256 of the source image (for certificates and idempotent imports).
	PhotoHash []byte
	CreatedAt time.Time
}

// TemplateStore holds face templates.
type TemplateStore interface {
	Create(ctx context.Context, t *Template) error
	Get(ctx context.Context, id string) (*Template, error)
	ListByCitizen(ctx context.Context, citizenID string) ([]*Template, error)
	// ListAll pages through every template ordered by ID (loading the 1:N index).
	ListAll(ctx context.Context, after string, limit int) ([]*Template, error)
	Delete(ctx context.Context, id string) error
	// ReplaceRegister atomically replaces the citizen's register template(s) with t.
	ReplaceRegister(ctx context.Context, t *Template) error
	// CountCitizens is the number of citizens with at least one template
	// (the figure of the face measures' filing threshold).
	CountCitizens(ctx context.Context) (int64, error)
}

// TemplateChange is one entry of the template change feed: a template
// created (Deleted false) or deleted. Seq grows with every change; a
// transaction that commits late can make a lower Seq appear after a higher
// one (a gap a reader must keep asking for), never the reverse of a
// template's own insert and delete.
type TemplateChange struct {
	Seq        int64
	TemplateID string
	CitizenID  string
	Deleted    bool
	At         time.Time
}

// TemplateFeed is the change feed of the templates table, implemented by
// both SQL backends (a trigger logs every insert and delete in the same
// transaction): nodes sharing a store keep their in-memory 1:N index in step
// by reading it (authn/identity.Follower).
type TemplateFeed interface {
	// TemplateChanges returns, ordered by Seq, up to limit changes with
	// Seq > after, plus those whose Seq is listed in gaps (sequence numbers
	// below after that a reader has not seen yet: a transaction that had
	// not committed, or was rolled back).
	TemplateChanges(ctx context.Context, after int64, gaps []int64, limit int) ([]TemplateChange, error)
	// TemplateFeedHead is the highest Seq logged, 0 when none.
	TemplateFeedHead(ctx context.Context) (int64, error)
	// PruneTemplateChanges deletes changes logged before t and returns how
	// many. A reader behind them reloads its index from the templates.
	PruneTemplateChanges(ctx context.Context, before time.Time) (int64, error)
}

// TemplateNotifier is implemented by stores that announce template changes
// (PostgreSQL: LISTEN/NOTIFY). ListenTemplateChanges returns a channel that
// receives a value after one or more changes committed (coalesced: it holds
// at most one); the channel is closed when the listening connection fails
// or ctx ends, and the caller listens again. A notification is only a
// wake-up: the feed is the truth.
type TemplateNotifier interface {
	ListenTemplateChanges(ctx context.Context) (<-chan struct{}, error)
}

// Passkey is a WebAuthn credential of a citizen.
type Passkey struct {
	CredentialID []byte // unique
	CitizenID    string
	Name         string
	// Credential is the go-webauthn Credential serialised by its owner (JSON).
	Credential []byte
	SignCount  uint32
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// PasskeyStore holds WebAuthn credentials.
type PasskeyStore interface {
	Create(ctx context.Context, p *Passkey) error
	Get(ctx context.Context, credentialID []byte) (*Passkey, error)
	ListByCitizen(ctx context.Context, citizenID string) ([]*Passkey, error)
	Update(ctx context.Context, credentialID []byte, fn func(*Passkey) error) (*Passkey, error)
	Delete(ctx context.Context, credentialID []byte) error
}

// Client is an OAuth 2.0 / OpenID Connect client (relying app or verifier).
type Client struct {
	ID   string
	Name string
	// SecretHash is a keyed hash of the client secret (empty for public clients).
	SecretHash []byte
	// SecretHashOld keeps the previous secret valid during rotation until SecretOldExpiresAt.
	SecretHashOld        []byte
	SecretOldExpiresAt   time.Time
	Public               bool
	FirstParty           bool // receives the public sub instead of a pairwise one
	RedirectURIs         []string
	PostLogoutURIs       []string
	BackchannelLogoutURI string
	GrantTypes           []string
	ResponseTypes        []string
	Scopes               []string
	// Claims lists the identity claims this client may receive (e.g. "id_number").
	Claims []string
	// SectorIdentifier groups clients sharing a pairwise sub; defaults to the redirect host.
	SectorIdentifier string
	// Role is set for certificate verifiers ("hotel", "vehicle_office", ...).
	Role string
	// AuthMethod is the token endpoint authentication method: "" for the
	// default (client_secret_basic; none for public clients),
	// "client_secret_post" or "private_key_jwt".
	AuthMethod string
	// JWKS is the client's public JSON Web Key Set (private_key_jwt).
	JWKS string
	// IDTokenAlg is id_token_signed_response_alg (OpenID Connect Dynamic
	// Client Registration 1.0 section 2): the JWS alg of the client's ID
	// tokens, "" for the provider's configured default.
	IDTokenAlg string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ClientStore holds OAuth clients.
type ClientStore interface {
	Create(ctx context.Context, c *Client) error
	Get(ctx context.Context, id string) (*Client, error)
	Update(ctx context.Context, id string, fn func(*Client) error) (*Client, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]*Client, error)
}

// OAuthKind names a kind of OAuth record kept for fosite.
type OAuthKind string

const (
	OAuthCode    OAuthKind = "code"
	OAuthAccess  OAuthKind = "access"
	OAuthRefresh OAuthKind = "refresh"
	OAuthPKCE    OAuthKind = "pkce"
	OAuthOIDC    OAuthKind = "oidc"
	OAuthPAR     OAuthKind = "par"
)

// OAuthRecord is one authorize code / token / session of the provider,
// keyed by (Kind, Signature). Data is the serialised request owned by oidc/.
type OAuthRecord struct {
	Kind      OAuthKind
	Signature string
	RequestID string
	ClientID  string
	Subject   string
	Active    bool
	Data      []byte
	ExpiresAt time.Time
	CreatedAt time.Time
}

// OAuthStore holds the provider's codes, tokens and sessions.
type OAuthStore interface {
	Create(ctx context.Context, r *OAuthRecord) error
	Get(ctx context.Context, kind OAuthKind, signature string) (*OAuthRecord, error)
	Delete(ctx context.Context, kind OAuthKind, signature string) error
	// Deactivate marks a record inactive (used codes, rotated refresh tokens);
	// ErrNotFound if missing.
	Deactivate(ctx context.Context, kind OAuthKind, signature string) error
	// Update runs fn on the record in one transaction.
	Update(ctx context.Context, kind OAuthKind, signature string, fn func(*OAuthRecord) error) (*OAuthRecord, error)
	// Consume marks an active record inactive in one statement (a used
	// code, a rotated refresh token): ErrConflict if it was already
	// inactive, ErrNotFound if missing. Of concurrent calls on one record
	// exactly one succeeds. The consumed record keeps its kind, signature,
	// request ID, client ID, subject and dates, which is what reuse
	// detection needs until it expires, but its Data is dropped (nil from
	// then on): it is never handed out again, and a refresh token rotated
	// every few minutes for a month would otherwise keep thousands of
	// copies of its session.
	Consume(ctx context.Context, kind OAuthKind, signature string) error
	// Rotate is one grant's write, all or nothing: it consumes the record
	// (kind, signature) as Consume does (dropping its Data), deletes the records of kind revoke
	// issued for requestID (none when revoke is ""; revoke must differ from
	// kind) and creates recs. It returns ErrConflict if the record was
	// already inactive, ErrNotFound if it is missing and ErrAlreadyExists if
	// one of recs exists; in each case nothing changes. Of concurrent calls
	// on one record exactly one succeeds. Inside a Transactor's transaction
	// it runs in that transaction.
	Rotate(ctx context.Context, kind OAuthKind, signature string, revoke OAuthKind, requestID string, recs ...*OAuthRecord) error
	// DeleteByRequestID removes every record of kind issued for requestID;
	// it returns how many were removed.
	DeleteByRequestID(ctx context.Context, kind OAuthKind, requestID string) (int, error)
	// ListByRequestID returns the records of kind issued for requestID,
	// newest (CreatedAt) first, at most limit of them (all if limit < 1).
	// Consumed records come back without Data, as from Get.
	ListByRequestID(ctx context.Context, kind OAuthKind, requestID string, limit int) ([]*OAuthRecord, error)
	// DeactivateByRequestID marks inactive every record of kind for requestID.
	DeactivateByRequestID(ctx context.Context, kind OAuthKind, requestID string) (int, error)
	// DeleteExpired removes records that expired before now (records with a
	// zero ExpiresAt never expire); returns the count.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Consent is what a citizen granted a client.
type Consent struct {
	CitizenID string
	ClientID  string
	// Scopes are the scopes consented to at sign-in.
	Scopes []string
	// Claims are the plaintext identity claims (name, id_number,
	// birthdate, verified_claims) the citizen released to the client in
	// the separate claims consent; empty means result-only.
	Claims    []string
	GrantedAt time.Time
	UpdatedAt time.Time
	// ClaimsGrantedAt is when Claims were last consented to (zero when
	// none are).
	ClaimsGrantedAt time.Time
}

// ConsentStore holds consents keyed by (CitizenID, ClientID).
type ConsentStore interface {
	// Put creates or replaces the consent.
	Put(ctx context.Context, c *Consent) error
	Get(ctx context.Context, citizenID, clientID string) (*Consent, error)
	ListByCitizen(ctx context.Context, citizenID string) ([]*Consent, error)
	Delete(ctx context.Context, citizenID, clientID string) error
}

// CertStatus is the state of a net certificate.
type CertStatus string

const (
	CertActive  CertStatus = "active"
	CertRevoked CertStatus = "revoked"
)

// Certificate is an issued net certificate.
type Certificate struct {
	Serial    string
	CitizenID string
	Status    CertStatus
	// DeviceKey is the holder's public key (PKIX DER) that signs presentations.
	DeviceKey []byte
	KeyID     string // issuer key id
	Level     string // assurance level
	// Payload is the signed credential as issued (COSE_Sign1 bytes).
	Payload      []byte
	IssuedAt     time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time
	RevokeReason string
	// StatusIndex is the certificate's position in the published status list.
	StatusIndex int64
	// DeviceName is the holder's label for the device (for the device list).
	DeviceName string
	// LastUsedAt is the time of the last accepted online verification.
	LastUsedAt time.Time
}

// CertificateStore holds net certificates and their revocation state.
type CertificateStore interface {
	// Issue stores c as an active certificate of the citizen and, in the
	// same transaction, revokes the citizen's active certificates bound to
	// the same device key (reason "superseded": one per device). When the
	// citizen would then hold more than maxActive active certificates (one
	// per device; maxActive <= 0 means no limit) nothing is changed and the
	// error is ErrConflict. It assigns c.StatusIndex (increasing with every
	// issue, never reused) and sets c.Status to active; ErrNotFound if the
	// citizen is missing.
	Issue(ctx context.Context, c *Certificate, maxActive int) error
	Get(ctx context.Context, serial string) (*Certificate, error)
	// ListByCitizen returns the citizen's certificates not yet expired at
	// now (active and revoked), newest first.
	ListByCitizen(ctx context.Context, citizenID string, now time.Time) ([]*Certificate, error)
	// MarkUsed records an accepted verification at at (LastUsedAt);
	// ErrNotFound if missing.
	MarkUsed(ctx context.Context, serial string, at time.Time) error
	// Revoke marks the certificate revoked; revoking twice is not an error
	// (the first time and reason are kept); ErrNotFound if missing.
	Revoke(ctx context.Context, serial, reason string, at time.Time) error
	// Revoked lists the status indexes of all revoked certificates.
	Revoked(ctx context.Context) ([]int64, error)
}

// AuditEvent is one entry of the append-only, hash-chained audit log.
// Seq, PrevHash and Hash are assigned by Append.
type AuditEvent struct {
	Seq      int64
	At       time.Time
	Actor    string // who acted: "citizen:<id>", "client:<id>", "operator:<name>", "system"
	Action   string // e.g. "cert.verify", "login.face", "client.create"
	Subject  string // the citizen the event concerns (opaque id), may be empty
	Object   string // e.g. certificate serial, client id
	Outcome  string // "ok", "fail", ...
	Detail   map[string]string
	PrevHash []byte
	Hash     []byte
}

// AuditStore is the append-only audit log. Backends serialise appends so the
// chain is linear. The chain is a property of the store: every backend
// hashes with internal/audit.Chain (the one chain function, which
// internal/audit.Verify checks), so no writer can chain events its own way.
// Writers record through internal/audit.Recorder, which checks and
// normalises events before they reach Append.
type AuditStore interface {
	// Append assigns Seq and PrevHash, sets Hash = audit.Chain(prev, e) and
	// stores e, atomically with respect to other appends.
	Append(ctx context.Context, e *AuditEvent) error
	// List returns events with Seq > after, ascending, at most limit.
	List(ctx context.Context, after int64, limit int) ([]*AuditEvent, error)
	// ListBySubject returns the subject's events with the action prefix, newest first.
	ListBySubject(ctx context.Context, subject, actionPrefix string, limit int) ([]*AuditEvent, error)
}

// SigningKey is an asymmetric key of the service (OIDC token signing or
// certificate issuing). Private is sealed at rest.
type SigningKey struct {
	ID        string // kid
	Use       string // "oidc" or "cert"
	Alg       string // "ES256", "RS256"
	Private   []byte // PKCS#8 DER
	Public    []byte // PKIX DER
	CreatedAt time.Time
	// ActiveAt is when the key starts signing (published before that).
	ActiveAt time.Time
	// RetireAt is when it stops signing; it stays published until ExpiresAt.
	RetireAt  time.Time
	ExpiresAt time.Time
}

// KeyStore holds signing keys.
type KeyStore interface {
	Create(ctx context.Context, k *SigningKey) error
	Get(ctx context.Context, id string) (*SigningKey, error)
	// List returns keys of the given use, oldest first.
	List(ctx context.Context, use string) ([]*SigningKey, error)
	Delete(ctx context.Context, id string) error
}

type unavailable struct{}

func (unavailable) Error() string     { return "store: unavailable" }
func (unavailable) Unavailable() bool { return true }
