package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	auditlog "github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

type audit struct{ s *Store }

const auditCols = `seq, at, actor, action, subject, object, outcome, detail, prev_hash, hash`

func (a audit) scan(r Row) (*store.AuditEvent, error) {
	var v store.AuditEvent
	var detail string
	if err := r.Scan(&v.Seq, tsd(&v.At), &v.Actor, &v.Action, &v.Subject, &v.Object, &v.Outcome, &detail, &v.PrevHash, &v.Hash); err != nil {
		return nil, err
	}
	if detail != "" && detail != "null" && detail != "{}" {
		if err := json.Unmarshal([]byte(detail), &v.Detail); err != nil {
			return nil, fmt.Errorf("audit %d detail: %w", v.Seq, err)
		}
	}
	if len(v.PrevHash) == 0 {
		v.PrevHash = nil
	}
	return &v, nil
}

// Append chains e with audit.Chain, the one chain function (see store.AuditStore).
func (a audit) Append(ctx context.Context, e *store.AuditEvent) error {
	if e.At.IsZero() {
		e.At = a.s.clock()
	}
	e.At = utc(e.At)
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("store: append audit: detail: %w", err)
	}
	if e.Detail == nil {
		detail = []byte("{}")
	}
	var seq int64
	var prev, hash []byte
	err = a.s.b.WriteTx(ctx, func(q Querier) error {
		if a.s.d.LockAudit != nil {
			if err := a.s.d.LockAudit(ctx, q); err != nil {
				return err
			}
		}
		var last int64
		var lastHash []byte
		err := q.QueryRow(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&last, &lastHash)
		if err != nil && err != ErrNoRows {
			return err
		}
		seq, prev = last+1, lastHash
		if len(prev) == 0 {
			prev = nil
		}
		ev := *e
		ev.Seq, ev.PrevHash, ev.Hash = seq, prev, nil
		hash = auditlog.Chain(prev, &ev)
		_, err = q.Exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			seq, a.s.ts(e.At), e.Actor, e.Action, e.Subject, e.Object, e.Outcome, string(detail), prev, hash)
		return err
	})
	if err != nil {
		return a.s.wrap("append audit", err)
	}
	e.Seq, e.PrevHash, e.Hash = seq, prev, hash
	return nil
}

func (a audit) List(ctx context.Context, after int64, limit int) ([]*store.AuditEvent, error) {
	out, err := collect(ctx, a.s.b, a.scan, `SELECT `+auditCols+` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, pageLimit(limit))
	return out, a.s.wrap("list audit", err)
}

// likeEscaper escapes LIKE wildcards with '!' (an escape character that
// needs no quoting in either dialect's string literals).
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

func (a audit) ListBySubject(ctx context.Context, subject, actionPrefix string, limit int) ([]*store.AuditEvent, error) {
	out, err := collect(ctx, a.s.b, a.scan, `SELECT `+auditCols+` FROM audit_events WHERE subject = ? AND action LIKE ? ESCAPE '!' ORDER BY seq DESC LIMIT ?`,
		subject, likeEscaper.Replace(actionPrefix)+"%", pageLimit(limit))
	return out, a.s.wrap("list audit by subject", err)
}
