package oidc

import (
	"context"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

// The storage the authorize/consent component needs (fosite's
// handler/oauth2/storage.go): login state, browser sessions and the
// failure counter in the ephemeral store; clients and citizens read;
// consents read and written.

// authorizeEphemeral is the authorizer's part of the ephemeral store.
type authorizeEphemeral interface {
	kvGetter
	kvSetter
	Delete(ctx context.Context, key string) error
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

// authorizeClients and authorizeCitizens are the reads of the registers.
type (
	authorizeClients interface {
		Get(ctx context.Context, id string) (*store.Client, error)
	}
	authorizeCitizens interface {
		Get(ctx context.Context, id string) (*store.Citizen, error)
	}
)

// authorizeConsents is the authorizer's part of the consent store.
type authorizeConsents interface {
	Get(ctx context.Context, citizenID, clientID string) (*store.Consent, error)
	Put(ctx context.Context, c *store.Consent) error
}

var (
	_ authorizeEphemeral = ephemeral.Store(nil)
	_ authorizeClients   = store.ClientStore(nil)
	_ authorizeCitizens  = store.CitizenStore(nil)
	_ authorizeConsents  = store.ConsentStore(nil)
)
