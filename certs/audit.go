package certs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"sort"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// DefaultAuditChain is SHA-256 over the previous hash and a length-prefixed
// encoding of the event's fields (Detail in key order). cmd may pass the
// project-wide chain function instead.
func DefaultAuditChain(prev []byte, e *store.AuditEvent) []byte {
	h := sha256.New()
	put := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put(prev)
	put([]byte(e.At.UTC().Format(time.RFC3339Nano)))
	for _, s := range []string{e.Actor, e.Action, e.Subject, e.Object, e.Outcome} {
		put([]byte(s))
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		put([]byte(k))
		put([]byte(e.Detail[k]))
	}
	return h.Sum(nil)
}

// appendAudit records e; a failure to record is logged, not returned, for
// events after the fact (the verification outcome is already decided).
func appendAudit(ctx context.Context, a store.AuditStore, chain func([]byte, *store.AuditEvent) []byte, log *slog.Logger, e *store.AuditEvent) {
	if err := a.Append(ctx, e, chain); err != nil {
		log.ErrorContext(ctx, "audit append failed", "action", e.Action, "err", err)
	}
}
