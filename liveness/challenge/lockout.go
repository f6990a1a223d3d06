package challenge

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// Client identifies who asks for or answers a challenge, for the abuse
// limits. Failures are counted per subject and device, so that guessing is
// stopped without letting a stranger lock a citizen out:
//
//   - a device (or, without a device id, an address) that fails MaxFailures
//     times in FailureWindow for one subject is locked out of that subject,
//     for LockoutDuration doubling with each further lockout (exponential
//     backoff, up to MaxLockout); other devices are not affected;
//   - failures from devices not known for the subject also count towards a
//     subject-wide limit (SubjectMaxFailures per SubjectFailureWindow) and a
//     per-address limit (AddressMaxFailures per FailureWindow), which lock
//     out unknown devices only: the citizen's known devices keep working,
//     and a passkey is another way in;
//   - a success clears its pair's failures and backoff (RecordSuccess).
type Client struct {
	Addr string // client IP address
	// Device is an opaque, stable id of the browser or device (a long-lived
	// cookie); empty when the client sent none.
	Device string
	// Known is true when the device proved an earlier success for the
	// subject (KnownDeviceProof / IsKnownDevice).
	Known bool
}

// who names the pair a failure is counted for.
func (c Client) who() string {
	if c.Device != "" {
		return "dev:" + c.Device
	}
	return "addr:" + c.Addr
}

// Locked reports, as a *RetryError wrapping ErrLocked with a retry hint,
// whether c may not try subject now.
func (m *Manager) Locked(ctx context.Context, subject string, c Client) error {
	keys := []string{m.key("lock:pair:", subject, c.who())}
	if !c.Known {
		keys = append(keys, m.subjectKey("lock:subj:", subject), m.key("lock:addr:", c.Addr))
	}
	var worst time.Duration
	locked := false
	for _, k := range keys {
		v, err := m.cfg.Store.Get(ctx, k)
		if errors.Is(err, ephemeral.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("challenge: lockout: %w", err)
		}
		locked = true
		if len(v) == 8 {
			until := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			worst = max(worst, until.Sub(m.cfg.Now()))
		}
	}
	if !locked {
		return nil
	}
	return &RetryError{Err: ErrLocked, RetryAfter: max(worst, time.Second)}
}

// RecordFailure counts one failed verification of subject by c and starts
// the lockouts whose limits it reaches (see Client). It reports whether a
// lockout started.
func (m *Manager) RecordFailure(ctx context.Context, subject string, c Client) (bool, error) {
	locked := false
	// The pair: a counter over FailureWindow from its first failure, then
	// exponential backoff.
	n, err := m.cfg.Store.Incr(ctx, m.key("fail:pair:", subject, c.who()), 1, m.cfg.FailureWindow)
	if err != nil {
		return false, fmt.Errorf("challenge: record failure: %w", err)
	}
	if n >= int64(m.cfg.MaxFailures) {
		strikes, err := m.cfg.Store.Incr(ctx, m.key("strikes:", subject, c.who()), 1, m.cfg.StrikeMemory)
		if err != nil {
			return false, fmt.Errorf("challenge: record failure: %w", err)
		}
		d := m.cfg.LockoutDuration
		for i := int64(1); i < strikes && d < m.cfg.MaxLockout; i++ {
			d *= 2
		}
		d = min(d, m.cfg.MaxLockout)
		if err := m.lock(ctx, m.key("lock:pair:", subject, c.who()), d); err != nil {
			return false, err
		}
		// The count starts again after the lockout: the next MaxFailures
		// earn the next, doubled one.
		if err := m.cfg.Store.Delete(ctx, m.key("fail:pair:", subject, c.who())); err != nil {
			return true, fmt.Errorf("challenge: record failure: %w", err)
		}
		locked = true
		m.cfg.Logger.InfoContext(ctx, "liveness lockout started", "kind", "pair", "strike", strikes, "for", d)
	}
	if c.Known {
		return locked, nil
	}
	// Across a loss of the ephemeral store (a Redis restart or flush resets
	// every counter), while the store remembers less than a subject window,
	// unknown devices get a quarter of the subject-wide budget: a loss can
	// give a stranger at most a quarter window of extra guesses (5 by
	// default), not a fresh one, while known devices and passkeys still
	// work and a citizen on a new device still has a few tries.
	subjectLimit := m.cfg.SubjectMaxFailures
	now := m.cfg.Now()
	since, err := ephemeral.MemorySince(ctx, m.cfg.Store, m.cfg.KeyPrefix+"memory"+m.subjectTag(subject), now)
	if err != nil {
		return locked, fmt.Errorf("challenge: record failure: %w", err)
	}
	if since.Equal(now) {
		// This marker was lost just now: so were, most likely, others (the
		// whole store, or a cluster node's share). Date every missing one
		// from now, not from its first later use.
		if err := ephemeral.StartMemories(ctx, m.cfg.Store, m.cfg.KeyPrefix+"memory", now); err != nil {
			return locked, fmt.Errorf("challenge: record failure: %w", err)
		}
	}
	if now.Sub(since) < m.cfg.SubjectFailureWindow {
		subjectLimit = max(1, subjectLimit/4)
	}
	for _, l := range []struct {
		kind, fail, lock string
		limit            int
		window           time.Duration
		lockFor          time.Duration
	}{
		{"subj", m.subjectKey("fail:subj:", subject), m.subjectKey("lock:subj:", subject), subjectLimit, m.cfg.SubjectFailureWindow, m.cfg.SubjectLockout},
		{"addr", m.key("fail:addr:", c.Addr), m.key("lock:addr:", c.Addr), m.cfg.AddressMaxFailures, m.cfg.FailureWindow, m.cfg.LockoutDuration},
	} {
		ok := false // a limit of one: this failure reaches it
		if l.limit > 1 {
			var err error
			if ok, _, err = m.cfg.Store.Allow(ctx, l.fail, l.limit-1, l.window); err != nil {
				return locked, fmt.Errorf("challenge: record failure: %w", err)
			}
		}
		if ok {
			continue
		}
		if err := m.lock(ctx, l.lock, l.lockFor); err != nil {
			return locked, err
		}
		locked = true
		m.cfg.Logger.InfoContext(ctx, "liveness lockout started", "kind", l.kind, "for", l.lockFor, "unknown_devices_only", true)
	}
	return locked, nil
}

