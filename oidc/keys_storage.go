package oidc

import (
	"context"

	"github.com/trustid/trustid/internal/store"
)

// The storage the key ring needs (fosite's handler/oauth2/storage.go):
// list the provider's signing keys, create one, delete an expired one. It
// never reads a key by id.

// keyStorage is the key ring's part of the store.
type keyStorage interface {
	List(ctx context.Context, use string) ([]*store.SigningKey, error)
	Create(ctx context.Context, k *store.SigningKey) error
	Delete(ctx context.Context, id string) error
}

var _ keyStorage = store.KeyStore(nil)
