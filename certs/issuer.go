package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// CitizenGetter reads citizen records (store.CitizenStore satisfies it).
type CitizenGetter interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
}

// TemplateLister lists a citizen's face templates (store.TemplateStore satisfies it).
type TemplateLister interface {
	ListByCitizen(ctx context.Context, citizenID string) ([]*store.Template, error)
}

// NetworkNumbers gives a citizen's 网号, assigning it on first use
// (*netnumber.Assigner satisfies it; cmd wires it).
type NetworkNumbers interface {
	Ensure(ctx context.Context, citizenID string) (string, error)
}

// IssuerConfig holds the issuer's live dependencies and settings.
type IssuerConfig struct {
	Certs     store.CertificateStore
	Keys      store.KeyStore
	Citizens  CitizenGetter
	Templates TemplateLister
	// Audit is the audit log, recorded through an audit.Recorder.
	Audit store.AuditStore
	// NetworkNumbers gives the 网号 the certificate carries.
	NetworkNumbers NetworkNumbers

	// HolderKey is the secret (at least 32 bytes) keying holder references.
	HolderKey []byte
	// Name names the issuer in the key list (for example its base URL).
	Name string
	// ACRLevels maps an authentication context class (acr) from the login
	// to an assurance level; unknown acr values are refused.
	ACRLevels  map[string]int
	MinLevel   int           // lowest level that gets a certificate; LevelHigh when zero
	MaxAuthAge time.Duration // how recent the proof of identity must be; 5 min when zero
	CertTTL    time.Duration // certificate lifetime; 30 days when zero
	// KeyLifetime is how long one issuer key signs; 90 days when zero.
	KeyLifetime time.Duration
	// PublishLead is how long a new key is published before it signs (so
	// verifiers' cached key lists already hold it); 7 days when zero.
	PublishLead time.Duration
	// StatusTTL is how long a status list token is valid; 1 hour when zero.
	StatusTTL time.Duration
	// MaxDevices is how many devices may hold an active certificate of one
	// citizen at once; 5 when zero.
	MaxDevices int

	Now    func() time.Time // time.Now when nil
	Rand   io.Reader        // crypto/rand when nil
	Logger *slog.Logger     // slog.Default when nil
}

func (c *IssuerConfig) defaults() {
	if c.MinLevel == 0 {
		c.MinLevel = LevelHigh
	}
	if c.MaxAuthAge == 0 {
		c.MaxAuthAge = 5 * time.Minute
	}
	if c.CertTTL == 0 {
		c.CertTTL = 30 * 24 * time.Hour
	}
	if c.KeyLifetime == 0 {
		c.KeyLifetime = 90 * 24 * time.Hour
	}
	if c.PublishLead == 0 {
		c.PublishLead = 7 * 24 * time.Hour
	}
	if c.StatusTTL == 0 {
		c.StatusTTL = time.Hour
	}
	if c.MaxDevices == 0 {
		c.MaxDevices = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with the configuration at once.
func (c *IssuerConfig) Validate() error {
	var errs []error
	if c.Certs == nil || c.Keys == nil || c.Citizens == nil || c.Templates == nil || c.Audit == nil {
		errs = append(errs, errors.New("Certs, Keys, Citizens, Templates and Audit stores are required"))
	}
	if c.NetworkNumbers == nil {
		errs = append(errs, errors.New("NetworkNumbers is required (the certificate carries the 网号)"))
	}
	if len(c.HolderKey) < 32 {
		errs = append(errs, errors.New("HolderKey must be at least 32 bytes"))
	}
	if len(c.ACRLevels) == 0 {
		errs = append(errs, errors.New("ACRLevels must map at least one acr"))
	}
	if c.PublishLead*2 >= c.KeyLifetime {
		errs = append(errs, errors.New("KeyLifetime must exceed twice PublishLead"))
	}
	if c.MaxDevices < 1 || c.MaxDevices > 100 {
		errs = append(errs, errors.New("MaxDevices must be within 1..100"))
	}
	if c.CertTTL <= 0 || c.MaxAuthAge <= 0 || c.StatusTTL <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("certs: issuer config: %w", errors.Join(errs...))
	}
	return nil
}

// Issuer issues and revokes net certificates and publishes the issuer key
// list and status list. Safe for concurrent use.
type Issuer struct {
	cfg IssuerConfig
	rec *audit.Recorder

	mu     sync.Mutex
	parsed map[string]*ecdsa.PrivateKey // kid -> parsed private key
}

// NewIssuer checks cfg and returns an Issuer.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rec, err := newRecorder(cfg.Audit, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("certs: issuer: %w", err)
	}
	return &Issuer{cfg: cfg, rec: rec, parsed: map[string]*ecdsa.PrivateKey{}}, nil
}

