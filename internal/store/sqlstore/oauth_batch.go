package sqlstore

import (
	"context"
	"strings"

	"github.com/trustid/trustid/internal/coalesce"
	"github.com/trustid/trustid/internal/store"
)

// Batched OAuth reads and rotations (Dialect.Batches, PostgreSQL): every
// token request reads a record (a refresh token, a code) and rotates it,
// so these two are the statements a busy provider sends most. Outside a
// transaction, concurrent calls share one statement each (package
// coalesce): group commit at the level of the statement.

// maxBatch is the most calls one statement serves; it bounds the number
// of statement shapes (one per size) the driver prepares.
const maxBatch = 32

type oauthRef struct {
	kind store.OAuthKind
	sig  string
}

type rotation struct {
	kind      store.OAuthKind
	sig       string
	revoke    store.OAuthKind
	requestID string
	rows      [][]any // sealed rows to insert, oauthCols order
}

func (s *Store) initBatches() {
	if s.d.Batches <= 0 || !s.d.WritableCTE {
		return
	}
	o := oauth{s}
	s.oauthGets = coalesce.New(s.d.Batches, maxBatch, o.getBatch)
	s.oauthRotations = coalesce.New(s.d.Batches, maxBatch, o.rotateBatch)
}

// batched reports whether a call with ctx may join a batch: not inside a
// transaction, whose statements must run on it.
func (o oauth) batched(ctx context.Context) bool {
	return o.s.oauthGets != nil && o.s.txFrom(ctx) == nil
}

// getBatch reads the records of calls in one SELECT.
func (o oauth) getBatch(ctx context.Context, calls []*coalesce.Call[oauthRef, *store.OAuthRecord]) {
	if len(calls) == 1 {
		c := calls[0]
		c.Out, c.Err = o.get(ctx, c.In.kind, c.In.sig)
		return
	}
	var b strings.Builder
	args := make([]any, 0, 2*len(calls))
	b.WriteString(`SELECT ` + oauthCols + ` FROM oauth_records WHERE (kind, signature) IN (VALUES `)
	for i, c := range calls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`(?::text, ?::text)`)
		args = append(args, string(c.In.kind), c.In.sig)
	}
	b.WriteString(`)`)
	recs, err := collect(ctx, o.s.b, o.scan, b.String(), args...)
	found := make(map[oauthRef]*store.OAuthRecord, len(recs))
	for _, v := range recs {
		found[oauthRef{v.Kind, v.Signature}] = v
	}
	given := make(map[*store.OAuthRecord]bool, len(calls))
	for _, c := range calls {
		switch v := found[c.In]; {
		case err != nil:
			c.Err = err
		case v == nil:
			c.Err = ErrNoRows
		case given[v]:
			c.Out = cloneRecord(v) // the same record asked for twice
		default:
			c.Out, given[v] = v, true
		}
	}
}

func cloneRecord(v *store.OAuthRecord) *store.OAuthRecord {
	c := *v
	c.Data = append([]byte(nil), v.Data...)
	return &c
}

// rotateBatch runs the rotations of calls in one statement. A rotation
// whose record was not consumed (already inactive, or missing) learns why
// by itself; if the statement fails, nothing of it was written and each
// rotation runs alone, so one bad rotation (a duplicate signature) cannot
// fail the others.
func (o oauth) rotateBatch(ctx context.Context, calls []*coalesce.Call[rotation, struct{}]) {
	if len(calls) == 1 {
		calls[0].Err = o.rotateCTE(ctx, calls[0].In)
		return
	}
	rs := make([]rotation, len(calls))
	for i, c := range calls {
		rs[i] = c.In
	}
	consumed, err := o.runRotations(ctx, rs)
	for i, c := range calls {
		switch {
		case err != nil:
			c.Err = o.rotateCTE(ctx, c.In)
		case !consumed[i]:
			c.Err = o.whyNotConsumed(ctx, o.s.b, c.In.kind, c.In.sig)
		}
	}
}

// rotateCTE is one rotation as one statement (runRotations of one).
func (o oauth) rotateCTE(ctx context.Context, r rotation) error {
	consumed, err := o.runRotations(ctx, []rotation{r})
	switch {
	case err != nil:
		return err
	case consumed[0]:
		return nil
	}
	return o.whyNotConsumed(ctx, o.s.b, r.kind, r.sig)
}

// runRotations runs rs as one statement of data-modifying CTEs (see
// Rotate) and reports which consumed their record: the DELETE and the
// INSERT act only for those. Data-modifying CTEs run to completion whether
// or not the main query reads them.
func (o oauth) runRotations(ctx context.Context, rs []rotation) ([]bool, error) {
	var b strings.Builder
	var args []any
	b.WriteString(`WITH ops (n, kind, sig, revoke, rid) AS (VALUES `)
	revokes, inserts := false, false
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`(?::int, ?::text, ?::text, ?::text, ?::text)`)
		args = append(args, i, string(r.kind), r.sig, string(r.revoke), r.requestID)
		revokes = revokes || r.revoke != ""
		inserts = inserts || len(r.rows) > 0
	}
	// UPDATE ... FROM: a record named twice (the same token sent twice at
	// once) is updated once and returned once, so one of them wins. The
	// consumed record keeps no data (store.OAuthStore.Consume).
	b.WriteString(`), consumed AS (UPDATE oauth_records r SET active = false, data = '' FROM ops
 WHERE r.kind = ops.kind AND r.signature = ops.sig AND r.active RETURNING ops.n, ops.revoke, ops.rid)`)
	if revokes {
		b.WriteString(`, revoked AS (DELETE FROM oauth_records r USING consumed c
 WHERE c.revoke <> '' AND r.kind = c.revoke AND r.request_id = c.rid)`)
	}
	if inserts {
		b.WriteString(`, created AS (INSERT INTO oauth_records (` + oauthCols + `) SELECT ` + oauthCols + ` FROM (VALUES `)
		first := true
		for i, r := range rs {
			for _, row := range r.rows {
				if !first {
					b.WriteString(", ")
				}
				first = false
				b.WriteString(`(?::int, ` + oauthValues[1:])
				args = append(append(args, i), row...)
			}
		}
		b.WriteString(`) AS v (n, ` + oauthCols + `) WHERE v.n IN (SELECT n FROM consumed))`)
	}
	b.WriteString(` SELECT n FROM consumed`)
	ns, err := collect(ctx, o.s.b, func(r Row) (n int, err error) { return n, r.Scan(&n) }, b.String(), args...)
	if err != nil {
		return nil, err
	}
	consumed := make([]bool, len(rs))
	for _, n := range ns {
		if n >= 0 && n < len(consumed) {
			consumed[n] = true
		}
	}
	return consumed, nil
}
