package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// sealedColumn names a sealed column, its row key and how the row key
// becomes the sealing context.
type sealedColumn struct {
	table, column string
	keys          []string
	aadKey        func(k []string) string
}

var sealedColumns = []sealedColumn{
	{"citizens", "id_number", []string{"id"}, func(k []string) string { return k[0] }},
	{"templates", "vector", []string{"id"}, func(k []string) string { return k[0] }},
	{"signing_keys", "private", []string{"id"}, func(k []string) string { return k[0] }},
	{"oauth_records", "data", []string{"kind", "signature"}, func(k []string) string { return k[0] + "\x00" + k[1] }},
}

// resealBatch is how many rows are read per query.
const resealBatch = 200

// Reseal rewrites every sealed value that is not under the ring's primary
// key, so an old key can be dropped from the configuration afterwards. It
// runs online: each row is replaced with a compare-and-set on its old
// ciphertext, so a concurrent update of the row wins and is not undone. It
// returns how many values were rewritten.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	total := 0
	for _, c := range sealedColumns {
		n, err := s.resealColumn(ctx, c)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: reseal %s.%s: %w", c.table, c.column, err)
		}
	}
	return total, nil
}

func (s *Store) resealColumn(ctx context.Context, c sealedColumn) (int, error) {
	keyList := strings.Join(c.keys, ", ")
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(c.keys)), ", ")
	keyMatch := strings.Join(c.keys, " = ? AND ") + " = ?"
	page := fmt.Sprintf(`SELECT %s, %s FROM %s WHERE (%s) > (%s) ORDER BY %s LIMIT ?`, keyList, c.column, c.table, keyList, ph, keyList)
	first := fmt.Sprintf(`SELECT %s, %s FROM %s ORDER BY %s LIMIT ?`, keyList, c.column, c.table, keyList)
	update := fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s AND %s = ?`, c.table, c.column, keyMatch, c.column)

	type rowv struct {
		keys []string
		ct   []byte
	}
	var after []string
	n := 0
	for {
		var args []any
		q := first
		if after != nil {
			q = page
			for _, k := range after {
				args = append(args, k)
			}
		}
		args = append(args, resealBatch)
		rows, err := collect(ctx, s.b, func(r Row) (rowv, error) {
			v := rowv{keys: make([]string, len(c.keys))}
			dest := make([]any, 0, len(c.keys)+1)
			for i := range v.keys {
				dest = append(dest, &v.keys[i])
			}
			dest = append(dest, &v.ct)
			return v, r.Scan(dest...)
		}, q, args...)
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			if !s.ring.NeedsRotation(r.ct) {
				continue
			}
			key := c.aadKey(r.keys)
			pt, err := s.openCol(r.ct, c.table, c.column, key)
			if err != nil {
				return n, err
			}
			ct, err := s.sealCol(pt, c.table, c.column, key)
			if err != nil {
				return n, err
			}
			uargs := []any{ct}
			for _, k := range r.keys {
				uargs = append(uargs, k)
			}
			uargs = append(uargs, r.ct)
			changed, err := s.b.Exec(ctx, update, uargs...)
			if err != nil {
				return n, err
			}
			n += int(changed)
		}
		if len(rows) < resealBatch {
			return n, nil
		}
		after = rows[len(rows)-1].keys
	}
}
