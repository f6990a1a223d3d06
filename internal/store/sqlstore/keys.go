package sqlstore

import (
	"context"
	"fmt"

	"github.com/trustid/trustid/internal/store"
)

type keys struct{ s *Store }

const keyCols = `id, use, alg, private, public, created_at, active_at, retire_at, expires_at`

func (k keys) scan(r Row) (*store.SigningKey, error) {
	var v store.SigningKey
	var sealed []byte
	if err := r.Scan(&v.ID, &v.Use, &v.Alg, &sealed, &v.Public, tsd(&v.CreatedAt), tsd(&v.ActiveAt), tsd(&v.RetireAt), tsd(&v.ExpiresAt)); err != nil {
		return nil, err
	}
	pt, err := k.s.openCol(sealed, "signing_keys", "private", v.ID)
	if err != nil {
		return nil, err
	}
	if len(pt) > 0 {
		v.Private = pt
	}
	if len(v.Public) == 0 {
		v.Public = nil
	}
	return &v, nil
}

func (k keys) Create(ctx context.Context, v *store.SigningKey) error {
	if v.ID == "" {
		return fmt.Errorf("store: create signing key: id is required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = k.s.clock()
	}
	v.CreatedAt, v.ActiveAt, v.RetireAt, v.ExpiresAt = utc(v.CreatedAt), utc(v.ActiveAt), utc(v.RetireAt), utc(v.ExpiresAt)
	sealed, err := k.s.sealCol(v.Private, "signing_keys", "private", v.ID)
	if err != nil {
		return err
	}
	_, err = k.s.b.Exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.Use, v.Alg, sealed, v.Public, k.s.ts(v.CreatedAt), k.s.ts(v.ActiveAt), k.s.ts(v.RetireAt), k.s.ts(v.ExpiresAt))
	return k.s.wrap("create signing key", err)
}

func (k keys) Get(ctx context.Context, id string) (*store.SigningKey, error) {
	v, err := k.scan(k.s.b.QueryRow(ctx, `SELECT `+keyCols+` FROM signing_keys WHERE id = ?`, id))
	return v, k.s.wrap("get signing key", err)
}

func (k keys) List(ctx context.Context, use string) ([]*store.SigningKey, error) {
	q, args := `SELECT `+keyCols+` FROM signing_keys ORDER BY created_at, id`, []any(nil)
	if use != "" {
		q, args = `SELECT `+keyCols+` FROM signing_keys WHERE use = ? ORDER BY created_at, id`, []any{use}
	}
	out, err := collect(ctx, k.s.b, k.scan, q, args...)
	return out, k.s.wrap("list signing keys", err)
}

func (k keys) Delete(ctx context.Context, id string) error {
	n, err := k.s.b.Exec(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return k.s.wrap("delete signing key", err)
}
