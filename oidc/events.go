package oidc

import (
	"context"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// auditRecorder is what the provider's components need of the audit log
// (internal/audit.Recorder): append an event, logging a failure.
type auditRecorder interface {
	RecordOrLog(ctx context.Context, e *store.AuditEvent)
}

// events records the provider's audit events, stamped with its clock. Each
// component holds one instead of calling back into the Provider.
type events struct {
	rec auditRecorder
	now func() time.Time
}

// record records an event after the fact through the audit recorder (the
// store chains it); a failure is logged, not returned.
func (e events) record(ctx context.Context, actor, action, subject, object, outcome string, detail map[string]string) {
	e.rec.RecordOrLog(ctx, &store.AuditEvent{At: e.now(), Actor: actor, Action: action, Subject: subject, Object: object, Outcome: outcome, Detail: detail})
}
