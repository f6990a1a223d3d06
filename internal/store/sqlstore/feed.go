package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// The template change feed (store.TemplateFeed): the migrations of both
// backends add the template_changes table and the triggers that fill it in
// the transaction that inserts or deletes a template.

var _ store.TemplateFeed = (*Store)(nil)

// maxGaps bounds the gaps one read asks for (a reader keeps the rest for
// the next read).
const maxGaps = 256

func (s *Store) TemplateChanges(ctx context.Context, after int64, gaps []int64, limit int) ([]store.TemplateChange, error) {
	q := `SELECT seq, template_id, citizen_id, deleted, at FROM template_changes WHERE seq > ?`
	args := []any{after}
	if len(gaps) > maxGaps {
		gaps = gaps[:maxGaps]
	}
	if len(gaps) > 0 {
		q += ` OR seq IN (?` + strings.Repeat(`, ?`, len(gaps)-1) + `)`
		for _, g := range gaps {
			args = append(args, g)
		}
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, pageLimit(limit))
	out, err := collect(ctx, s.b, func(r Row) (store.TemplateChange, error) {
		var c store.TemplateChange
		err := r.Scan(&c.Seq, &c.TemplateID, &c.CitizenID, &c.Deleted, tsd(&c.At))
		return c, err
	}, q, args...)
	return out, s.wrap("template changes", err)
}

func (s *Store) TemplateFeedHead(ctx context.Context) (int64, error) {
	var n int64
	err := s.b.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM template_changes`).Scan(&n)
	return n, s.wrap("template feed head", err)
}

func (s *Store) PruneTemplateChanges(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.b.Exec(ctx, `DELETE FROM template_changes WHERE at < ?`, s.ts(before))
	return n, s.wrap("prune template changes", err)
}
