package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/ory/fosite"
)

// ErrSecretMismatch is returned by SecretHasher.Compare for a wrong secret.
var ErrSecretMismatch = errors.New("oidc: client secret mismatch")

// SecretHasher hashes client secrets with HMAC-SHA256 under a server key.
// Client secrets are 32 random bytes, so a slow password hash (bcrypt) would
// add latency to every token request without adding security: nobody can
// guess 256 bits, and the key keeps a leaked hash table useless.
type SecretHasher struct{ key []byte }

var _ fosite.Hasher = (*SecretHasher)(nil)

// NewSecretHasher returns a hasher keyed by key (at least 32 bytes).
func NewSecretHasher(key []byte) (*SecretHasher, error) {
	if len(key) < 32 {
		return nil, errors.New("oidc: client secret key must be at least 32 bytes")
	}
	return &SecretHasher{key: append([]byte(nil), key...)}, nil
}

// Hash implements fosite.Hasher.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// Compare implements fosite.Hasher in constant time.
func (h *SecretHasher) Compare(ctx context.Context, hash, data []byte) error {
	got, _ := h.Hash(ctx, data)
	if len(hash) == 0 || !hmac.Equal(got, hash) {
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
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("trustid-oidc:" + purpose))
	return m.Sum(nil)
}
