package sqlstore

import (
	"context"
	"fmt"

	"github.com/trustid/trustid/internal/store"
)

type consents struct{ s *Store }

const consentCols = `citizen_id, client_id, scopes, claims, granted_at, updated_at, claims_granted_at`

func (c consents) scan(r Row) (*store.Consent, error) {
	var v store.Consent
	if err := r.Scan(&v.CitizenID, &v.ClientID, strsDest{&v.Scopes}, strsDest{&v.Claims}, tsd(&v.GrantedAt), tsd(&v.UpdatedAt), tsd(&v.ClaimsGrantedAt)); err != nil {
		return nil, err
	}
	return &v, nil
}

func (c consents) Put(ctx context.Context, v *store.Consent) error {
	if v.CitizenID == "" || v.ClientID == "" {
		return fmt.Errorf("store: put consent: citizen id and client id are required")
	}
	now := c.s.clock()
	if v.GrantedAt.IsZero() {
		v.GrantedAt = now
	}
	v.GrantedAt, v.UpdatedAt, v.ClaimsGrantedAt = utc(v.GrantedAt), now, utc(v.ClaimsGrantedAt)
	_, err := c.s.b.Exec(ctx, `INSERT INTO consents (`+consentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (citizen_id, client_id) DO UPDATE SET scopes = excluded.scopes, claims = excluded.claims,
		granted_at = excluded.granted_at, updated_at = excluded.updated_at, claims_granted_at = excluded.claims_granted_at`,
		v.CitizenID, v.ClientID, strs(v.Scopes), strs(v.Claims), c.s.ts(v.GrantedAt), c.s.ts(v.UpdatedAt), c.s.ts(v.ClaimsGrantedAt))
	return c.s.wrap("put consent", err)
}

func (c consents) Get(ctx context.Context, citizenID, clientID string) (*store.Consent, error) {
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+consentCols+` FROM consents WHERE citizen_id = ? AND client_id = ?`, citizenID, clientID))
	return v, c.s.wrap("get consent", err)
}

func (c consents) ListByCitizen(ctx context.Context, citizenID string) ([]*store.Consent, error) {
	out, err := collect(ctx, c.s.b, c.scan, `SELECT `+consentCols+` FROM consents WHERE citizen_id = ? ORDER BY client_id`, citizenID)
	return out, c.s.wrap("list consents", err)
}

func (c consents) Delete(ctx context.Context, citizenID, clientID string) error {
	n, err := c.s.b.Exec(ctx, `DELETE FROM consents WHERE citizen_id = ? AND client_id = ?`, citizenID, clientID)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return c.s.wrap("delete consent", err)
}