// IssueRequest asks for a certificate after a proof of identity.
type IssueRequest struct {
	CitizenID string
	// AuthTime and ACR describe the citizen's latest proof of identity (face
	// + liveness login), as the OIDC session reports them.
	AuthTime time.Time
	ACR      string
	// DeviceKey is the holder device's public key (P-256) that will sign
	// presentations. The issuer never sees the private half.
	DeviceKey *ecdsa.PublicKey
	// DeviceName labels the device in the citizen's device list (at most
	// MaxDeviceNameLen bytes).
	DeviceName string
}

// MaxDeviceNameLen bounds a device's label.
const MaxDeviceNameLen = 64

// Issued is a new certificate.
type Issued struct {
	Cert   []byte // COSE_Sign1 bytes, for the holder's device
	Serial string // hex
	Claims Claims
}

// Issue issues a certificate to one of the citizen's devices. A device
// asking again (the same key) gets a new certificate and its previous one is
// revoked; the citizen's other devices keep theirs, up to MaxDevices.
func (is *Issuer) Issue(ctx context.Context, req IssueRequest) (*Issued, error) {
	// Keys first: a key created now must not be dated after the claims.
	if err := is.EnsureKeys(ctx); err != nil {
		return nil, err
	}
	clockNow := is.cfg.Now().UTC()
	now := clockNow.Truncate(time.Second) // claims carry whole seconds
	level, ok := is.cfg.ACRLevels[req.ACR]
	if !ok || level < is.cfg.MinLevel {
		return nil, fmt.Errorf("%w: acr %q", ErrInsufficientLevel, req.ACR)
	}
	age := now.Sub(req.AuthTime)
	if req.AuthTime.IsZero() || age > is.cfg.MaxAuthAge || age < -DefaultSkew {
		return nil, fmt.Errorf("%w: authenticated %s ago", ErrStaleAuthentication, age.Round(time.Second))
	}
	if len(req.DeviceName) > MaxDeviceNameLen {
		return nil, fmt.Errorf("%w: device name longer than %d bytes", ErrBadRequest, MaxDeviceNameLen)
	}
	devCOSE, err := NewCOSEKey(req.DeviceKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	devDER, err := x509.MarshalPKIXPublicKey(req.DeviceKey)
	if err != nil {
		return nil, fmt.Errorf("%w: device key: %v", ErrBadRequest, err)
	}
	cit, err := is.cfg.Citizens.Get(ctx, req.CitizenID)
	if err != nil {
		return nil, fmt.Errorf("certs: issue: citizen: %w", err)
	}
	if cit.Disabled {
		return nil, ErrCitizenDisabled
	}
	tpl, err := referenceTemplate(ctx, is.cfg.Templates, cit.ID)
	if err != nil {
		return nil, err
	}
	nn, err := is.cfg.NetworkNumbers.Ensure(ctx, cit.ID)
	if err != nil {
		return nil, fmt.Errorf("certs: issue: network number: %w", err)
	}
	sk, priv, err := is.signingKey(ctx, clockNow)
	if err != nil {
		return nil, err
	}
	serial := make([]byte, 10)
	if _, err := io.ReadFull(is.cfg.Rand, serial); err != nil {
		return nil, fmt.Errorf("certs: serial: %w", err)
	}
	exp := now.Add(is.cfg.CertTTL)
	rec := &store.Certificate{
		Serial:    hex.EncodeToString(serial),
		CitizenID: cit.ID,
		Status:    store.CertActive,
		DeviceKey: devDER,
		KeyID:     sk.ID,
		Level:     LevelName(level),
		IssuedAt:  now,
		ExpiresAt: exp,
		// Only the public key is stored (PKIX DER): the private half stays
		// in the holder's device.
		DeviceName: req.DeviceName,
	}
	// The status index is signed into the certificate but assigned by the
	// store inside Issue, so the record is stored first and signed after;
	// the holder keeps the signed bytes.
	if err := is.cfg.Certs.Issue(ctx, rec, is.cfg.MaxDevices); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("%w: %v", ErrTooManyDevices, err)
		}
		return nil, fmt.Errorf("certs: issue: store: %w", err)
	}
	claims := Claims{
		HolderRef:     HolderRef(is.cfg.HolderKey, cit.ID),
		NetworkNumber: nn,
		TemplateRef:   TemplateRef(tpl),
		Level:         level,
		IssuedAt:      now.Unix(),
		ExpiresAt:     exp.Unix(),
		Serial:        serial,
		StatusIndex:   rec.StatusIndex,
		DeviceKey:     devCOSE,
	}
	payload, err := encMode.Marshal(claims)
	if err == nil {
		var kid []byte
		kid, err = KeyIDOf(&priv.PublicKey)
		if err == nil {
			var cert []byte
			cert, err = sign1(is.cfg.Rand, priv, kid, "", payload)
			if err == nil {
				is.audit(ctx, "citizen:"+cit.ID, "cert.issue", cit.ID, rec.Serial, "ok", map[string]string{"kid": sk.ID, "level": rec.Level})
				is.cfg.Logger.InfoContext(ctx, "certificate issued", "serial", rec.Serial, "kid", sk.ID, "status_index", rec.StatusIndex)
				return &Issued{Cert: cert, Serial: rec.Serial, Claims: claims}, nil
			}
		}
	}
	if rerr := is.cfg.Certs.Revoke(ctx, rec.Serial, "issue failed", now); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return nil, fmt.Errorf("certs: issue: sign: %w", err)
}

