package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/store"
)

// Refresh token grace period (Config.RefreshGracePeriod; compare hydra's
// refresh_token_rotation.grace_period and dex's "refresh token already
// claimed", dexidp/dex#1418).
//
// A refresh whose answer never reached the client (client timeout, a
// server killed after the commit, the ephemeral store failing after the
// durable rotation) leaves the client with a rotated refresh token; its
// retry would be a reuse, which ends the family (RFC 6819 5.2.2.3). So a
// reuse of the rotated token P is a retry, not a reuse, while
//   - the family's newest refresh token C is active (never used) and was
//     issued less than the grace period ago, and
//   - P is the family's newest consumed one: C's parent, the token "just
//     rotated".
//
// The retry is answered as a refresh of C: C is rotated in P's place,
// the client gets a new access token and refresh token, and C and its
// access token stop working as after any rotation (they were, on this
// path, never received). The family lives on, with one active refresh
// token, so a later reuse of any rotated token still ends it. Any other
// reuse (older tokens, after the window, or after C was itself used) ends
// the family as before.
//
// The window runs from C's creation, and is carried forward by every
// retry that reaches it: a retry records (durably, kind OAuthGrace, keyed
// by C) that the window lasts until grace after it. A retry that fails
// because the ephemeral store refuses writes (the outage that lost the
// first answer) thus keeps the family alive until the store is back,
// however long the outage; a retry that succeeds consumes C, after which
// P is no longer C's parent and any reuse ends the family. When the server
// itself knows the answer was not given (keepRetryable), the window lasts
// as long as C, and names P as the token to accept, so that a client that
// retries only after the outage, or whose grace retry was itself
// committed but not answered, keeps its family.
//
// Only the token endpoint applies it (WithRefreshGrace): introspection and
// revocation of P still see a rotated token.

// OAuthGrace is the kind of the record that carries a refresh grace window
// forward (see above): keyed by the successor's signature, expiring when
// the window does.
const OAuthGrace store.OAuthKind = "grace"

type graceKey struct{}

// grace carries, through one token request, the rotation GetRefreshTokenSession
// chose for a retry: RotateRefreshToken consumes to instead of from.
type grace struct{ from, to string }

// WithRefreshGrace marks ctx as a token request's: a retried refresh token
// within Config.RefreshGracePeriod is then honoured (see grace.go).
func WithRefreshGrace(ctx context.Context) context.Context {
	return context.WithValue(ctx, graceKey{}, &grace{})
}

func graceFrom(ctx context.Context) *grace {
	g, _ := ctx.Value(graceKey{}).(*grace)
	return g
}

// retry returns the request of the family's active refresh token when
// consumed (the record of sig) is within its grace period; ok false
// otherwise. consumed qualifies when it is the active token's parent and
// the window (from the active token's creation, or carried forward by a
// grace record) is open, or when a grace record for the active token names
// it as the token its holder still has (keepRetryable).
func (s *Storage) retry(ctx context.Context, consumed *store.OAuthRecord, session fosite.Session) (fosite.Requester, bool, error) {
	g := graceFrom(ctx)
	if g == nil || s.grace <= 0 {
		return nil, false, nil
	}
	recs, err := s.st.OAuth().ListByRequestID(ctx, store.OAuthRefresh, consumed.RequestID, 2)
	if err != nil {
		return nil, false, fmt.Errorf("oidc/storage: refresh grace: %w", err)
	}
	if len(recs) != 2 {
		return nil, false, nil
	}
	c, p := recs[0], recs[1]
	if p.Active && !c.Active && c.CreatedAt.Equal(p.CreatedAt) {
		c, p = p, c // created in the same clock tick: the active one is the successor
	}
	now := s.now()
	if !c.Active || len(c.Data) == 0 || p.Active || !c.ExpiresAt.After(now) {
		return nil, false, nil
	}
	parent := p.Signature == consumed.Signature
	if !parent || now.Sub(c.CreatedAt) > s.grace {
		w, err := s.st.OAuth().Get(ctx, OAuthGrace, c.Signature)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("oidc/storage: refresh grace: %w", err)
		case !w.ExpiresAt.After(now):
			return nil, false, nil
		case !parent && string(w.Data) != consumed.Signature:
			return nil, false, nil
		}
	}
	if err := s.extendGrace(ctx, c, consumed.Signature, now.Add(s.grace)); err != nil {
		return nil, false, err
	}
	ar, err := s.decode(ctx, c.Data, session)
	if err != nil {
		return nil, false, err
	}
	g.from, g.to = consumed.Signature, c.Signature
	return ar, true, nil
}

// extendGrace records that the grace window of successor c lasts at least
// until until for a retry of holder (see above); a longer window already
// recorded stays.
func (s *Storage) extendGrace(ctx context.Context, c *store.OAuthRecord, holder string, until time.Time) error {
	rec := &store.OAuthRecord{Kind: OAuthGrace, Signature: c.Signature, RequestID: c.RequestID, ClientID: c.ClientID,
		Active: true, Data: []byte(holder), ExpiresAt: until.UTC(), CreatedAt: s.now().UTC()}
	err := s.st.OAuth().Create(ctx, rec)
	if errors.Is(err, store.ErrAlreadyExists) {
		_, err = s.st.OAuth().Update(ctx, OAuthGrace, c.Signature, func(r *store.OAuthRecord) error {
			if until.After(r.ExpiresAt) {
				r.ExpiresAt = until.UTC()
			}
			r.Data = []byte(holder)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("oidc/storage: refresh grace: %w", err)
	}
	return nil
}

// keepRetryable runs when a refresh's durable rotation committed but its
// answer cannot be given (the ephemeral store failed after the durable
// write, commitATs): the server knows the client never got the new refresh
// token, so the token the client holds stays a retry for as long as the
// successor lives, not only for the grace period: a client that waits out
// the outage before it retries keeps its family (the fault suite's "Redis
// refusing writes" scenario lost one that retried 5 s after its last try).
// The first retry that succeeds consumes the successor, and from then on
// any reuse ends the family as usual. Best effort: if the durable store
// also fails, the grace period alone applies.
func (s *Storage) keepRetryable(ctx context.Context, t *tx) {
	if s.grace <= 0 || t.holder == "" || t.successor == nil {
		return
	}
	_ = s.extendGrace(context.WithoutCancel(ctx), t.successor, t.holder, t.successor.ExpiresAt)
}
