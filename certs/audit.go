package certs

import (
	"log/slog"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// newRecorder returns the audit.Recorder the issuer and the service record
// through (the store chains the events; certs has no chain of its own).
func newRecorder(st store.AuditStore, now func() time.Time, log *slog.Logger) (*audit.Recorder, error) {
	return audit.New(audit.Config{Store: st, Now: now, Logger: log})
}
