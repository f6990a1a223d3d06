package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// keyUse is the store.SigningKey.Use of the provider's keys.
const keyUse = "oidc"

// Supported signing algorithms, both published and rotated. New clients
// get ES256 ID tokens unless they register RS256 (NewClientIDTokenAlg);
// clients without a stored alg get Config.SigningAlg (RS256 by default,
// the OpenID Connect default).
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// ErrNoSigningKey is returned when no key can sign (store unreachable at start).
var ErrNoSigningKey = errors.New("oidc: no signing key")

// keyRing keeps the provider's signing keys in memory and rotates them in the
// store, the way dex does: every node reloads the key list every refresh
// interval, so all nodes agree on which key signs and which are published.
//
// Life of a key: created (and published in the JWKS) at least prepublish
// before ActiveAt, signs from ActiveAt to RetireAt, stays published until
// ExpiresAt = RetireAt + retention (the longest life of a token it signed),
// then is deleted. Key IDs are derived from (alg, ActiveAt), so two nodes
// creating the same successor at once collide on the key and one loses
// harmlessly with ErrAlreadyExists.
type keyRing struct {
	st         keyStorage
	now        func() time.Time
	log        *slog.Logger
	rec        auditRecorder // records key creation; nil in unit tests of the ring
	algs       []string
	rotation   time.Duration
	prepublish time.Duration
	retention  time.Duration
	refresh    time.Duration

	mu     sync.RWMutex
	loaded time.Time
	keys   []*ringKey // not expired, ordered by ActiveAt descending
	jwks   staticDoc
}

type ringKey struct {
	meta store.SigningKey
	priv crypto.Signer
	// jwtHeader is the encoded JWS header of a token this key signs with
	// no header of the caller's ({"alg","kid","typ":"JWT"}, base64url), as
	// signCompact would encode it: every ID token's, built once per key.
	jwtHeader string
}

func (k *ringKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.meta.ID, Algorithm: k.meta.Alg, Use: "sig"}
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("oidc: unsupported alg %q", alg)
}

// load reads the key list, deletes expired keys and creates the keys that
// are due (the first key of an alg, or the successor of the newest one).
func (r *keyRing) load(ctx context.Context) error {
	now := r.now().UTC()
	list, err := r.st.List(ctx, keyUse)
	if err != nil {
		return fmt.Errorf("oidc: list keys: %w", err)
	}
	var keep []store.SigningKey
	for _, k := range list {
		if !now.Before(k.ExpiresAt) {
			if err := r.st.Delete(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				r.log.Warn("oidc: delete expired key", "kid", k.ID, "err", err)
			}
			continue
		}
		keep = append(keep, *k)
	}
	created := false
	for _, alg := range r.algs {
		var newest *store.SigningKey
		for i := range keep {
			if keep[i].Alg == alg && (newest == nil || keep[i].RetireAt.After(newest.RetireAt)) {
				newest = &keep[i]
			}
		}
		var activeAt time.Time
		switch {
		case newest == nil:
			// First start: nothing is published yet, so the first key signs at once.
			activeAt = now
		case newest.RetireAt.Sub(now) <= r.prepublish+r.refresh:
			activeAt = newest.RetireAt
			if min := now.Add(r.prepublish); activeAt.Before(min) {
				activeAt = min
			}
		default:
			continue
		}
		k, err := r.create(ctx, alg, activeAt.Truncate(time.Second), now)
		if errors.Is(err, store.ErrAlreadyExists) {
			created = true
			continue
		}
		if err != nil {
			return err
		}
		keep = append(keep, *k)
		created = true
	}
	if created {
		// Re-read so a key created concurrently by another node is seen too.
		return r.loadNoCreate(ctx, now)
	}
	return r.install(keep, now)
}

func (r *keyRing) loadNoCreate(ctx context.Context, now time.Time) error {
	list, err := r.st.List(ctx, keyUse)
	if err != nil {
		return fmt.Errorf("oidc: list keys: %w", err)
	}
	var keep []store.SigningKey
	for _, k := range list {
		if now.Before(k.ExpiresAt) {
			keep = append(keep, *k)
		}
	}
	return r.install(keep, now)
}

func (r *keyRing) create(ctx context.Context, alg string, activeAt, now time.Time) (*store.SigningKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("oidc: marshal key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("oidc: marshal key: %w", err)
	}
	k := &store.SigningKey{
		ID:        fmt.Sprintf("%s-%d", strings.ToLower(alg), activeAt.Unix()),
		Use:       keyUse,
		Alg:       alg,
		Private:   der,
		Public:    pub,
		CreatedAt: now,
		ActiveAt:  activeAt,
		RetireAt:  activeAt.Add(r.rotation),
		ExpiresAt: activeAt.Add(r.rotation + r.retention),
	}
	if err := r.st.Create(ctx, k); err != nil {
		return nil, fmt.Errorf("oidc: create key %s: %w", k.ID, err)
	}
	r.log.Info("oidc: signing key created", "kid", k.ID, "active_at", k.ActiveAt, "retire_at", k.RetireAt)
	if r.rec != nil {
		r.rec.RecordOrLog(ctx, &store.AuditEvent{Actor: "system", Action: "oidc.key_create", Object: k.ID, Outcome: "ok",
			Detail: map[string]string{"alg": alg, "active_at": k.ActiveAt.UTC().Format(time.RFC3339)}})
	}
	return k, nil
}

