package sqlstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/trustid/trustid/internal/store"
)

type passkeys struct{ s *Store }

const passkeyCols = `credential_id, citizen_id, name, credential, sign_count, created_at, last_used_at`

func (p passkeys) scan(r Row) (*store.Passkey, error) {
	var v store.Passkey
	var count int64
	if err := r.Scan(&v.CredentialID, &v.CitizenID, &v.Name, &v.Credential, &count, tsd(&v.CreatedAt), tsd(&v.LastUsedAt)); err != nil {
		return nil, err
	}
	v.SignCount = uint32(count)
	if len(v.Credential) == 0 {
		v.Credential = nil
	}
	return &v, nil
}

func (p passkeys) Create(ctx context.Context, v *store.Passkey) error {
	if len(v.CredentialID) == 0 || v.CitizenID == "" {
		return fmt.Errorf("store: create passkey: credential id and citizen id are required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = p.s.clock()
	}
	v.CreatedAt, v.LastUsedAt = utc(v.CreatedAt), utc(v.LastUsedAt)
	_, err := p.s.b.Exec(ctx, `INSERT INTO passkeys (`+passkeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.CredentialID, v.CitizenID, v.Name, v.Credential, int64(v.SignCount), p.s.ts(v.CreatedAt), p.s.ts(v.LastUsedAt))
	return p.s.wrap("create passkey", err)
}

func (p passkeys) Get(ctx context.Context, id []byte) (*store.Passkey, error) {
	v, err := p.scan(p.s.b.QueryRow(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE credential_id = ?`, id))
	return v, p.s.wrap("get passkey", err)
}

func (p passkeys) ListByCitizen(ctx context.Context, citizenID string) ([]*store.Passkey, error) {
	out, err := collect(ctx, p.s.b, p.scan, `SELECT `+passkeyCols+` FROM passkeys WHERE citizen_id = ? ORDER BY created_at, credential_id`, citizenID)
	return out, p.s.wrap("list passkeys", err)
}

func (p passkeys) Update(ctx context.Context, id []byte, fn func(*store.Passkey) error) (*store.Passkey, error) {
	var out *store.Passkey
	err := p.s.b.WriteTx(ctx, func(q Querier) error {
		cur, err := p.scan(q.QueryRow(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE credential_id = ?`+p.s.d.ForUpdate, id))
		if err != nil {
			return err
		}
		citizen, created := cur.CitizenID, cur.CreatedAt
		if err := fn(cur); err != nil {
			return fmt.Errorf("updater: %w", err)
		}
		if !bytes.Equal(cur.CredentialID, id) {
			return fmt.Errorf("credential id cannot change")
		}
		cur.CitizenID, cur.CreatedAt, cur.LastUsedAt = citizen, created, utc(cur.LastUsedAt)
		_, err = q.Exec(ctx, `UPDATE passkeys SET name = ?, credential = ?, sign_count = ?, last_used_at = ? WHERE credential_id = ?`,
			cur.Name, cur.Credential, int64(cur.SignCount), p.s.ts(cur.LastUsedAt), id)
		out = cur
		return err
	})
	if err != nil {
		return nil, p.s.wrap("update passkey", err)
	}
	return out, nil
}

func (p passkeys) Delete(ctx context.Context, id []byte) error {
	n, err := p.s.b.Exec(ctx, `DELETE FROM passkeys WHERE credential_id = ?`, id)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return p.s.wrap("delete passkey", err)
}
