package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// memAudit is a minimal in-memory store.AuditStore, with the same Append
// contract as the real backends (assign Seq and PrevHash, then Hash).
type memAudit struct {
	mu      sync.Mutex
	events  []*store.AuditEvent
	listErr error
}

var _ store.AuditStore = (*memAudit)(nil)

func (m *memAudit) Append(_ context.Context, e *store.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var prev []byte
	if n := len(m.events); n > 0 {
		prev = m.events[n-1].Hash
	}
	e.Seq = int64(len(m.events) + 1)
	e.PrevHash = prev
	e.Hash = Chain(prev, e)
	c := *e
	c.Detail = maps.Clone(e.Detail)
	m.events = append(m.events, &c)
	return nil
}

func (m *memAudit) List(_ context.Context, after int64, limit int) ([]*store.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listErr != nil {
		return nil, m.listErr
	}
	var out []*store.AuditEvent
	for _, e := range m.events {
		if e.Seq > after && len(out) < limit {
			c := *e
			out = append(out, &c)
		}
	}
	return out, nil
}

func (m *memAudit) ListBySubject(context.Context, string, string, int) ([]*store.AuditEvent, error) {
	return nil, errors.New("not used")
}

// TestChainGolden pins the documented encoding; the expected hashes were
// computed by an independent implementation of the package doc (Python).
func TestChainGolden(t *testing.T) {
	prev := make([]byte, 32)
	for i := range prev {
		prev[i] = byte(i)
	}
	cases := []struct {
		name string
		prev []byte
		e    store.AuditEvent
		want string
	}{
		{
			name: "full event",
			prev: prev,
			e: store.AuditEvent{
				Seq: 7, At: time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC),
				Actor: "citizen:c1", Action: "cert.verify", Subject: "c1", Object: "serial-9", Outcome: "ok",
				Detail: map[string]string{"verifier": "client:h1", "purpose": "hotel", "ä": "ü"},
			},
			want: "58eaa3643db8d1fd46ba7a265c85a8de8ebbcb59d9f1c8f5b69e37d5953a5d34",
		},
		{
			name: "first event, empty fields",
			e:    store.AuditEvent{Seq: 1, At: time.Unix(0, 0), Actor: "system", Action: "boot", Outcome: "ok"},
			want: "64b1f653f4b8825dfac15536ea16dc8a2b2e8ac9a1609f233d7d7491e3d10d54",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := hex.EncodeToString(Chain(c.prev, &c.e)); got != c.want {
				t.Fatalf("Chain = %s, want %s", got, c.want)
			}
		})
	}
}

func TestChainDistinguishes(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := func() store.AuditEvent {
		return store.AuditEvent{Seq: 3, At: at, Actor: "ab", Action: "c", Subject: "s", Object: "o", Outcome: "ok",
			Detail: map[string]string{"a": "bc"}}
	}
	cases := []struct {
		name   string
		prev   []byte
		mutate func(e *store.AuditEvent)
	}{
		{"prev", []byte{1}, func(*store.AuditEvent) {}},
		{"seq", nil, func(e *store.AuditEvent) { e.Seq = 4 }},
		{"at one microsecond", nil, func(e *store.AuditEvent) { e.At = e.At.Add(time.Microsecond) }},
		{"field boundary shift", nil, func(e *store.AuditEvent) { e.Actor, e.Action = "a", "bc" }},
		{"subject/object swap", nil, func(e *store.AuditEvent) { e.Subject, e.Object = "o", "s" }},
		{"outcome", nil, func(e *store.AuditEvent) { e.Outcome = "fail" }},
		{"detail key/value boundary", nil, func(e *store.AuditEvent) { e.Detail = map[string]string{"ab": "c"} }},
		{"detail extra pair", nil, func(e *store.AuditEvent) { e.Detail["x"] = "" }},
		{"detail removed", nil, func(e *store.AuditEvent) { e.Detail = nil }},
		{"detail into field", nil, func(e *store.AuditEvent) { e.Outcome, e.Detail = "oka", map[string]string{"": "bc"} }},
	}
	b := base()
	ref := Chain(nil, &b)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := base()
			c.mutate(&e)
			if bytes.Equal(Chain(c.prev, &e), ref) {
				t.Fatal("different events hash the same")
			}
		})
	}
}

