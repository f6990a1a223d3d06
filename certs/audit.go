package certs

import (
	"context"
	"log/slog"

	"github.com/trustid/trustid/internal/store"
)

// appendAudit records e; a failure to record is logged, not returned, for
// events after the fact (the verification outcome is already decided).
func appendAudit(ctx context.Context, a store.AuditStore, chain func([]byte, *store.AuditEvent) []byte, log *slog.Logger, e *store.AuditEvent) {
	if err := a.Append(ctx, e, chain); err != nil {
		log.ErrorContext(ctx, "audit append failed", "action", e.Action, "err", err)
	}
}
