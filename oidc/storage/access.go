package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/ephemeral"
)

// Ephemeral access tokens (Config.AccessTokens = AccessTokensEphemeral).
//
// An access token is a short-lived bearer credential: keeping it in the
// ephemeral store saves a database write (and its WAL flush) per token.
// Losing the store only refuses tokens, which clients replace by
// refreshing; a lost token is never wrongly accepted.
//
// Keys:
//   - atPrefix+signature: the request as encode writes it (it carries the
//     request ID and identity claims), sealed with Config.Sealer (the
//     signature key-bound as associated data), expiring with the token,
//     never later than now+atTTL.
//   - curPrefix+requestID: the signature of the family's current access
//     token, or revokedMark. Set when a refresh rotates the family, or
//     when its access tokens are revoked; it lasts atTTL, longer than any
//     token issued before it was written.
//   - endPrefix+requestID: the family ended (RevokeRefreshToken). A
//     rotation that committed while the family was being revoked must not
//     make its new token current: the rotation writes curPrefix then reads
//     endPrefix, the revocation writes endPrefix then curPrefix, so one of
//     them sees the other and the family ends revoked.
//
// A token is valid iff its atPrefix key exists and curPrefix of its
// request is absent or names it. Family revocation thus costs one write,
// with no set of a family's tokens to keep.
const (
	atPrefix    = "oidc:at:"
	curPrefix   = "oidc:atcur:"
	endPrefix   = "oidc:atend:"
	revokedMark = "revoked"
)

// pendingAT is an access token created inside BeginTX, stored at Commit.
type pendingAT struct {
	sig  string
	data []byte
	ttl  time.Duration
}

// createEphemeralAT stores the token now, or at Commit inside BeginTX.
func (s *Storage) createEphemeralAT(ctx context.Context, sig string, r fosite.Requester) error {
	t := s.txFrom(ctx)
	if t != nil && t.done {
		return fmt.Errorf("oidc/storage: %w (already committed or rolled back)", errNoTx)
	}
	ttl := s.atTTL
	if sess := r.GetSession(); sess != nil {
		if exp := sess.GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
			ttl = min(ttl, exp.Sub(s.now()))
		}
	}
	if ttl <= 0 {
		return nil // expired already: a token never stored is refused
	}
	data, err := encode(r)
	if err != nil {
		return err
	}
	if s.sealer != nil {
		if data, err = s.sealer.Seal(data, []byte(atPrefix+sig)); err != nil {
			return fmt.Errorf("oidc/storage: seal access token: %w", err)
		}
	}
	p := pendingAT{sig: sig, data: data, ttl: ttl}
	if t != nil {
		t.ats = append(t.ats, p)
		return nil
	}
	return s.putATs(ctx, []pendingAT{p})
}

func (s *Storage) putATs(ctx context.Context, ats []pendingAT) error {
	for i, p := range ats {
		if err := s.eph.Set(ctx, atPrefix+p.sig, p.data, p.ttl); err != nil {
			s.dropATs(ctx, ats[:i])
			return fmt.Errorf("oidc/storage: create access token: %w", err)
		}
	}
	return nil
}

// dropATs deletes tokens never handed out (best effort: unknown to anyone,
// they only wait for their TTL if this fails).
func (s *Storage) dropATs(ctx context.Context, ats []pendingAT) {
	ctx = context.WithoutCancel(ctx)
	for _, p := range ats {
		_ = s.eph.Delete(ctx, atPrefix+p.sig)
	}
}

func (s *Storage) getEphemeralAT(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	b, err := s.eph.Get(ctx, atPrefix+sig)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", fosite.ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("oidc/storage: get access token: %w", err)
	}
	if s.sealer != nil {
		if b, err = s.sealer.Open(b, []byte(atPrefix+sig)); err != nil {
			return nil, fmt.Errorf("oidc/storage: open access token: %w", err)
		}
	}
	ar, err := s.decode(ctx, b, session)
	if err != nil {
		return nil, err
	}
	cur, err := s.eph.Get(ctx, curPrefix+ar.ID)
	switch {
	case errors.Is(err, ephemeral.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("oidc/storage: get access token family: %w", err)
	case string(cur) != sig:
		return ar, fosite.ErrInactiveToken
	}
	if t := s.txFrom(ctx); t != nil && t.family == ar.ID {
		return ar, fosite.ErrInactiveToken // rotated in this transaction
	}
	return ar, nil
}

func (s *Storage) deleteEphemeralAT(ctx context.Context, sig string) error {
	if err := s.eph.Delete(ctx, atPrefix+sig); err != nil {
		return fmt.Errorf("oidc/storage: delete access token: %w", err)
	}
	return nil
}

// revokeEphemeralATs makes every access token of the family invalid; end
// also bars a rotation in flight from making its new token current.
func (s *Storage) revokeEphemeralATs(ctx context.Context, requestID string, end bool) error {
	if end {
		if err := s.eph.Set(ctx, endPrefix+requestID, []byte{1}, s.atTTL); err != nil {
			return fmt.Errorf("oidc/storage: revoke access: %w", err)
		}
	}
	if err := s.eph.Set(ctx, curPrefix+requestID, []byte(revokedMark), s.atTTL); err != nil {
		return fmt.Errorf("oidc/storage: revoke access: %w", err)
	}
	return nil
}

// makeCurrent runs after a rotation's durable write: sig (or revokedMark)
// becomes the family's only valid access token. It fails with
// fosite.ErrInactiveToken if the family ended meanwhile.
func (s *Storage) makeCurrent(ctx context.Context, requestID, sig string) error {
	if err := s.eph.Set(ctx, curPrefix+requestID, []byte(sig), s.atTTL); err != nil {
		return fmt.Errorf("oidc/storage: rotate access token: %w", err)
	}
	_, err := s.eph.Get(ctx, endPrefix+requestID)
	switch {
	case errors.Is(err, ephemeral.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("oidc/storage: rotate access token: %w", err)
	}
	if err := s.eph.Set(context.WithoutCancel(ctx), curPrefix+requestID, []byte(revokedMark), s.atTTL); err != nil {
		return fmt.Errorf("oidc/storage: rotate access token: %w", err)
	}
	return fmt.Errorf("%w: family revoked during the rotation", fosite.ErrInactiveToken)
}

// commitATs is Commit's ephemeral part around the durable write: the
// transaction's access tokens are stored before it (never handed out if
// it fails) and, after a rotation, made current after it.
func (s *Storage) commitATs(ctx context.Context, t *tx, durable func() error) error {
	if err := s.putATs(ctx, t.ats); err != nil {
		return err
	}
	if err := durable(); err != nil {
		s.dropATs(ctx, t.ats)
		return err
	}
	if t.family == "" {
		return nil
	}
	cur := revokedMark
	if n := len(t.ats); n > 0 {
		cur = t.ats[n-1].sig
	}
	if err := s.makeCurrent(ctx, t.family, cur); err != nil {
		s.dropATs(ctx, t.ats)
		return err
	}
	return nil
}
