// Package audit owns the hash chain of TrustID's append-only audit log: the
// one chain function (Chain), which every store.AuditStore backend hashes
// with, the Recorder every writer (oidc, certs, authn/identity, cmd) records
// through, and Verify, which walks the log and reports the first broken link.
//
// # Chain encoding (version 1)
//
// Hash = SHA-256(enc), where enc is the concatenation of:
//
//	"trustid-audit-v1\x00"            domain separation and version
//	str(prev)                         previous event's Hash (empty for the first)
//	u64(Seq)
//	i64(At.UnixMicro())               UTC microseconds (the store's precision)
//	str(Actor) str(Action) str(Subject) str(Object) str(Outcome)
//	u64(len(Detail))
//	str(k) str(Detail[k])             for each key k in ascending byte order
//
// where u64/i64 are 8-byte big-endian integers and str(b) is u64(len(b))
// followed by the bytes of b. Every variable-length item is length-prefixed
// and every integer has a fixed width, so two different events (or the same
// event with a different predecessor) never encode to the same bytes. A nil
// and an empty Detail encode the same, as backends may store either. The
// event's own PrevHash and Hash fields are not encoded: prev is the argument.
package audit

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// domain prefixes every encoding; bump the version if the encoding changes.
const domain = "trustid-audit-v1\x00"

// Chain returns the hash of e linked to prev (see the package doc for the
// exact encoding). Store backends call it in Append; nothing else chains.
func Chain(prev []byte, e *store.AuditEvent) []byte {
	n := len(domain) + 8 + len(prev) + 8 + 8 + 5*8 + len(e.Actor) + len(e.Action) +
		len(e.Subject) + len(e.Object) + len(e.Outcome) + 8
	for k, v := range e.Detail {
		n += 16 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, domain...)
	b = appendBytes(b, prev)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixMicro()))
	for _, s := range [...]string{e.Actor, e.Action, e.Subject, e.Object, e.Outcome} {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.Detail)))
	for _, k := range slices.Sorted(maps.Keys(e.Detail)) {
		b = appendString(b, k)
		b = appendString(b, e.Detail[k])
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// ErrBroken is wrapped by the *BrokenError Verify returns when the chain does
// not check out.
var ErrBroken = errors.New("audit: chain broken")

// ErrInvalidEvent is returned by Recorder.Record for an event without an
// Actor, Action or Outcome.
var ErrInvalidEvent = errors.New("audit: invalid event")

// BrokenError locates the first broken link of the chain.
type BrokenError struct {
	Seq    int64  // the first event that does not check out
	Reason string // what is wrong with it
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d: %s", e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBroken) true.
func (e *BrokenError) Unwrap() error { return ErrBroken }

// verifyPage is how many events Verify reads per List call.
const verifyPage = 500

// Verify walks the whole log from the first event and checks that sequence
// numbers are consecutive, that the first event has no predecessor, that
// each PrevHash equals the previous event's Hash, and that each Hash equals
// Chain(PrevHash, event). It returns how many events checked out; on the
// first failure the error is a *BrokenError (wrapping ErrBroken) naming its
// Seq. Errors from the store are returned wrapped as they are.
func Verify(ctx context.Context, s store.AuditStore) (checked int, err error) {
	var after int64
	var prevHash []byte
	for {
		page, err := s.List(ctx, after, verifyPage)
		if err != nil {
			return checked, fmt.Errorf("audit: verify: list after %d: %w", after, err)
		}
		for _, e := range page {
			if err := checkLink(e, checked == 0, after, prevHash); err != nil {
				return checked, err
			}
			after, prevHash = e.Seq, e.Hash
			checked++
		}
		if len(page) < verifyPage {
			return checked, nil
		}
	}
}

func checkLink(e *store.AuditEvent, first bool, lastSeq int64, prevHash []byte) error {
	broken := func(reason string) error { return &BrokenError{Seq: e.Seq, Reason: reason} }
	switch {
	case first && len(e.PrevHash) != 0:
		return broken("first event has a previous hash")
	case !first && e.Seq != lastSeq+1:
		return broken(fmt.Sprintf("sequence gap after %d", lastSeq))
	case !first && subtle.ConstantTimeCompare(e.PrevHash, prevHash) != 1:
		return broken("previous hash does not match the previous event")
	case subtle.ConstantTimeCompare(e.Hash, Chain(e.PrevHash, e)) != 1:
		return broken("hash does not match the event")
	}
	return nil
}

// Config holds a Recorder's dependencies.
type Config struct {
	Store store.AuditStore // required
	// Now is the clock for events without a time; defaults to time.Now.
	Now func() time.Time
	// Logger receives one debug line per recorded event (action and
	// outcome only, never Detail); defaults to a discarding logger.
	Logger *slog.Logger
}

// Recorder appends events to the audit log through its store (which chains
// them with Chain). It is the one way writers record events.
type Recorder struct {
	store store.AuditStore
	now   func() time.Time
	log   *slog.Logger
}

// New checks cfg and returns a Recorder.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: config: Store is required")
	}
	r := &Recorder{store: cfg.Store, now: cfg.Now, log: cfg.Logger}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Record appends e. A zero e.At is set from the clock; At is normalised to
// UTC microseconds (the store's precision, so the hash survives a round
// trip). Detail is copied so the caller may reuse its map. On success e has
// the Seq, PrevHash and Hash the store assigned.
func (r *Recorder) Record(ctx context.Context, e *store.AuditEvent) error {
	if e.Actor == "" || e.Action == "" || e.Outcome == "" {
		return fmt.Errorf("%w: actor, action and outcome are required (action %q)", ErrInvalidEvent, e.Action)
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.Detail = maps.Clone(e.Detail)
	if err := r.store.Append(ctx, e); err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	r.log.DebugContext(ctx, "audit event recorded", "seq", e.Seq, "action", e.Action, "outcome", e.Outcome)
	return nil
}

// RecordOrLog records e and logs a failure (at error level, with the action
// and outcome, never Detail) instead of returning it: for events recorded
// after the fact, when the outcome they describe has already happened and
// must not be undone or hidden from the caller by a store fault.
func (r *Recorder) RecordOrLog(ctx context.Context, e *store.AuditEvent) {
	if err := r.Record(ctx, e); err != nil {
		r.log.ErrorContext(ctx, "audit: event not recorded", "action", e.Action, "outcome", e.Outcome, "err", err)
	}
}
