package oidc

import (
	"context"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// The storage dynamic registration needs (fosite's
// handler/oauth2/storage.go): the per-address limit in the ephemeral
// store. Clients are created through ClientAdmin (clients_storage.go).

// registrationLimits is registration's part of the ephemeral store.
type registrationLimits interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (allowed bool, retryAfter time.Duration, err error)
}

var _ registrationLimits = ephemeral.Store(nil)
