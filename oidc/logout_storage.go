package oidc

import (
	"context"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// The storage logout needs (fosite's handler/oauth2/storage.go): the
// clients, read for their logout URIs and names; the browser session,
// read under its lock and deleted from the ephemeral store; the access
// tokens of the session's grants, revoked in the OAuth storage.

// logoutClients is logout's part of the client register.
type logoutClients interface {
	Get(ctx context.Context, id string) (*store.Client, error)
}

// logoutSessions is logout's part of the ephemeral store: the session's
// lock (sessionLocker), and its read under the lock and deletion.
type logoutSessions interface {
	sessionLocker
}

// logoutTokens is logout's part of the OAuth storage.
type logoutTokens interface {
	RevokeAccessToken(ctx context.Context, requestID string) error
}

var (
	_ logoutClients  = store.ClientStore(nil)
	_ logoutSessions = ephemeral.Store(nil)
	_ logoutTokens   = (*storage.Storage)(nil)
)
