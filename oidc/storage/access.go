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
//   - curKey(requestID): the signature of the family's current access
//     token, or revokedMark. Set when a refresh rotates the family, or
//     when its access tokens are revoked; it lasts atTTL, longer than any
//     token issued before it was written.
//   - endKey(requestID): the family ended (RevokeRefreshToken). A commit
//     after it must not hand out tokens of the family, nor make a
//     rotation's new token current (see commitATs).
//
// The family keys carry the request ID as a Redis Cluster hash tag, so
// that one script can check endKey and write curKey (see package
// ephemeral).
//
// A token is valid iff its atPrefix key exists and curKey of its request
// is absent or names it. Family revocation thus costs one write, with no
// set of a family's tokens to keep.
const (
	atPrefix    = "oidc:at:"
	revokedMark = "revoked"
)

func curKey(requestID string) string { return "oidc:atcur:{" + requestID + "}" }
func endKey(requestID string) string { return "oidc:atend:{" + requestID + "}" }

// pendingAT is an access token created inside BeginTX, stored at Commit.
type pendingAT struct {
	sig  string
	req  string // request ID
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
	data, err := s.encodeIn(ctx, r)
	if err != nil {
		return err
	}
	if s.sealer != nil {
		if data, err = s.sealer.Seal(data, []byte(atPrefix+sig)); err != nil {
			return fmt.Errorf("oidc/storage: seal access token: %w", err)
		}
	}
	p := pendingAT{sig: sig, req: r.GetID(), data: data, ttl: ttl}
	if t != nil {
		t.ats = append(t.ats, p)
		return nil
	}
	if err := s.eph.Set(ctx, atPrefix+sig, data, ttl); err != nil {
		return fmt.Errorf("oidc/storage: create access token: %w", err)
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
	cur, err := s.eph.Get(ctx, curKey(ar.ID))
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
// also bars a commit in flight from handing out tokens of the family. The
// order matters (see commitATs): endKey first, then curKey.
func (s *Storage) revokeEphemeralATs(ctx context.Context, requestID string, end bool) error {
	if end {
		if err := s.eph.Set(ctx, endKey(requestID), []byte{1}, s.atTTL); err != nil {
			return fmt.Errorf("oidc/storage: revoke access: %w", err)
		}
	}
	if err := s.eph.Set(ctx, curKey(requestID), []byte(revokedMark), s.atTTL); err != nil {
		return fmt.Errorf("oidc/storage: revoke access: %w", err)
	}
	return nil
}

// storeATs is Commit's first ephemeral part, before the durable write: it
// stores the transaction's access tokens as plain writes (current for no
// one yet, known to no one), pipelined with concurrent writes. An error
// fails the commit before anything durable is written (the code or refresh
// token is not spent, so the client can retry it); the caller drops what
// may have been stored.
//
// It does not check whether the family has ended: commitATs does, after
// the durable write, and it alone decides whether tokens are handed out.
// A check here (it was a script reading endKey) could only fail earlier a
// commit that commitATs fails anyway, since endKey is never removed before
// it expires (atTTL): a family ended before this call is still ended at
// commitATs. What the early check saved on that rare path, a durable
// write, is harmless: the revocation deletes the family's refresh tokens
// (a rotation it races leaves at most a successor that no one was given),
// and the tokens stored here are dropped. Every refresh and code exchange
// gains a plain SET instead of a script (EVALSHA + EXISTS) in Redis.
func (s *Storage) storeATs(ctx context.Context, t *tx) error {
	for _, p := range t.ats {
		if err := s.eph.Set(ctx, atPrefix+p.sig, p.data, p.ttl); err != nil {
			return fmt.Errorf("oidc/storage: store access tokens: %w", err)
		}
	}
	return nil
}

// commitATs is Commit's ephemeral part after the durable write: one
// SetUnless (one round trip) stores the transaction's access tokens
// (unless storeATs did: stored) and, after a rotation, makes the new one
// (or revokedMark, if none was issued) the family's current token, unless
// endKey of the family exists. No one knows the new tokens before this
// returns, so when it fails, or finds the family ended, they are deleted
// (best effort) and never handed out: Commit returns an error though the
// durable write stands, as when the response is lost. That needs the
// ephemeral store to fail between storeATs and this call; a retry of the
// rotated refresh token within Config.RefreshGracePeriod still gets tokens
// (grace.go).
//
// Against a family revocation (revokeEphemeralATs with end: SET endKey,
// then SET curKey=revoked) the script that checks endKey and sets curKey
// is atomic, so either
//   - it ran before the revocation's SET endKey: curKey named the new
//     token until the revocation set it to revoked, as for any revocation
//     after a rotation; or
//   - it saw endKey and wrote nothing: the revocation sets (or has set)
//     curKey=revoked, which the new token does not match.
//
// Either way the family ends revoked; no interleaving leaves curKey naming
// the new token once endKey exists. In the second case the new tokens are
// stored with TTLs counted from before, which may outlast the
// revocation's mark a little, and a revocation that failed between its two
// writes left no mark: so the mark is written again, and the tokens
// deleted, best effort, before Commit reports fosite.ErrInactiveToken.
// That costs a second round trip only on this rare path.
//
// A code exchange (no rotation) is guarded by endKey too: if a reuse of the
// code revoked the family after the durable write, its tokens are not
// handed out. (A transaction's tokens belong to one request; the last
// one's is checked.)
func (s *Storage) commitATs(ctx context.Context, t *tx, stored bool) error {
	fam := t.family
	if fam == "" && len(t.ats) > 0 {
		fam = t.ats[len(t.ats)-1].req
	}
	if fam == "" {
		return nil
	}
	var cur []ephemeral.Write
	if t.family != "" {
		v := revokedMark
		if n := len(t.ats); n > 0 {
			v = t.ats[n-1].sig
		}
		cur = []ephemeral.Write{{Key: curKey(fam), Value: []byte(v), TTL: s.atTTL}}
	}
	var ats []ephemeral.Write
	if !stored {
		ats = make([]ephemeral.Write, len(t.ats))
		for i, p := range t.ats {
			ats[i] = ephemeral.Write{Key: atPrefix + p.sig, Value: p.data, TTL: p.ttl}
		}
	}
	ok, err := s.eph.SetUnless(ctx, endKey(fam), cur, ats...)
	if err != nil {
		s.dropATs(ctx, t.ats)
		s.keepRetryable(ctx, t)
		return fmt.Errorf("oidc/storage: store access tokens: %w", err)
	}
	if !ok {
		_ = s.eph.Set(context.WithoutCancel(ctx), curKey(fam), []byte(revokedMark), s.atTTL)
		s.dropATs(ctx, t.ats)
		return fmt.Errorf("%w: family revoked during the commit", fosite.ErrInactiveToken)
	}
	return nil
}
