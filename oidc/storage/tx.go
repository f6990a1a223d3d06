package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/store"
)

// fosite wraps each grant's writes in BeginTX ... Commit. A refresh is
// RotateRefreshToken (consume the old token, revoke the family's access
// tokens), CreateAccessTokenSession and CreateRefreshTokenSession; a code
// exchange is InvalidateAuthorizeCodeSession and the same two creates. Run
// as a store transaction that is BEGIN, four statements and COMMIT: six
// round trips to the database. So BeginTX opens nothing: the consume is
// recorded, the creates that follow it are collected, and Commit hands them
// to store.OAuthStore.Rotate, one atomic write (one statement on
// PostgreSQL). Any other call inside the transaction (a read, a delete, a
// reuse revocation) opens the store transaction first and runs the
// collected work in it, so calls keep their order and the whole stays
// all-or-nothing; Commit and Rollback then end that transaction.
//
// With ephemeral access tokens (access.go) the access tokens a
// transaction creates are kept in it too: before the durable write, Commit
// stores them (storeATs), so that an ephemeral store that refuses writes
// fails the grant before it spends the code or refresh token; after it,
// Commit makes a refresh's new token the family's current one (commitATs).

var errNoTx = errors.New("oidc/storage: no open transaction in context")

type txKey struct{}

// tx is the transaction of a context returned by BeginTX. Like the context,
// it is used by one goroutine at a time.
type tx struct {
	s *Storage
	// storeCtx carries the store's transaction once opened (see open).
	storeCtx context.Context
	opened   bool
	pending  *consumeOp // a deferred consume and the records created after it
	done     bool
	// Ephemeral access tokens: those created in the transaction, and the
	// request ID of the family it rotates.
	ats    []pendingAT
	family string
	// A refresh: the token the client presented (holder) and the refresh
	// token created for it (successor); see keepRetryable.
	holder    string
	successor *store.OAuthRecord
	// The last request encoded in the transaction and its encoding:
	// fosite stores one request as both the access and the refresh token.
	encoded     fosite.Requester
	encodedData []byte
}

// consumeOp is one store.OAuthStore.Rotate call.
type consumeOp struct {
	kind      store.OAuthKind
	sig       string
	revoke    store.OAuthKind // "" for none
	requestID string
	inactive  error // what fosite expects for an already consumed record
	recs      []*store.OAuthRecord
}

// encodeIn is encode, once per request inside a transaction: a refresh or
// code exchange stores the same request object (fosite's sanitized copy,
// not changed between the creates) as its access and its refresh token.
// Callers get their own copy of the bytes.
func (s *Storage) encodeIn(ctx context.Context, r fosite.Requester) ([]byte, error) {
	t := s.txFrom(ctx)
	if t == nil {
		return encode(r)
	}
	if t.encoded != nil && sameRequest(t.encoded, r) {
		return bytes.Clone(t.encodedData), nil
	}
	data, err := encode(r)
	if err != nil {
		return nil, err
	}
	t.encoded, t.encodedData = r, data
	return bytes.Clone(data), nil
}

// sameRequest reports whether a and b are the same request object
// (fosite's requesters are pointers; anything else is never the same).
func sameRequest(a, b fosite.Requester) bool {
	pa, pb := reflect.ValueOf(a), reflect.ValueOf(b)
	return pa.Kind() == reflect.Pointer && pb.Kind() == reflect.Pointer && pa.Type() == pb.Type() && pa.Pointer() == pb.Pointer()
}

func (s *Storage) txFrom(ctx context.Context) *tx {
	t, _ := ctx.Value(txKey{}).(*tx)
	if t == nil || t.s != s {
		return nil
	}
	return t
}

// BeginTX implements fosite's storage.Transactional. It opens no database
// transaction (see above); calls made with the returned context commit
// together at Commit or not at all.
func (s *Storage) BeginTX(ctx context.Context) (context.Context, error) {
	if t := s.txFrom(ctx); t != nil && !t.done {
		return nil, errors.New("oidc/storage: transaction already open in context")
	}
	return context.WithValue(ctx, txKey{}, &tx{s: s}), nil
}