// HolderRef is the de-identified holder reference of a citizen.
func HolderRef(key []byte, citizenID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("trustid/certs/holder\x00"))
	m.Write([]byte(citizenID))
	return m.Sum(nil)[:16]
}

// TemplateRef is the face template reference of a template: SHA-256 of the
// source photo (or of the vector when no photo hash is held), 16 bytes.
func TemplateRef(t *store.Template) []byte {
	src := t.PhotoHash
	if len(src) == 0 {
		src = []byte(fmt.Sprint(t.Vector))
	}
	sum := sha256.Sum256(append([]byte("trustid/certs/template\x00"), src...))
	return sum[:16]
}

// referenceTemplate picks the citizen's newest register template.
func referenceTemplate(ctx context.Context, tl TemplateLister, citizenID string) (*store.Template, error) {
	ts, err := tl.ListByCitizen(ctx, citizenID)
	if err != nil {
		return nil, fmt.Errorf("certs: templates: %w", err)
	}
	var best *store.Template
	for _, t := range ts {
		if t.Kind == store.TemplateRegister && (best == nil || t.CreatedAt.After(best.CreatedAt)) {
			best = t
		}
	}
	if best == nil {
		return nil, ErrNoReferenceTemplate
	}
	return best, nil
}

const keyUse = "cert"

// EnsureKeys makes sure a key is signing now and that its successor is
// published PublishLead before it takes over; it deletes keys whose
// certificates have all expired. Run it at start and daily.
func (is *Issuer) EnsureKeys(ctx context.Context) error {
	now := is.cfg.Now().UTC()
	keys, err := is.cfg.Keys.List(ctx, keyUse)
	if err != nil {
		return fmt.Errorf("certs: keys: %w", err)
	}
	var cur, newest *store.SigningKey
	for _, k := range keys {
		if !now.Before(k.ExpiresAt) {
			if err := is.cfg.Keys.Delete(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("certs: delete expired key: %w", err)
			}
			continue
		}
		if !k.ActiveAt.After(now) && now.Before(k.RetireAt) && (cur == nil || k.ActiveAt.After(cur.ActiveAt)) {
			cur = k
		}
		if newest == nil || k.ActiveAt.After(newest.ActiveAt) {
			newest = k
		}
	}
	switch {
	case cur == nil:
		// First start (or every key lapsed): sign at once; nothing to pre-publish to.
		return is.createKey(ctx, now, now)
	case !now.Before(cur.RetireAt.Add(-2*is.cfg.PublishLead)) && newest == cur:
		return is.createKey(ctx, now, now.Add(is.cfg.PublishLead))
	}
	return nil
}