// RecordSuccess clears the failures, backoff and lockout of subject's pair
// with c (not the subject-wide or address limits: a success of one device
// says nothing of the others).
func (m *Manager) RecordSuccess(ctx context.Context, subject string, c Client) error {
	for _, k := range []string{
		m.key("fail:pair:", subject, c.who()),
		m.key("strikes:", subject, c.who()),
		m.key("lock:pair:", subject, c.who()),
	} {
		if err := m.cfg.Store.Delete(ctx, k); err != nil {
			return fmt.Errorf("challenge: record success: %w", err)
		}
	}
	return nil
}

// KnownDeviceProof is what a device keeps (a cookie) after a success for
// subject, to be recognised as known for it later. It reveals neither.
func (m *Manager) KnownDeviceProof(subject, device string) string {
	return base64.RawURLEncoding.EncodeToString(m.mac("known-device", subject, device)[:18])
}

// IsKnownDevice checks a proof made by KnownDeviceProof.
func (m *Manager) IsKnownDevice(subject, device, proof string) bool {
	if device == "" || proof == "" {
		return false
	}
	return hmac.Equal([]byte(proof), []byte(m.KnownDeviceProof(subject, device)))
}

func (m *Manager) lock(ctx context.Context, key string, d time.Duration) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(m.cfg.Now().Add(d).UnixNano()))
	if err := m.cfg.Store.Set(ctx, key, b[:], d); err != nil {
		return fmt.Errorf("challenge: lock: %w", err)
	}
	return nil
}

// subjectTag is the hash tag of subject's subject-wide counters and of
// the memory marker that guards them: on a Redis Cluster a marker only
// tells of the loss of its own node's keys, so each counter's marker must
// live in the counter's slot (256 markers, as the replay caches have).
func (m *Manager) subjectTag(subject string) string {
	return ephemeral.MemoryTag(m.mac("subject-tag", subject)[0])
}

// subjectKey is key for a subject-wide counter or lock, in subject's slot.
func (m *Manager) subjectKey(kind, subject string) string {
	return m.cfg.KeyPrefix + kind + m.subjectTag(subject) + base64.RawURLEncoding.EncodeToString(m.mac(kind, subject)[:16])
}

// startMemory makes sure the ephemeral store's memory markers of the abuse
// limits exist when the manager starts, so that only a loss of the store
// while it runs (not a first start) shrinks the budget of unknown devices.
func (m *Manager) startMemory() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ephemeral.StartMemories(ctx, m.cfg.Store, m.cfg.KeyPrefix+"memory", m.cfg.Now()); err != nil {
		m.cfg.Logger.Warn("challenge: memory markers", "err", err)
	}
}