// Commit implements fosite's storage.Transactional: it runs the deferred
// rotation, or commits the store transaction. A rotation that lost to a
// concurrent one returns the consumed kind's fosite error
// (fosite.ErrInactiveToken for a refresh token).
func (s *Storage) Commit(ctx context.Context) error {
	t := s.txFrom(ctx)
	if t == nil || t.done {
		return fmt.Errorf("oidc/storage: commit: %w", errNoTx)
	}
	t.done = true
	if !s.ephAT {
		return s.commitDurable(ctx, t)
	}
	// The access tokens go to the ephemeral store before the durable write
	// (storeATs): if that store is down, the code or refresh token is not
	// spent and the client can retry with it. Stored tokens are unknown to
	// anyone until Commit returns, so a failed durable write drops them.
	early := len(t.ats) > 0 && (t.pending != nil || t.opened)
	if early {
		if err := s.storeATs(ctx, t); err != nil {
			if t.opened {
				if tr, ok := s.st.(store.Transactor); ok {
					_ = tr.Rollback(t.storeCtx)
				}
			}
			s.dropATs(ctx, t.ats)
			return err
		}
	}
	if err := s.commitDurable(ctx, t); err != nil {
		if early {
			s.dropATs(ctx, t.ats)
		}
		return err
	}
	return s.commitATs(ctx, t, early)
}

func (s *Storage) commitDurable(ctx context.Context, t *tx) error {
	if !t.opened {
		if p := t.pending; p != nil {
			t.pending = nil
			return s.consume(ctx, p)
		}
		return nil
	}
	if tr, ok := s.st.(store.Transactor); ok {
		return tr.Commit(t.storeCtx)
	}
	return nil
}

// Rollback implements fosite's storage.Transactional: deferred work is
// dropped, an open store transaction rolled back. After Commit or a first
// Rollback it does nothing.
func (s *Storage) Rollback(ctx context.Context) error {
	t := s.txFrom(ctx)
	if t == nil || t.done {
		return nil
	}
	t.done = true
	t.pending = nil
	if tr, ok := s.st.(store.Transactor); ok && t.opened {
		return tr.Rollback(t.storeCtx)
	}
	return nil
}

// open returns the context a store call must use: outside a transaction
// ctx itself; inside one, ctx joined to the store transaction, which it
// opens on first use, running the deferred work in it first. A store that
// is not a store.Transactor commits each call alone, as without BeginTX.
func (s *Storage) open(ctx context.Context) (context.Context, error) {
	t := s.txFrom(ctx)
	if t == nil {
		return ctx, nil
	}
	if t.done {
		return nil, fmt.Errorf("oidc/storage: %w (already committed or rolled back)", errNoTx)
	}
	if !t.opened {
		t.storeCtx = ctx
		if tr, ok := s.st.(store.Transactor); ok {
			sctx, err := tr.BeginTx(ctx)
			if err != nil {
				return nil, fmt.Errorf("oidc/storage: begin: %w", err)
			}
			t.storeCtx = sctx
		}
		t.opened = true
		if p := t.pending; p != nil {
			t.pending = nil
			if err := s.consume(joinTx(ctx, t.storeCtx), p); err != nil {
				return nil, err
			}
		}
	}
	return joinTx(ctx, t.storeCtx), nil
}

// joined is open without opening: reads that need no transaction (clients)
// join it only when one is open.
func (s *Storage) joined(ctx context.Context) context.Context {
	if t := s.txFrom(ctx); t != nil && t.opened && !t.done {
		return joinTx(ctx, t.storeCtx)
	}
	return ctx
}

// deferConsume records op to run at Commit when ctx is a transaction with
// nothing run yet; it reports whether it did.
func (s *Storage) deferConsume(ctx context.Context, op *consumeOp) bool {
	t := s.txFrom(ctx)
	if t == nil || t.done || t.opened || t.pending != nil {
		return false
	}
	t.pending = op
	return true
}

// deferCreate adds rec to the deferred consume of ctx, if there is one.
func (s *Storage) deferCreate(ctx context.Context, rec *store.OAuthRecord) bool {
	t := s.txFrom(ctx)
	if t == nil || t.done || t.opened || t.pending == nil {
		return false
	}
	t.pending.recs = append(t.pending.recs, rec)
	return true
}

// consume runs op now (alone, or in the transaction ctx carries).
func (s *Storage) consume(ctx context.Context, op *consumeOp) error {
	err := s.st.OAuth().Rotate(ctx, op.kind, op.sig, op.revoke, op.requestID, op.recs...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", op.inactive, err)
	case errors.Is(err, store.ErrNotFound):
		return mapErr(err)
	}
	return fmt.Errorf("oidc/storage: consume %s: %w", op.kind, err)
}

// txCtx is a call's context (deadline, cancellation, values) that also
// carries the store transaction opened by an earlier call of the same
// fosite transaction.
type txCtx struct {
	context.Context
	store context.Context
}

func joinTx(ctx, storeCtx context.Context) context.Context {
	if ctx == storeCtx {
		return ctx
	}
	return txCtx{ctx, storeCtx}
}

func (c txCtx) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.store.Value(key)
}
