package oidc

import (
	"context"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/oidc/storage"
)

// The storage the DPoP checker needs (fosite's handler/oauth2/storage.go):
// the replay cache lives in the ephemeral store, whole, because its memory
// markers go through ephemeral.MemorySince, which takes an
// ephemeral.Store; the authorization code's session is read to learn the
// key a code was bound to.

// dpopCodes is the DPoP checker's part of the OAuth storage.
type dpopCodes interface {
	GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error)
}

var _ dpopCodes = (*storage.Storage)(nil)
