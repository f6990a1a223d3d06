// Package clientauth owns OAuth client authentication by client secret
// (RFC 6749 section 2.3.1): the keyed hash a secret is stored as, the
// constant-time check of a presented secret against a client's current hash
// and, during a rotation's grace period, its previous one, and the one
// place where failures are reported. The token endpoint (through the fosite
// hasher in oidc and its client adapter in oidc/storage), the certificate
// verifier API and the identity API all authenticate clients with it.
//
// # Stored hash (unchanged since the first release)
//
// A secret is stored as HMAC-SHA256(key, secret), 32 bytes, where key is
// the provider's "client-secret" key (oidc derives it from its master
// secret). Client secrets are 32 random bytes issued by the server, so a
// slow password hash would add latency to every token request without
// adding security; the key keeps a leaked hash table useless.
package clientauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// ErrInvalidCredentials is returned for an unknown client, a public client
// (it has no secret) or a wrong secret; callers answer all three alike.
var ErrInvalidCredentials = errors.New("clientauth: invalid client credentials")

// MinKeySize is the shortest accepted hash key.
const MinKeySize = 32

// Config holds an Authenticator's key and dependencies.
type Config struct {
	Key    []byte           // HMAC key, at least MinKeySize bytes (required)
	Now    func() time.Time // decides whether a rotated secret is still valid; time.Now when nil
	Logger *slog.Logger     // receives failures; a discarding logger when nil
}

// ClientGetter reads a client by id (store.ClientStore satisfies it).
type ClientGetter interface {
	Get(ctx context.Context, id string) (*store.Client, error)
}

// Authenticator hashes and checks client secrets. It is safe for
// concurrent use.
type Authenticator struct {
	key []byte
	now func() time.Time
	log *slog.Logger
}

// New checks cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("clientauth: key must be at least %d bytes", MinKeySize)
	}
	a := &Authenticator{key: append([]byte(nil), cfg.Key...), now: cfg.Now, log: cfg.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Hash returns the stored form of secret: HMAC-SHA256 under the key.
func (a *Authenticator) Hash(secret []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write(secret)
	return m.Sum(nil)
}

// Match reports, in constant time, whether secret hashes to hash. An empty
// hash (a public client's) matches nothing.
func (a *Authenticator) Match(hash, secret []byte) bool {
	return len(hash) != 0 && hmac.Equal(a.Hash(secret), hash)
}

// RotatedHashes returns the hash of c's previous secret while its rotation
// grace period lasts at now, else nil.
func RotatedHashes(c *store.Client, now time.Time) [][]byte {
	if len(c.SecretHashOld) == 0 || !now.Before(c.SecretOldExpiresAt) {
		return nil
	}
	return [][]byte{c.SecretHashOld}
}

// Verify checks secret against c's current secret and, during a rotation's
// grace period, its previous one. It returns ErrInvalidCredentials (and
// reports the failure) for a public client or a wrong secret.
func (a *Authenticator) Verify(ctx context.Context, c *store.Client, secret []byte) error {
	if c.Public {
		a.Failed(ctx, c.ID, "public client presented a secret")
		return ErrInvalidCredentials
	}
	ok := a.Match(c.SecretHash, secret)
	for _, h := range RotatedHashes(c, a.now()) {
		// Both hashes are always compared, so timing does not tell which matched.
		ok = a.Match(h, secret) || ok
	}
	if !ok {
		a.Failed(ctx, c.ID, "wrong secret")
		return ErrInvalidCredentials
	}
	return nil
}

// Authenticate reads client id from clients and verifies secret. An
// unknown client is ErrInvalidCredentials; any other store error is
// returned wrapped, for the caller to answer as a fault, not a refusal.
func (a *Authenticator) Authenticate(ctx context.Context, clients ClientGetter, id, secret string) (*store.Client, error) {
	if id == "" || secret == "" {
		a.Failed(ctx, id, "missing client id or secret")
		return nil, ErrInvalidCredentials
	}
	c, err := clients.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.Failed(ctx, id, "unknown client")
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("clientauth: read client %s: %w", id, err)
	}
	if err := a.Verify(ctx, c, []byte(secret)); err != nil {
		return nil, err
	}
	return c, nil
}

// Failed reports a failed client authentication: logged with the client id
// and the reason, never the secret. It is the one place every surface
// reports failures to, so limiting repeated failures per client belongs here.
func (a *Authenticator) Failed(ctx context.Context, clientID, reason string) {
	a.log.WarnContext(ctx, "client authentication failed", "client_id", clientID, "reason", reason)
}
