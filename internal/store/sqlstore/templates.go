package sqlstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/trustid/trustid/internal/store"
)

type templates struct{ s *Store }

const templateCols = `id, citizen_id, kind, model_version, vector, photo_hash, created_at`

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("vector of %d bytes", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func (t templates) scan(r Row) (*store.Template, error) {
	var v store.Template
	var kind string
	var sealed []byte
	if err := r.Scan(&v.ID, &v.CitizenID, &kind, &v.ModelVersion, &sealed, &v.PhotoHash, tsd(&v.CreatedAt)); err != nil {
		return nil, err
	}
	v.Kind = store.TemplateKind(kind)
	pt, err := t.s.openCol(sealed, "templates", "vector", v.ID)
	if err != nil {
		return nil, err
	}
	if v.Vector, err = decodeVector(pt); err != nil {
		return nil, fmt.Errorf("store: template %s: %w", v.ID, err)
	}
	if len(v.PhotoHash) == 0 {
		v.PhotoHash = nil
	}
	return &v, nil
}

func (t templates) insert(ctx context.Context, q Querier, v *store.Template) error {
	if v.ID == "" || v.CitizenID == "" {
		return fmt.Errorf("id and citizen id are required")
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = t.s.clock()
	}
	v.CreatedAt = utc(v.CreatedAt)
	sealed, err := t.s.sealCol(encodeVector(v.Vector), "templates", "vector", v.ID)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO templates (`+templateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.CitizenID, string(v.Kind), v.ModelVersion, sealed, v.PhotoHash, t.s.ts(v.CreatedAt))
	return err
}

func (t templates) Create(ctx context.Context, v *store.Template) error {
	return t.s.wrap("create template", t.insert(ctx, t.s.b, v))
}

func (t templates) Get(ctx context.Context, id string) (*store.Template, error) {
	v, err := t.scan(t.s.b.QueryRow(ctx, `SELECT `+templateCols+` FROM templates WHERE id = ?`, id))
	return v, t.s.wrap("get template", err)
}

func (t templates) ListByCitizen(ctx context.Context, citizenID string) ([]*store.Template, error) {
	out, err := collect(ctx, t.s.b, t.scan, `SELECT `+templateCols+` FROM templates WHERE citizen_id = ? ORDER BY created_at, id`, citizenID)
	return out, t.s.wrap("list templates of citizen", err)
}

func (t templates) ListAll(ctx context.Context, after string, limit int) ([]*store.Template, error) {
	out, err := collect(ctx, t.s.b, t.scan, `SELECT `+templateCols+` FROM templates WHERE id > ? ORDER BY id LIMIT ?`, after, pageLimit(limit))
	return out, t.s.wrap("list templates", err)
}

func (t templates) CountCitizens(ctx context.Context) (int64, error) {
	var n int64
	err := t.s.b.QueryRow(ctx, `SELECT COUNT(DISTINCT citizen_id) FROM templates`).Scan(&n)
	return n, t.s.wrap("count citizens with templates", err)
}

func (t templates) Delete(ctx context.Context, id string) error {
	n, err := t.s.b.Exec(ctx, `DELETE FROM templates WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = ErrNoRows
	}
	return t.s.wrap("delete template", err)
}

func (t templates) ReplaceRegister(ctx context.Context, v *store.Template) error {
	if v.Kind == "" {
		v.Kind = store.TemplateRegister
	}
	if v.Kind != store.TemplateRegister {
		return fmt.Errorf("store: replace register template: kind %q", v.Kind)
	}
	err := t.s.b.WriteTx(ctx, func(q Querier) error {
		// Lock the citizen so concurrent replacements serialise.
		var id string
		if err := q.QueryRow(ctx, `SELECT id FROM citizens WHERE id = ?`+t.s.d.ForUpdate, v.CitizenID).Scan(&id); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM templates WHERE citizen_id = ? AND kind = ?`, v.CitizenID, string(store.TemplateRegister)); err != nil {
			return err
		}
		return t.insert(ctx, q, v)
	})
	return t.s.wrap("replace register template", err)
}