// Rotate publishes a new key that starts signing after PublishLead,
// whatever the current key's age (for a planned early rotation).
func (is *Issuer) Rotate(ctx context.Context) error {
	now := is.cfg.Now().UTC()
	return is.createKey(ctx, now, now.Add(is.cfg.PublishLead))
}

func (is *Issuer) createKey(ctx context.Context, now, activeAt time.Time) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), is.cfg.Rand)
	if err != nil {
		return fmt.Errorf("certs: generate key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("certs: key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return fmt.Errorf("certs: key: %w", err)
	}
	kid, err := KeyIDOf(&priv.PublicKey)
	if err != nil {
		return err
	}
	activeAt = activeAt.Truncate(time.Second) // a key signs from the second certificates are dated with
	retire := activeAt.Add(is.cfg.KeyLifetime)
	k := &store.SigningKey{
		ID: KIDString(kid), Use: keyUse, Alg: "ES256", Private: pkcs8, Public: pub,
		CreatedAt: now, ActiveAt: activeAt, RetireAt: retire, ExpiresAt: retire.Add(is.cfg.CertTTL),
	}
	if err := is.cfg.Keys.Create(ctx, k); err != nil {
		return fmt.Errorf("certs: store key: %w", err)
	}
	is.audit(ctx, "system", "cert.key_create", "", k.ID, "ok", map[string]string{"active_at": activeAt.Format(time.RFC3339)})
	is.cfg.Logger.InfoContext(ctx, "issuer key created", "kid", k.ID, "active_at", activeAt, "retire_at", retire)
	return nil
}

// signingKey returns the key signing at now: the one with the latest
// ActiveAt not after now and not retired.
func (is *Issuer) signingKey(ctx context.Context, now time.Time) (*store.SigningKey, *ecdsa.PrivateKey, error) {
	keys, err := is.cfg.Keys.List(ctx, keyUse)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: keys: %w", err)
	}
	var cur *store.SigningKey
	for _, k := range keys {
		if !k.ActiveAt.After(now) && now.Before(k.RetireAt) && (cur == nil || k.ActiveAt.After(cur.ActiveAt)) {
			cur = k
		}
	}
	if cur == nil {
		return nil, nil, errors.New("certs: no issuer key is signing now (run EnsureKeys)")
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if p, ok := is.parsed[cur.ID]; ok {
		return cur, p, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(cur.Private)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issuer key %s: %w", cur.ID, err)
	}
	p, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("certs: issuer key %s is not ECDSA", cur.ID)
	}
	is.parsed[cur.ID] = p
	return cur, p, nil
}

// TrustList returns the published issuer key list: every key not yet
// expired, including the next one before it signs and retired ones until
// their certificates expire.
func (is *Issuer) TrustList(ctx context.Context) (*TrustList, error) {
	now := is.cfg.Now().UTC()
	keys, err := is.cfg.Keys.List(ctx, keyUse)
	if err != nil {
		return nil, fmt.Errorf("certs: keys: %w", err)
	}
	tl := &TrustList{Issuer: is.cfg.Name, Generated: now.Truncate(time.Second)}
	for _, k := range keys {
		if !now.Before(k.ExpiresAt) {
			continue
		}
		pk, err := x509.ParsePKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("certs: key %s: %w", k.ID, err)
		}
		pub, ok := pk.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("certs: key %s is not ECDSA", k.ID)
		}
		kid, err := KeyIDOf(pub)
		if err != nil {
			return nil, err
		}
		tl.Keys = append(tl.Keys, newTrustedKey(pub, kid, k.ActiveAt, k.RetireAt, k.ExpiresAt, now))
	}
	sort.Slice(tl.Keys, func(i, j int) bool { return tl.Keys[i].NotBefore.Before(tl.Keys[j].NotBefore) })
	return tl, nil
}

