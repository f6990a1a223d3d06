package sqlstore

import (
	"context"
	"fmt"

	"github.com/trustid/trustid/internal/store"
)

type clients struct{ s *Store }

const clientCols = `id, name, secret_hash, secret_hash_old, secret_old_expires_at, public, first_party,
	redirect_uris, post_logout_uris, backchannel_logout_uri, grant_types, response_types, scopes, claims,
	sector_identifier, role, created_at, updated_at, token_endpoint_auth_method, jwks, id_token_signed_response_alg`

const clientPlaceholders = `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`

func (c clients) scan(r Row) (*store.Client, error) {
	var v store.Client
	err := r.Scan(&v.ID, &v.Name, &v.SecretHash, &v.SecretHashOld, tsd(&v.SecretOldExpiresAt), &v.Public, &v.FirstParty,
		strsDest{&v.RedirectURIs}, strsDest{&v.PostLogoutURIs}, &v.BackchannelLogoutURI, strsDest{&v.GrantTypes},
		strsDest{&v.ResponseTypes}, strsDest{&v.Scopes}, strsDest{&v.Claims}, &v.SectorIdentifier, &v.Role,
		tsd(&v.CreatedAt), tsd(&v.UpdatedAt), &v.AuthMethod, &v.JWKS, &v.IDTokenAlg)
	if err != nil {
		return nil, err
	}
	if len(v.SecretHash) == 0 {
		v.SecretHash = nil
	}
	if len(v.SecretHashOld) == 0 {
		v.SecretHashOld = nil
	}
	return &v, nil
}

func (c clients) args(v *store.Client) []any {
	return []any{v.ID, v.Name, v.SecretHash, v.SecretHashOld, c.s.ts(v.SecretOldExpiresAt), v.Public, v.FirstParty,
		strs(v.RedirectURIs), strs(v.PostLogoutURIs), v.BackchannelLogoutURI, strs(v.GrantTypes),
		strs(v.ResponseTypes), strs(v.Scopes), strs(v.Claims), v.SectorIdentifier, v.Role,
		c.s.ts(v.CreatedAt), c.s.ts(v.UpdatedAt), v.AuthMethod, v.JWKS, v.IDTokenAlg}
}

func (c clients) Create(ctx context.Context, v *store.Client) error {
	if v.ID == "" {
		return fmt.Errorf("store: create client: id is required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = c.s.clock()
	}
	if v.UpdatedAt.IsZero() {
		v.UpdatedAt = v.CreatedAt
	}
	v.CreatedAt, v.UpdatedAt, v.SecretOldExpiresAt = utc(v.CreatedAt), utc(v.UpdatedAt), utc(v.SecretOldExpiresAt)
	_, err := c.s.b.Exec(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (`+clientPlaceholders+`)`, c.args(v)...)
	return c.s.wrap("create client", err)
}

func (c clients) Get(ctx context.Context, id string) (*store.Client, error) {
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE id = ?`, id))
	return v, c.s.wrap("get client", err)
}

func (c clients) Update(ctx context.Context, id string, fn func(*store.Client) error) (*store.Client, error) {
	var out *store.Client
	err := c.s.b.WriteTx(ctx, func(q Querier) error {
		cur, err := c.scan(q.QueryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE id = ?`+c.s.d.ForUpdate, id))
		if err != nil {
			return err
		}
		created := cur.CreatedAt
		if err := fn(cur); err != nil {
			return fmt.Errorf("updater: %w", err)
		}
		cur.ID, cur.CreatedAt, cur.UpdatedAt, cur.SecretOldExpiresAt = id, created, c.s.clock(), utc(cur.SecretOldExpiresAt)
		// Delete and re-insert would fire the consents cascade: update in place.
		a := c.args(cur)
		_, err = q.Exec(ctx, `UPDATE clients SET name = ?, secret_hash = ?, secret_hash_old = ?, secret_old_expires_at = ?,
			public = ?, first_party = ?, redirect_uris = ?, post_logout_uris = ?, backchannel_logout_uri = ?, grant_types = ?,
			response_types = ?, scopes = ?, claims = ?, sector_identifier = ?, role = ?, updated_at = ?,
			token_endpoint_auth_method = ?, jwks = ?, id_token_signed_response_alg = ? WHERE id = ?`,
			append(append([]any{}, a[1:16]...), a[17], a[18], a[19], a[20], id)...) // all but id and created_at
		out = cur
		return err
	})
	if err != nil {
		return nil, c.s.wrap("update client "+id, err)
	}
	return out, nil
}

func (c clients) Delete(ctx context.Context, id string) error {
	n, err := c.s.b.Exec(ctx, `DELETE FROM clients WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return c.s.wrap("delete client", err)
}

func (c clients) List(ctx context.Context) ([]*store.Client, error) {
	out, err := collect(ctx, c.s.b, c.scan, `SELECT `+clientCols+` FROM clients ORDER BY id`)
	return out, c.s.wrap("list clients", err)
}
