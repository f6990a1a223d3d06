package sqlstore

import (
	"context"
	"errors"
	"fmt"
)

// Tx is an open write transaction of a TxBackend.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// TxBackend is a Backend that can also open a transaction whose end the
// caller chooses (BeginTx / Commit / Rollback rather than a callback): the
// shape fosite's storage.Transactional asks for.
type TxBackend interface {
	Backend
	Begin(ctx context.Context) (Tx, error)
}

// ErrNoTx is returned by Commit and Rollback for a context that carries no
// transaction of this store.
var ErrNoTx = errors.New("sqlstore: no transaction in context")

type txKey struct{}

// ctxTx is the transaction a context carries, tied to the store that began
// it so another store (another schema or database) never runs in it.
type ctxTx struct {
	s    *Store
	tx   Tx
	done bool
}

// BeginTx returns a context in which every call on this store (reads,
// writes and updaters) runs in one write transaction, until Commit or
// Rollback with that context. It lets a change of several records (a
// refresh-token reuse revoking a family, or a rotation that follows other
// calls in the same fosite transaction; a plain rotation is one
// OAuthStore.Rotate statement) pay for one commit, and makes the change
// all-or-nothing. The context must be used by one goroutine at a
// time. Backends without TxBackend return ctx unchanged (each call commits
// on its own, as without BeginTx).
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if t := s.txFrom(ctx); t != nil {
		return nil, errors.New("sqlstore: transaction already open in context")
	}
	if s.tb == nil {
		return ctx, nil
	}
	tx, err := s.tb.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	return context.WithValue(ctx, txKey{}, &ctxTx{s: s, tx: tx}), nil
}

// Commit commits the transaction of ctx (see BeginTx); with a backend
// without TxBackend it does nothing.
func (s *Store) Commit(ctx context.Context) error {
	t := s.txFrom(ctx)
	if t == nil {
		if s.tb == nil {
			return nil
		}
		return ErrNoTx
	}
	if t.done {
		return fmt.Errorf("store: commit: %w", ErrNoTx)
	}
	t.done = true
	if err := t.tx.Commit(context.WithoutCancel(ctx)); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// Rollback rolls back the transaction of ctx; after Commit or a first
// Rollback it does nothing, so it is safe in deferred cleanup.
func (s *Store) Rollback(ctx context.Context) error {
	t := s.txFrom(ctx)
	if t == nil || t.done {
		return nil
	}
	t.done = true
	if err := t.tx.Rollback(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("store: rollback: %w", err)
	}
	return nil
}

func (s *Store) txFrom(ctx context.Context) *ctxTx {
	t, _ := ctx.Value(txKey{}).(*ctxTx)
	if t == nil || t.s != s {
		return nil
	}
	return t
}

// txAware is the Backend the store's queries go through: inside a context
// from BeginTx it runs them on that transaction, otherwise on the pool.
type txAware struct {
	s *Store
	b Backend
}

func (a txAware) q(ctx context.Context) (Querier, error) {
	t := a.s.txFrom(ctx)
	if t == nil {
		return a.b, nil
	}
	if t.done {
		return nil, fmt.Errorf("store: %w (already committed or rolled back)", ErrNoTx)
	}
	return t.tx, nil
}

func (a txAware) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	q, err := a.q(ctx)
	if err != nil {
		return 0, err
	}
	return q.Exec(ctx, query, args...)
}

func (a txAware) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	q, err := a.q(ctx)
	if err != nil {
		return nil, err
	}
	return q.Query(ctx, query, args...)
}

func (a txAware) QueryRow(ctx context.Context, query string, args ...any) Row {
	q, err := a.q(ctx)
	if err != nil {
		return errRow{err}
	}
	return q.QueryRow(ctx, query, args...)
}

// WriteTx inside an open transaction runs fn in it: its changes commit or
// roll back with the enclosing transaction.
func (a txAware) WriteTx(ctx context.Context, fn func(q Querier) error) error {
	t := a.s.txFrom(ctx)
	if t == nil {
		return a.b.WriteTx(ctx, fn)
	}
	if t.done {
		return fmt.Errorf("store: %w (already committed or rolled back)", ErrNoTx)
	}
	return fn(t.tx)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
