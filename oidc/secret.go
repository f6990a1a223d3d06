package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/clientauth"
)

// ErrSecretMismatch is returned by SecretHasher.Compare for a wrong secret.
var ErrSecretMismatch = errors.New("oidc: client secret mismatch")

// SecretHasher is fosite's view (fosite.Hasher) of the one client-secret
// component, internal/clientauth: the token, introspection and revocation
// endpoints check secrets through it, with the previous secret during a
// rotation given by storage.Client.GetRotatedHashes (clientauth.RotatedHashes).
type SecretHasher struct{ auth *clientauth.Authenticator }

var _ fosite.Hasher = (*SecretHasher)(nil)

// NewSecretHasher returns a hasher keyed by key (at least 32 bytes).
func NewSecretHasher(key []byte) (*SecretHasher, error) {
	a, err := clientauth.New(clientauth.Config{Key: key})
	if err != nil {
		return nil, errors.New("oidc: client secret key must be at least 32 bytes")
	}
	return &SecretHasher{auth: a}, nil
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return h.auth.Hash(data), nil
}

// Compare implements fosite.Hasher in constant time.
func (h *SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	if !h.auth.Match(hash, data) {
		return ErrSecretMismatch
	}
	return nil
}

// NewClientSecret returns a fresh secret: 32 random bytes, base64url.
func NewClientSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// deriveKey derives an independent key for purpose from the master secret.
// ClientSecretKey is the key client secrets are hashed under, derived from
// the provider's master secret (Config.Secret): what a clientauth.Authenticator
// shared with other client-authenticating APIs must be built with.
func ClientSecretKey(master []byte) []byte { return deriveKey(master, "client-secret") }

func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("trustid-oidc:" + purpose))
	return m.Sum(nil)
}
