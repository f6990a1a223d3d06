package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trustid/trustid/internal/store"
)

const idNumberDomain = "citizen.id_number"

// idNumberHash is the lookup hash of an ID number. It is taken over the
// canonical form (spaces trimmed, upper case: the check character of a
// resident ID may be written x or X) so one number cannot be registered
// twice in different spellings.
func (s *Store) idNumberHash(idNumber string) []byte {
	return s.ring.LookupHash(idNumberDomain, []byte(strings.ToUpper(strings.TrimSpace(idNumber))))
}

type citizens struct{ s *Store }

const citizenCols = `id, id_number, name, disabled, created_at, updated_at, network_number`

func (c citizens) scan(r Row) (*store.Citizen, error) {
	var v store.Citizen
	var sealed []byte
	var nn *string
	if err := r.Scan(&v.ID, &sealed, &v.Name, &v.Disabled, tsd(&v.CreatedAt), tsd(&v.UpdatedAt), &nn); err != nil {
		return nil, err
	}
	if nn != nil {
		v.NetworkNumber = *nn
	}
	pt, err := c.s.openCol(sealed, "citizens", "id_number", v.ID)
	if err != nil {
		return nil, err
	}
	v.IDNumber = string(pt)
	return &v, nil
}

func (c citizens) Create(ctx context.Context, v *store.Citizen) error {
	if v.ID == "" || v.IDNumber == "" {
		return fmt.Errorf("store: create citizen: id and id number are required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = c.s.clock()
	}
	if v.UpdatedAt.IsZero() {
		v.UpdatedAt = v.CreatedAt
	}
	v.CreatedAt, v.UpdatedAt = utc(v.CreatedAt), utc(v.UpdatedAt)
	sealed, err := c.s.sealCol([]byte(v.IDNumber), "citizens", "id_number", v.ID)
	if err != nil {
		return err
	}
	_, err = c.s.b.Exec(ctx, `INSERT INTO citizens (id, id_number_hash, id_number, name, disabled, created_at, updated_at, network_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, c.s.idNumberHash(v.IDNumber), sealed, v.Name, v.Disabled, c.s.ts(v.CreatedAt), c.s.ts(v.UpdatedAt), nullStr(v.NetworkNumber))
	return c.s.wrap("create citizen", err)
}

func (c citizens) Get(ctx context.Context, id string) (*store.Citizen, error) {
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+citizenCols+` FROM citizens WHERE id = ?`, id))
	return v, c.s.wrap("get citizen", err)
}

func (c citizens) GetByIDNumber(ctx context.Context, idNumber string) (*store.Citizen, error) {
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+citizenCols+` FROM citizens WHERE id_number_hash = ?`,
		c.s.idNumberHash(idNumber)))
	return v, c.s.wrap("get citizen by id number", err)
}

func (c citizens) GetByNetworkNumber(ctx context.Context, networkNumber string) (*store.Citizen, error) {
	if networkNumber == "" {
		return nil, c.s.wrap("get citizen by network number", ErrNoRows)
	}
	v, err := c.scan(c.s.b.QueryRow(ctx, `SELECT `+citizenCols+` FROM citizens WHERE network_number = ?`, networkNumber))
	return v, c.s.wrap("get citizen by network number", err)
}

// nullStr stores the empty string as NULL (unique columns that are unset).
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c citizens) Update(ctx context.Context, id string, fn func(*store.Citizen) error) (*store.Citizen, error) {
	var out *store.Citizen
	err := c.s.b.WriteTx(ctx, func(q Querier) error {
		cur, err := c.scan(q.QueryRow(ctx, `SELECT `+citizenCols+` FROM citizens WHERE id = ?`+c.s.d.ForUpdate, id))
		if err != nil {
			return err
		}
		created, nn := cur.CreatedAt, cur.NetworkNumber
		if err := fn(cur); err != nil {
			return fmt.Errorf("updater: %w", err)
		}
		if nn != "" && cur.NetworkNumber != nn {
			return fmt.Errorf("the network number is assigned once and never changed")
		}
		cur.ID, cur.CreatedAt, cur.UpdatedAt = id, created, c.s.clock()
		if cur.IDNumber == "" {
			return fmt.Errorf("id number cannot be emptied")
		}
		sealed, err := c.s.sealCol([]byte(cur.IDNumber), "citizens", "id_number", id)
		if err != nil {
			return err
		}
		_, err = q.Exec(ctx, `UPDATE citizens SET id_number_hash = ?, id_number = ?, name = ?, disabled = ?, updated_at = ?, network_number = ? WHERE id = ?`,
			c.s.idNumberHash(cur.IDNumber), sealed, cur.Name, cur.Disabled, c.s.ts(cur.UpdatedAt), nullStr(cur.NetworkNumber), id)
		out = cur
		return err
	})
	if err != nil {
		return nil, c.s.wrap("update citizen "+id, err)
	}
	return out, nil
}

func (c citizens) List(ctx context.Context, after string, limit int) ([]*store.Citizen, error) {
	out, err := collect(ctx, c.s.b, c.scan, `SELECT `+citizenCols+` FROM citizens WHERE id > ? ORDER BY id LIMIT ?`, after, pageLimit(limit))
	return out, c.s.wrap("list citizens", err)
}

// strs encodes a string list column as JSON text.
func strs(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// strsDest scans a JSON text column into a string list (nil when empty).
type strsDest struct{ v *[]string }

func (d strsDest) Scan(src any) error {
	var b []byte
	switch x := src.(type) {
	case nil:
		*d.v = nil
		return nil
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into []string", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("sqlstore: string list: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	*d.v = out
	return nil
}
