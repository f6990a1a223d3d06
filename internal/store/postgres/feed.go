package postgres

import (
	"context"
	"fmt"

	"github.com/trustid/trustid/internal/store"
)

var _ store.TemplateNotifier = (*DB)(nil)

// templateChannel is the NOTIFY channel of the template feed trigger
// (migration 00005); the payload is the schema the change was made in.
const templateChannel = "trustid_templates"

// ListenTemplateChanges implements store.TemplateNotifier with LISTEN on a
// connection taken out of the pool for as long as ctx lives (a connection
// in LISTEN state must not serve other queries). The channel is closed when
// the connection fails (a PostgreSQL restart) or ctx ends; the caller
// catches up from the feed and listens again.
func (db *DB) ListenTemplateChanges(ctx context.Context) (<-chan struct{}, error) {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, listenErr(err)
	}
	conn := pc.Hijack()
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, listenErr(err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+templateChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, listenErr(fmt.Errorf("LISTEN: %w", err))
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer conn.Close(context.WithoutCancel(ctx))
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return
			}
			if n.Payload != schema {
				continue
			}
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}()
	return ch, nil
}

func listenErr(err error) error {
	if unavailable(err) {
		return fmt.Errorf("store: listen template changes: %w: %w", store.ErrUnavailable, err)
	}
	return fmt.Errorf("store: listen template changes: %w", err)
}