func TestChainStable(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := store.AuditEvent{Seq: 1, At: at, Actor: "x", Action: "y", Outcome: "ok"}
	b := a
	b.Detail = map[string]string{}
	if !bytes.Equal(Chain(nil, &a), Chain(nil, &b)) {
		t.Error("nil and empty Detail hash differently")
	}
	c := a
	c.At = at.In(time.FixedZone("X", 3600)).Add(999 * time.Nanosecond)
	if !bytes.Equal(Chain(nil, &a), Chain(nil, &c)) {
		t.Error("time zone or sub-microsecond part changes the hash")
	}
	d := a
	d.PrevHash, d.Hash = []byte("ignored"), []byte("ignored")
	if !bytes.Equal(Chain(nil, &a), Chain(nil, &d)) {
		t.Error("the event's own PrevHash/Hash fields change the hash")
	}
	// Map order: build the same detail in many insertion orders.
	keys := []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"}
	var want []byte
	for i := range 20 {
		m := map[string]string{}
		for j := range keys {
			k := keys[(i+j)%len(keys)]
			m[k] = "v" + k
		}
		e := a
		e.Detail = m
		h := Chain(nil, &e)
		if want == nil {
			want = h
		} else if !bytes.Equal(h, want) {
			t.Fatal("Detail order changes the hash")
		}
	}
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newRecorder(t *testing.T) (*Recorder, *memAudit) {
	t.Helper()
	m := &memAudit{}
	clk := &fixedClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200))}
	r, err := New(Config{Store: m, Now: clk.Now})
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
	if e.Seq != 1 || e.PrevHash != nil || !bytes.Equal(e.Hash, Chain(nil, e)) {
		t.Errorf("Seq/PrevHash/Hash not set as the store assigned them: %d %x %x", e.Seq, e.PrevHash, e.Hash)
	}
	if got := m.events[0].Detail["purpose"]; got != "hotel" {
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
	if n, err := Verify(ctx, m); err != nil || n != 2 {
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
		if err := r.Record(context.Background(), &c.e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if len(m.events) != 0 {
		t.Fatal("invalid events were stored")
	}
}

func TestNewRequiresStore(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

// fill records n events and returns the store.
func fill(t *testing.T, n int) *memAudit {
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
	for _, n := range []int{0, 1, 3, verifyPage, verifyPage + 1, 2*verifyPage + 7} {
		m := fill(t, n)
		if got, err := Verify(ctx, m); err != nil || got != n {
			t.Errorf("Verify of %d intact events = %d, %v", n, got, err)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 2*verifyPage + 10
	cases := []struct {
		name        string
		tamper      func(m *memAudit)
		wantSeq     int64
		wantChecked int
	}{
		{"outcome edited", func(m *memAudit) { m.events[9].Outcome = "fail" }, 10, 9},
		{"detail edited", func(m *memAudit) { m.events[600].Detail["i"] = "x" }, 601, 600},
		{"detail added", func(m *memAudit) { m.events[0].Detail["extra"] = "" }, 1, 0},
		{"time edited", func(m *memAudit) { m.events[4].At = m.events[4].At.Add(time.Microsecond) }, 5, 4},
		{"hash recomputed after edit", func(m *memAudit) {
			e := m.events[19]
			e.Actor = "operator:mallory"
			e.Hash = Chain(e.PrevHash, e)
		}, 21, 20},
		{"event deleted", func(m *memAudit) { m.events = append(m.events[:30], m.events[31:]...) }, 32, 30},
		{"last event deleted", func(m *memAudit) { m.events = m.events[:n-1] }, 0, n - 1},
		{"events swapped", func(m *memAudit) {
			m.events[40], m.events[41] = m.events[41], m.events[40]
		}, 42, 40},
		{"first event given a predecessor", func(m *memAudit) {
			e := m.events[0]
			e.PrevHash = []byte{1}
			e.Hash = Chain(e.PrevHash, e)
		}, 1, 0},
		{"prev hash zeroed", func(m *memAudit) { m.events[700].PrevHash = nil }, 701, 700},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := fill(t, n)
			c.tamper(m)
			checked, err := Verify(context.Background(), m)
			if c.wantSeq == 0 {
				// Truncating the tail cannot be detected from the log alone.
				if err != nil || checked != c.wantChecked {
					t.Fatalf("Verify = %d, %v; want %d, nil", checked, err, c.wantChecked)
				}
				return
			}
			var be *BrokenError
			if !errors.As(err, &be) || !errors.Is(err, ErrBroken) {
				t.Fatalf("Verify error = %v, want a *BrokenError", err)
			}
			if be.Seq != c.wantSeq || checked != c.wantChecked {
				t.Fatalf("broken at seq %d after %d checked (%v); want seq %d after %d", be.Seq, checked, err, c.wantSeq, c.wantChecked)
			}
		})
	}
}

func TestVerifyStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	m := &memAudit{listErr: boom}
	_, err := Verify(context.Background(), m)
	if !errors.Is(err, boom) || errors.Is(err, ErrBroken) {
		t.Fatalf("err = %v, want the store error, not ErrBroken", err)
	}
}

func BenchmarkChain(b *testing.B) {
	e := &store.AuditEvent{Seq: 1, At: time.Now(), Actor: "citizen:c1", Action: "cert.verify", Subject: "c1",
		Object: "serial", Outcome: "ok", Detail: map[string]string{"purpose": "hotel", "verifier": "client:h1"}}
	prev := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		prev = Chain(prev, e)
	}
}