func (r *keyRing) install(list []store.SigningKey, now time.Time) error {
	keys := make([]*ringKey, 0, len(list))
	for _, m := range list {
		p, err := x509.ParsePKCS8PrivateKey(m.Private)
		if err != nil {
			return fmt.Errorf("oidc: parse key %s: %w", m.ID, err)
		}
		signer, ok := p.(crypto.Signer)
		if !ok {
			return fmt.Errorf("oidc: key %s is not a signer", m.ID)
		}
		hj, err := json.Marshal(map[string]any{"typ": "JWT", "kid": m.ID, "alg": m.Alg})
		if err != nil {
			return fmt.Errorf("oidc: key %s header: %w", m.ID, err)
		}
		keys = append(keys, &ringKey{meta: m, priv: signer, jwtHeader: base64.RawURLEncoding.EncodeToString(hj)})
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].meta.ActiveAt.Equal(keys[j].meta.ActiveAt) {
			return keys[i].meta.ActiveAt.After(keys[j].meta.ActiveAt)
		}
		return keys[i].meta.ID > keys[j].meta.ID
	})
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("oidc: encode jwks: %w", err)
	}
	r.mu.Lock()
	r.keys, r.jwks, r.loaded = keys, newStaticDoc(b), now
	r.mu.Unlock()
	return nil
}

// maybeRefresh reloads when the refresh interval has passed.
func (r *keyRing) maybeRefresh(ctx context.Context) {
	r.mu.RLock()
	stale := r.now().Sub(r.loaded) >= r.refresh
	r.mu.RUnlock()
	if stale {
		if err := r.load(ctx); err != nil {
			r.log.Warn("oidc: key refresh failed; keeping the loaded keys", "err", err)
		}
	}
}

// signingKey returns the key of alg that signs now: the one with the newest
// ActiveAt not in the future. A retired key is used only if no other exists
// (the store was unreachable when a successor was due).
func (r *keyRing) signingKey(alg string) (*ringKey, error) {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.meta.Alg == alg && !k.meta.ActiveAt.After(now) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w for %s", ErrNoSigningKey, alg)
}

func (r *keyRing) publicKey(kid string) (crypto.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.meta.ID == kid {
			return k.priv.Public(), true
		}
	}
	return nil, false
}

// JWKS returns the published key set (JSON).
func (r *keyRing) JWKS() []byte { return r.doc().body }

func (r *keyRing) doc() staticDoc {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jwks
}

// SigningAlgs are the algorithms a client may register as
// id_token_signed_response_alg.
var SigningAlgs = []string{AlgRS256, AlgES256}

// signingAlgKey is the context key of the alg a token is signed with.
type signingAlgKey struct{}

// withSigningAlg makes the signer sign with alg (RS256 or ES256) instead of
// the configured default; "" keeps the default.
func withSigningAlg(ctx context.Context, alg string) context.Context {
	if alg == "" {
		return ctx
	}
	return context.WithValue(ctx, signingAlgKey{}, alg)
}

// signer is fosite's jwt.Signer over the key ring. It signs with the alg
// set on the context by withSigningAlg, else with alg.
type signer struct {
	ring *keyRing
	alg  string
}

var _ jwt.Signer = (*signer)(nil)

func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	alg := s.alg
	if a, ok := ctx.Value(signingAlgKey{}).(string); ok {
		alg = a
	}
	k, err := s.ring.signingKey(alg)
	if err != nil {
		return "", "", err
	}
	// The header fosite's jwt.Token.SignedString writes: typ JWT unless
	// the caller's header names another (logout+jwt), the caller's
	// fields, the key's kid and the alg. Without fields of the caller's
	// (every ID token) it is the key's, encoded once.
	var extra map[string]any
	if header != nil {
		extra = header.ToMap()
	}
	var raw string
	if len(extra) == 0 && k.jwtHeader != "" && k.meta.Alg == alg {
		raw, err = signEncoded(alg, k.priv, k.jwtHeader, claims)
	} else {
		h := map[string]any{"typ": "JWT"}
		for hk, hv := range extra {
			h[hk] = hv
		}
		h["kid"], h["alg"] = k.meta.ID, alg
		raw, err = signCompact(alg, k.priv, h, claims)
	}
	if err != nil {
		return "", "", fmt.Errorf("oidc: sign: %w", err)
	}
	i := strings.LastIndexByte(raw, '.')
	return raw, raw[i+1:], nil
}

