package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustid/trustid/internal/store"
)

type certificates struct{ s *Store }

const certCols = `serial, citizen_id, status, device_key, key_id, level, payload, issued_at, expires_at, revoked_at, revoke_reason, status_index, device_name, last_used_at`

// ReasonSuperseded is the revoke reason of a certificate replaced by Issue.
const ReasonSuperseded = "superseded"

func (c certificates) scan(r Row) (*store.Certificate, error) {
	var v store.Certificate
	var status string
	if err := r.Scan(&v.Serial, &v.CitizenID, &status, &v.DeviceKey, &v.KeyID, &v.Level, &v.Payload,
		tsd(&v.IssuedAt), tsd(&v.ExpiresAt), tsd(&v.RevokedAt), &v.RevokeReason, &v.StatusIndex, &v.DeviceName, tsd(&v.LastUsedAt)); err != nil {
		return nil, err
	}
	v.Status = store.CertStatus(status)
	if len(v.DeviceKey) == 0 {
		v.DeviceKey = nil
	}
	if len(v.Payload) == 0 {
		v.Payload = nil
	}
	return &v, nil
}

func (c certificates) Issue(ctx context.Context, v *store.Certificate, maxActive int) error {
	if v.Serial == "" || v.CitizenID == "" {
		return fmt.Errorf("store: issue certificate: serial and citizen id are required")
	}
	if v.IssuedAt.IsZero() {
		v.IssuedAt = c.s.clock()
	}
	v.IssuedAt, v.ExpiresAt = utc(v.IssuedAt), utc(v.ExpiresAt)
	var idx int64
	err := c.s.b.WriteTx(ctx, func(q Querier) error {
		// Lock the citizen: concurrent issues for one citizen serialise here,
		// so the per-device supersession and the device limit hold.
		var id string
		if err := q.QueryRow(ctx, `SELECT id FROM citizens WHERE id = ?`+c.s.d.ForUpdate, v.CitizenID).Scan(&id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE certificates SET status = ?, revoked_at = ?, revoke_reason = ? WHERE citizen_id = ? AND status = ? AND device_key = ?`,
			string(store.CertRevoked), c.s.ts(v.IssuedAt), ReasonSuperseded, v.CitizenID, string(store.CertActive), v.DeviceKey); err != nil {
			return err
		}
		if maxActive > 0 {
			var n int
			if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM certificates WHERE citizen_id = ? AND status = ?`, v.CitizenID, string(store.CertActive)).Scan(&n); err != nil {
				return err
			}
			if n >= maxActive {
				return fmt.Errorf("%w: %d active certificates, at most %d", store.ErrConflict, n, maxActive)
			}
		}
		var err error
		if idx, err = c.s.d.NextStatusIndex(ctx, q); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `INSERT INTO certificates (`+certCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Serial, v.CitizenID, string(store.CertActive), v.DeviceKey, v.KeyID, v.Level, v.Payload,
			c.s.ts(v.IssuedAt), c.s.ts(v.ExpiresAt), nil, "", idx, v.DeviceName, nil)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("store: issue certificate: %w", err)
	}
	if err != nil {
		return c.s.wrap("issue certificate", err)
	}
	v.Status, v.StatusIndex, v.RevokedAt, v.RevokeReason, v.LastUsedAt = store.CertActive, idx, time.Time{}, "", time.Time{}
	return nil
}

func (c certificates) Get(ctx context.Context, serial string) (*store.Certificate, error) {
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+certCols+` FROM certificates WHERE serial = ?`, serial))
	return v, c.s.wrap("get certificate", err)
}

func (c certificates) ListByCitizen(ctx context.Context, citizenID string, now time.Time) ([]*store.Certificate, error) {
	out, err := collect(ctx, c.s.b, c.scan, `SELECT `+certCols+` FROM certificates WHERE citizen_id = ? AND expires_at > ? ORDER BY issued_at DESC, status_index DESC`,
		citizenID, c.s.ts(now))
	return out, c.s.wrap("list certificates", err)
}

func (c certificates) MarkUsed(ctx context.Context, serial string, at time.Time) error {
	n, err := c.s.b.Exec(ctx, `UPDATE certificates SET last_used_at = ? WHERE serial = ?`, c.s.ts(at), serial)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return c.s.wrap("mark certificate used", err)
}

func (c certificates) Revoke(ctx context.Context, serial, reason string, at time.Time) error {
	if at.IsZero() {
		at = c.s.clock()
	}
	n, err := c.s.b.Exec(ctx, `UPDATE certificates SET status = ?, revoked_at = ?, revoke_reason = ? WHERE serial = ? AND status = ?`,
		string(store.CertRevoked), c.s.ts(at), reason, serial, string(store.CertActive))
	if err == nil && n == 0 {
		// Already revoked (not an error) or missing.
		var s string
		err = c.s.b.QueryRow(ctx, `SELECT serial FROM certificates WHERE serial = ?`, serial).Scan(&s)
	}
	return c.s.wrap("revoke certificate", err)
}

func (c certificates) Revoked(ctx context.Context) ([]int64, error) {
	out, err := collect(ctx, c.s.b, func(r Row) (int64, error) {
		var i int64
		return i, r.Scan(&i)
	}, `SELECT status_index FROM certificates WHERE status = ? ORDER BY status_index`, string(store.CertRevoked))
	return out, c.s.wrap("revoked certificates", err)
}
