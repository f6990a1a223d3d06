package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// The recorder and the verifier on the embedded SQLite store; tampering
// and store faults are thin wrappers around it.

// list returns every event of s.
func list(t *testing.T, s store.AuditStore) []*store.AuditEvent {
	t.Helper()
	var out []*store.AuditEvent
	var after int64
	for {
		page, err := s.List(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// tampered is a log as an attacker left it: the events of a real store,
// read once, edited in ways SQL constraints would not even allow (events
// out of order), and listed page by page as store.AuditStore.List does.
type tampered struct {
	store.AuditStore
	events []*store.AuditEvent
}

func (m *tampered) List(_ context.Context, after int64, limit int) ([]*store.AuditEvent, error) {
	var out []*store.AuditEvent
	for _, e := range m.events {
		if e.Seq > after && len(out) < limit {
			c := *e
			out = append(out, &c)
		}
	}
	return out, nil
}

// failingList is a store whose List fails with err.
type failingList struct {
	store.AuditStore
	err error
}

func (f failingList) List(context.Context, int64, int) ([]*store.AuditEvent, error) {
	return nil, f.err
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

// newRecorder records on SQLite in t's temporary directory.
func newRecorder(t *testing.T) (*audit.Recorder, store.AuditStore) {
	t.Helper()
	m := sqlitetest.Open(t).Audit()
	clk := &fixedClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200))}
	r, err := audit.New(audit.Config{Store: m, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r, m
}

func TestRecord(t *testing.T) {
	r, m := newRecorder(t)
	ctx := context.Background()
	detail := map[string]string{"purpose": "hotel"}
	e := &store.AuditEvent{Actor: "client:h1", Action: "cert.verify", Subject: "c1", Outcome: "ok", Detail: detail}
	if err := r.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	detail["purpose"] = "changed by caller"
	wantAt := time.Date(2026, 5, 1, 10, 0, 1, 0, time.UTC)
	if !e.At.Equal(wantAt) || e.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v in UTC from the injected clock", e.At, wantAt)
	}
	if e.Seq != 1 || e.PrevHash != nil || !bytes.Equal(e.Hash, audit.Chain(nil, e)) {
		t.Errorf("Seq/PrevHash/Hash not set as the store assigned them: %d %x %x", e.Seq, e.PrevHash, e.Hash)
	}
	if got := list(t, m)[0].Detail["purpose"]; got != "hotel" {
		t.Errorf("stored detail = %q: the caller's map was not copied", got)
	}

	given := time.Date(2020, 1, 1, 0, 0, 0, 1500, time.UTC)
	e2 := &store.AuditEvent{At: given, Actor: "system", Action: "key.rotate", Outcome: "ok"}
	if err := r.Record(ctx, e2); err != nil {
		t.Fatal(err)
	}
	if want := given.Truncate(time.Microsecond); !e2.At.Equal(want) {
		t.Errorf("At = %v, want the given time truncated to %v", e2.At, want)
	}
	if !bytes.Equal(e2.PrevHash, e.Hash) {
		t.Error("second event not linked to the first")
	}
	if n, err := audit.Verify(ctx, m); err != nil || n != 2 {
		t.Fatalf("Verify = %d, %v; want 2, nil", n, err)
	}
}

func TestRecordInvalid(t *testing.T) {
	r, m := newRecorder(t)
	cases := []struct {
		name string
		e    store.AuditEvent
	}{
		{"no actor", store.AuditEvent{Action: "a", Outcome: "ok"}},
		{"no action", store.AuditEvent{Actor: "system", Outcome: "ok"}},
		{"no outcome", store.AuditEvent{Actor: "system", Action: "a"}},
	}
	for _, c := range cases {
		if err := r.Record(context.Background(), &c.e); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want audit.ErrInvalidEvent", c.name, err)
		}
	}
	if len(list(t, m)) != 0 {
		t.Fatal("invalid events were stored")
	}
}

func TestNewRequiresStore(t *testing.T) {
	if _, err := audit.New(audit.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

// fill records n events and returns the store.
func fill(t *testing.T, n int) store.AuditStore {
	t.Helper()
	r, m := newRecorder(t)
	for i := range n {
		e := &store.AuditEvent{Actor: "system", Action: "test", Object: fmt.Sprint(i), Outcome: "ok",
			Detail: map[string]string{"i": fmt.Sprint(i)}}
		if err := r.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 3, audit.VerifyPage, audit.VerifyPage + 1, 2*audit.VerifyPage + 7} {
		m := fill(t, n)
		if got, err := audit.Verify(ctx, m); err != nil || got != n {
			t.Errorf("Verify of %d intact events = %d, %v", n, got, err)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 2*audit.VerifyPage + 10
	intact := fill(t, n)
	cases := []struct {
		name        string
		tamper      func(m *tampered)
		wantSeq     int64
		wantChecked int
	}{
		{"outcome edited", func(m *tampered) { m.events[9].Outcome = "fail" }, 10, 9},
		{"detail edited", func(m *tampered) { m.events[600].Detail["i"] = "x" }, 601, 600},
		{"detail added", func(m *tampered) { m.events[0].Detail["extra"] = "" }, 1, 0},
		{"time edited", func(m *tampered) { m.events[4].At = m.events[4].At.Add(time.Microsecond) }, 5, 4},
		{"hash recomputed after edit", func(m *tampered) {
			e := m.events[19]
			e.Actor = "operator:mallory"
			e.Hash = audit.Chain(e.PrevHash, e)
		}, 21, 20},
		{"event deleted", func(m *tampered) { m.events = append(m.events[:30], m.events[31:]...) }, 32, 30},
		{"last event deleted", func(m *tampered) { m.events = m.events[:n-1] }, 0, n - 1},
		{"events swapped", func(m *tampered) {
			m.events[40], m.events[41] = m.events[41], m.events[40]
		}, 42, 40},
		{"first event given a predecessor", func(m *tampered) {
			e := m.events[0]
			e.PrevHash = []byte{1}
			e.Hash = audit.Chain(e.PrevHash, e)
		}, 1, 0},
		{"prev hash zeroed", func(m *tampered) { m.events[700].PrevHash = nil }, 701, 700},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &tampered{AuditStore: intact, events: list(t, intact)}
			c.tamper(m)
			checked, err := audit.Verify(context.Background(), m)
			if c.wantSeq == 0 {
				// Truncating the tail cannot be detected from the log alone.
				if err != nil || checked != c.wantChecked {
					t.Fatalf("Verify = %d, %v; want %d, nil", checked, err, c.wantChecked)
				}
				return
			}
			var be *audit.BrokenError
			if !errors.As(err, &be) || !errors.Is(err, audit.ErrBroken) {
				t.Fatalf("Verify error = %v, want a *audit.BrokenError", err)
			}
			if be.Seq != c.wantSeq || checked != c.wantChecked {
				t.Fatalf("broken at seq %d after %d checked (%v); want seq %d after %d", be.Seq, checked, err, c.wantSeq, c.wantChecked)
			}
		})
	}
}

func TestVerifyStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	m := failingList{AuditStore: sqlitetest.Open(t).Audit(), err: boom}
	_, err := audit.Verify(context.Background(), m)
	if !errors.Is(err, boom) || errors.Is(err, audit.ErrBroken) {
		t.Fatalf("err = %v, want the store error, not ErrBroken", err)
	}
}