// StatusList returns a freshly signed status list token.
func (is *Issuer) StatusList(ctx context.Context) ([]byte, error) {
	clockNow := is.cfg.Now().UTC()
	now := clockNow.Truncate(time.Second)
	revoked, err := is.cfg.Certs.Revoked(ctx)
	if err != nil {
		return nil, fmt.Errorf("certs: status list: %w", err)
	}
	_, priv, err := is.signingKey(ctx, clockNow)
	if err != nil {
		return nil, err
	}
	kid, err := KeyIDOf(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return signStatusList(is.cfg.Rand, priv, kid, is.cfg.Name, revoked, now, is.cfg.StatusTTL)
}

// Device is one of a citizen's certificates as the device list shows it.
type Device struct {
	Serial    string    `json:"serial"`
	Name      string    `json:"name"`
	Status    string    `json:"status"` // active or revoked
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// LastUsedAt is the last accepted online verification (zero if none;
	// offline verifications are not seen by the issuer).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	// Reason is why it was revoked: holder, superseded or operator: ...
	Reason string `json:"revoke_reason,omitempty"`
	// KeyThumbprint is the RFC 7638 thumbprint (SHA-256, base64url) of the
	// device's public key, so a browser can find its own certificate.
	KeyThumbprint string `json:"key_thumbprint"`
}

// Devices lists the citizen's certificates not yet expired, newest first.
func (is *Issuer) Devices(ctx context.Context, citizenID string) ([]Device, error) {
	cs, err := is.cfg.Certs.ListByCitizen(ctx, citizenID, is.cfg.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("certs: devices: %w", err)
	}
	out := make([]Device, 0, len(cs))
	for _, c := range cs {
		d := Device{Serial: c.Serial, Name: c.DeviceName, Status: string(c.Status), IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt,
			LastUsedAt: c.LastUsedAt, RevokedAt: c.RevokedAt, Reason: c.RevokeReason}
		if pk, err := x509.ParsePKIXPublicKey(c.DeviceKey); err == nil {
			if ek, ok := pk.(*ecdsa.PublicKey); ok {
				d.KeyThumbprint, _ = Thumbprint(ek)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// RevokeDevice revokes one of the citizen's certificates (the citizen
// asked, for example after losing that phone). A serial of another citizen
// is ErrDeviceNotFound and changes nothing.
func (is *Issuer) RevokeDevice(ctx context.Context, citizenID, serial string) error {
	c, err := is.cfg.Certs.Get(ctx, serial)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.CitizenID != citizenID) {
		return ErrDeviceNotFound
	}
	if err != nil {
		return fmt.Errorf("certs: revoke %s: %w", serial, err)
	}
	if err := is.cfg.Certs.Revoke(ctx, c.Serial, "holder", is.cfg.Now().UTC()); err != nil {
		return fmt.Errorf("certs: revoke %s: %w", c.Serial, err)
	}
	is.audit(ctx, "citizen:"+citizenID, "cert.revoke", citizenID, c.Serial, "ok", map[string]string{"reason": "holder"})
	return nil
}

// RevokeByOperator revokes a certificate by serial on an operator's decision.
func (is *Issuer) RevokeByOperator(ctx context.Context, serial, operator, reason string) error {
	c, err := is.cfg.Certs.Get(ctx, serial)
	if err != nil {
		return fmt.Errorf("certs: revoke %s: %w", serial, err)
	}
	if err := is.cfg.Certs.Revoke(ctx, serial, "operator: "+reason, is.cfg.Now().UTC()); err != nil {
		return fmt.Errorf("certs: revoke %s: %w", serial, err)
	}
	is.audit(ctx, "operator:"+operator, "cert.revoke", c.CitizenID, serial, "ok", map[string]string{"reason": reason})
	return nil
}

func (is *Issuer) audit(ctx context.Context, actor, action, subject, object, outcome string, detail map[string]string) {
	// Recorded after the fact: a store fault is logged, the outcome stands.
	is.rec.RecordOrLog(ctx, &store.AuditEvent{
		At: is.cfg.Now().UTC(), Actor: actor, Action: action, Subject: subject, Object: object, Outcome: outcome, Detail: detail,
	})
}
