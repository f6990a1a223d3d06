package oidc

import (
	"context"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

// The storage CIBA needs, and nothing more (fosite's
// handler/oauth2/storage.go): requests, the citizen's numbered slots, the
// per-client limit and the polling pace live in the ephemeral store; the
// citizen is found by ID number and read for the profile claim.

// cibaEphemeral is CIBA's part of the ephemeral store.
type cibaEphemeral interface {
	kvGetter
	kvSetter
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Take(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	Allow(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, retryAfter time.Duration, err error)
}

// cibaCitizens is CIBA's part of the citizen register.
type cibaCitizens interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
	GetByIDNumber(ctx context.Context, idNumber string) (*store.Citizen, error)
}

var (
	_ cibaEphemeral = ephemeral.Store(nil)
	_ cibaCitizens  = store.CitizenStore(nil)
)
