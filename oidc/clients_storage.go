package oidc

import (
	"context"

	"github.com/trustid/trustid/internal/store"
)

// The storage client administration needs (fosite's
// handler/oauth2/storage.go): the client register, all of it (create, read,
// list, update under a function, delete).

// clientStorage is ClientAdmin's part of the store.
type clientStorage interface {
	Create(ctx context.Context, c *store.Client) error
	Get(ctx context.Context, id string) (*store.Client, error)
	Update(ctx context.Context, id string, fn func(*store.Client) error) (*store.Client, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]*store.Client, error)
}

var _ clientStorage = store.ClientStore(nil)
