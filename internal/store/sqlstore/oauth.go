package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// oauth keeps fosite's records. Data is sealed: a session may carry
// identity claims (name, ID number) for the ID token.
type oauth struct{ s *Store }

const oauthCols = `kind, signature, request_id, client_id, subject, active, data, expires_at, created_at`

func oauthKey(kind store.OAuthKind, sig string) string { return string(kind) + "\x00" + sig }

func (o oauth) scan(r Row) (*store.OAuthRecord, error) {
	var v store.OAuthRecord
	var kind string
	var sealed []byte
	if err := r.Scan(&kind, &v.Signature, &v.RequestID, &v.ClientID, &v.Subject, &v.Active, &sealed, tsd(&v.ExpiresAt), tsd(&v.CreatedAt)); err != nil {
		return nil, err
	}
	v.Kind = store.OAuthKind(kind)
	if len(sealed) == 0 {
		return &v, nil // consumed: its data was dropped (see Consume)
	}
	pt, err := o.s.openCol(sealed, "oauth_records", "data", oauthKey(v.Kind, v.Signature))
	if err != nil {
		return nil, err
	}
	if len(pt) > 0 {
		v.Data = pt
	}
	return &v, nil
}

func (o oauth) Create(ctx context.Context, v *store.OAuthRecord) error {
	args, err := o.row(v)
	if err != nil {
		return err
	}
	_, err = o.s.b.Exec(ctx, `INSERT INTO oauth_records (`+oauthCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return o.s.wrap("create oauth "+string(v.Kind), err)
}

// row checks and normalises v for an insert and returns its column values
// in oauthCols order, Data sealed.
func (o oauth) row(v *store.OAuthRecord) ([]any, error) {
	if v.Kind == "" || v.Signature == "" {
		return nil, fmt.Errorf("store: create oauth record: kind and signature are required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = o.s.clock()
	}
	v.CreatedAt, v.ExpiresAt = utc(v.CreatedAt), utc(v.ExpiresAt)
	sealed, err := o.s.sealCol(v.Data, "oauth_records", "data", oauthKey(v.Kind, v.Signature))
	if err != nil {
		return nil, err
	}
	return []any{string(v.Kind), v.Signature, v.RequestID, v.ClientID, v.Subject, v.Active, sealed, o.s.ts(v.ExpiresAt), o.s.ts(v.CreatedAt)}, nil
}

func (o oauth) Get(ctx context.Context, kind store.OAuthKind, sig string) (*store.OAuthRecord, error) {
	var v *store.OAuthRecord
	var err error
	if o.batched(ctx) {
		v, err = o.s.oauthGets.Do(ctx, oauthRef{kind, sig})
	} else {
		v, err = o.get(ctx, kind, sig)
	}
	return v, o.s.wrap("get oauth "+string(kind), err)
}

// get is Get alone, unwrapped.
func (o oauth) get(ctx context.Context, kind store.OAuthKind, sig string) (*store.OAuthRecord, error) {
	return o.scan(o.s.b.QueryRow(ctx, `SELECT `+oauthCols+` FROM oauth_records WHERE kind = ? AND signature = ?`, string(kind), sig))
}

func (o oauth) Delete(ctx context.Context, kind store.OAuthKind, sig string) error {
	n, err := o.s.b.Exec(ctx, `DELETE FROM oauth_records WHERE kind = ? AND signature = ?`, string(kind), sig)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return o.s.wrap("delete oauth "+string(kind), err)
}

func (o oauth) Deactivate(ctx context.Context, kind store.OAuthKind, sig string) error {
	n, err := o.s.b.Exec(ctx, `UPDATE oauth_records SET active = ? WHERE kind = ? AND signature = ?`, false, string(kind), sig)
	if err == nil && n == 0 {
		// No row changed: in SQLite and PostgreSQL an UPDATE to the same
		// value still counts the row, so this is a missing record.
		err = ErrNoRows
	}
	return o.s.wrap("deactivate oauth "+string(kind), err)
}

func (o oauth) Consume(ctx context.Context, kind store.OAuthKind, sig string) error {
	return o.s.wrap("consume oauth "+string(kind), o.consume(ctx, o.s.b, kind, sig))
}

// consume is Consume on q, unwrapped.
func (o oauth) consume(ctx context.Context, q Querier, kind store.OAuthKind, sig string) error {
	n, err := q.Exec(ctx, `UPDATE oauth_records SET active = ?, data = ? WHERE kind = ? AND signature = ? AND active = ?`, false, []byte{}, string(kind), sig, true)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return o.whyNotConsumed(ctx, q, kind, sig)
}

// whyNotConsumed tells, after a consuming UPDATE changed nothing (the rare
// path), a missing record (ErrNoRows) from one already inactive.
func (o oauth) whyNotConsumed(ctx context.Context, q Querier, kind store.OAuthKind, sig string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM oauth_records WHERE kind = ? AND signature = ?`, string(kind), sig).Scan(&one)
	if err == nil {
		return fmt.Errorf("already inactive: %w", store.ErrConflict)
	}
	return err
}

// Rotate costs one statement in PostgreSQL: data-modifying CTEs consume the
// record, and only if that changed a row delete the revoked family and
// insert recs, so a grant needs no BEGIN/COMMIT round trips. All parts see
// one snapshot: the DELETE cannot remove the rows the INSERT adds. A
// concurrent rotation of the same record waits on its row lock and then
// finds it inactive, so its DELETE and INSERT do nothing. Elsewhere the same
// steps run in one write transaction.
func (o oauth) Rotate(ctx context.Context, kind store.OAuthKind, sig string, revoke store.OAuthKind, requestID string, recs ...*store.OAuthRecord) error {
	op := "rotate oauth " + string(kind)
	if revoke == kind {
		return fmt.Errorf("store: %s: revoke must differ from the consumed kind", op)
	}
	rows := make([][]any, len(recs))
	for i, r := range recs {
		args, err := o.row(r)
		if err != nil {
			return err
		}
		rows[i] = args
	}
	r := rotation{kind: kind, sig: sig, revoke: revoke, requestID: requestID, rows: rows}
	if o.batched(ctx) {
		_, err := o.s.oauthRotations.Do(ctx, r)
		return o.s.wrap(op, err)
	}
	if o.s.d.WritableCTE {
		return o.s.wrap(op, o.rotateCTE(ctx, r))
	}
	err := o.s.b.WriteTx(ctx, func(q Querier) error {
		if err := o.consume(ctx, q, kind, sig); err != nil {
			return err
		}
		if revoke != "" {
			if _, err := q.Exec(ctx, `DELETE FROM oauth_records WHERE kind = ? AND request_id = ?`, string(revoke), requestID); err != nil {
				return err
			}
		}
		for _, args := range rows {
			if _, err := q.Exec(ctx, `INSERT INTO oauth_records (`+oauthCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
				return err
			}
		}
		return nil
	})
	return o.s.wrap(op, err)
}

// oauthValues is one row of Rotate's INSERT: VALUES in a sub-select gets
// no column types from the target table, so every parameter is cast.
const oauthValues = `(?::text, ?::text, ?::text, ?::text, ?::text, ?::boolean, ?::bytea, ?::timestamptz, ?::timestamptz)`

func (o oauth) Update(ctx context.Context, kind store.OAuthKind, sig string, fn func(*store.OAuthRecord) error) (*store.OAuthRecord, error) {
	var out *store.OAuthRecord
	err := o.s.b.WriteTx(ctx, func(q Querier) error {
		cur, err := o.scan(q.QueryRow(ctx, `SELECT `+oauthCols+` FROM oauth_records WHERE kind = ? AND signature = ?`+o.s.d.ForUpdate, string(kind), sig))
		if err != nil {
			return err
		}
		created := cur.CreatedAt
		if err := fn(cur); err != nil {
			return fmt.Errorf("updater: %w", err)
		}
		cur.Kind, cur.Signature, cur.CreatedAt, cur.ExpiresAt = kind, sig, created, utc(cur.ExpiresAt)
		sealed, err := o.s.sealCol(cur.Data, "oauth_records", "data", oauthKey(kind, sig))
		if err != nil {
			return err
		}
		_, err = q.Exec(ctx, `UPDATE oauth_records SET request_id = ?, client_id = ?, subject = ?, active = ?, data = ?, expires_at = ? WHERE kind = ? AND signature = ?`,
			cur.RequestID, cur.ClientID, cur.Subject, cur.Active, sealed, o.s.ts(cur.ExpiresAt), string(kind), sig)
		out = cur
		return err
	})
	if err != nil {
		return nil, o.s.wrap("update oauth "+string(kind), err)
	}
	return out, nil
}

func (o oauth) DeleteByRequestID(ctx context.Context, kind store.OAuthKind, requestID string) (int, error) {
	n, err := o.s.b.Exec(ctx, `DELETE FROM oauth_records WHERE kind = ? AND request_id = ?`, string(kind), requestID)
	return int(n), o.s.wrap("delete oauth by request id", err)
}

func (o oauth) ListByRequestID(ctx context.Context, kind store.OAuthKind, requestID string, limit int) ([]*store.OAuthRecord, error) {
	q := `SELECT ` + oauthCols + ` FROM oauth_records WHERE kind = ? AND request_id = ? ORDER BY created_at DESC, signature DESC`
	args := []any{string(kind), requestID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	recs, err := collect(ctx, o.s.b, o.scan, q, args...)
	return recs, o.s.wrap("list oauth by request id", err)
}

func (o oauth) DeactivateByRequestID(ctx context.Context, kind store.OAuthKind, requestID string) (int, error) {
	n, err := o.s.b.Exec(ctx, `UPDATE oauth_records SET active = ? WHERE kind = ? AND request_id = ? AND active = ?`, false, string(kind), requestID, true)
	return int(n), o.s.wrap("deactivate oauth by request id", err)
}

func (o oauth) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := o.s.b.Exec(ctx, `DELETE FROM oauth_records WHERE expires_at IS NOT NULL AND expires_at < ?`, o.s.ts(now))
	return int(n), o.s.wrap("delete expired oauth records", err)
}