// signCompact returns the compact JWS (RFC 7515 section 7.1) of claims
// with header, signed with priv under alg (RS256 or ES256, RFC 7518
// section 3). It replaces fosite's SignedString, which built a go-jose
// signer and copied the claims through go-jose's JSON on every call: with
// the ECDSA signature, a quarter of the CPU of a refresh that returns an
// ID token. TestSignCompactAsGoJOSE checks the result against go-jose.
func signCompact(alg string, priv crypto.Signer, header, claims map[string]any) (string, error) {
	hj, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	return signEncoded(alg, priv, base64.RawURLEncoding.EncodeToString(hj), claims)
}

// signEncoded is signCompact with the header already encoded (base64url).
func signEncoded(alg string, priv crypto.Signer, header64 string, claims map[string]any) (string, error) {
	cj, err := appendClaimsJSON(make([]byte, 0, 1024), claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(header64)+enc.EncodedLen(len(cj))+2+enc.EncodedLen(512))
	b = append(b, header64...)
	b = append(b, '.')
	b = enc.AppendEncode(b, cj)
	digest := sha256.Sum256(b)
	var sig []byte
	switch key := priv.(type) {
	case *ecdsa.PrivateKey:
		if alg != AlgES256 || key.Curve != elliptic.P256() {
			return "", fmt.Errorf("alg %s for an EC key on %s", alg, key.Curve.Params().Name)
		}
		// Deterministic ECDSA (RFC 6979, HMAC-SHA-256; crypto/ecdsa does
		// this for a nil random source), not the hedged signature that
		// ecdsa.Sign makes: its HMAC-SHA-512 DRBG seeded from the system's
		// randomness was a quarter of the signature's CPU. The nonce is
		// derived from the key and the digest, so it is secret and unique
		// per message without depending on the random source; the one
		// risk the hedged form covers in addition, a fault induced while
		// the same message is signed twice, needs repeated messages, and
		// every ID token differs (jti, at_hash, times).
		der, err := key.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			return "", err
		}
		// R and S as two 32-byte big-endian integers (RFC 7518 3.4).
		if sig, err = ecdsaRaw(der, 32); err != nil {
			return "", err
		}
	case *rsa.PrivateKey:
		if alg != AlgRS256 {
			return "", fmt.Errorf("alg %s for an RSA key", alg)
		}
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unsupported key %T", priv)
	}
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	return string(b), nil
}

// ecdsaRaw converts an ASN.1 DER ECDSA signature (SEQUENCE of the
// INTEGERs r and s, as crypto/ecdsa writes it) to r and s as two
// size-byte big-endian integers (the JWS form, RFC 7518 section 3.4).
func ecdsaRaw(der []byte, size int) ([]byte, error) {
	bad := errors.New("oidc: malformed ECDSA signature")
	if len(der) < 2 || der[0] != 0x30 || der[1] >= 0x80 || int(der[1]) != len(der)-2 {
		return nil, bad
	}
	out := make([]byte, 2*size)
	rest := der[2:]
	for i := 0; i < 2; i++ {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 || rest[1] == 0 {
			return nil, bad
		}
		v := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		if v[0]&0x80 != 0 {
			return nil, bad // negative
		}
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > size {
			return nil, bad
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
	}
	if len(rest) != 0 {
		return nil, bad
	}
	return out, nil
}

// Decode verifies token against the published key named by its kid.
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := s.ring.publicKey(kid)
		if !ok {
			return nil, fmt.Errorf("oidc: unknown kid %q", kid)
		}
		switch pub.(type) {
		case *rsa.PublicKey:
			if t.Method != jose.RS256 {
				return nil, fmt.Errorf("oidc: alg %s for an RSA key", t.Method)
			}
		case *ecdsa.PublicKey:
			if t.Method != jose.ES256 {
				return nil, fmt.Errorf("oidc: alg %s for an EC key", t.Method)
			}
		}
		return pub, nil
	})
}

func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

func (s *signer) GetSignature(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("oidc: malformed jwt")
	}
	return parts[2], nil
}

// Hash is SHA-256, the hash of both RS256 and ES256 (at_hash, c_hash).
func (s *signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	return h[:], nil
}

func (s *signer) GetSigningMethodLength(ctx context.Context) int { return sha256.Size }

// clientAlgStrategy signs each ID token with the alg its client registered
// (id_token_signed_response_alg, OpenID Connect Dynamic Client Registration
// 1.0 section 2). Every ID token fosite mints goes through it: the code,
// refresh and CIBA grants at the token endpoint, and any flow that would
// issue one at the authorization endpoint.
type clientAlgStrategy struct {
	openid.OpenIDConnectTokenStrategy
}

func (s clientAlgStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	if c, ok := r.GetClient().(*storage.Client); ok {
		ctx = withSigningAlg(ctx, c.IDTokenAlg)
	}
	return s.OpenIDConnectTokenStrategy.GenerateIDToken(ctx, lifespan, r)
}
