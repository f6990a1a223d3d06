package audit

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

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

func BenchmarkChain(b *testing.B) {
	e := &store.AuditEvent{Seq: 1, At: time.Now(), Actor: "citizen:c1", Action: "cert.verify", Subject: "c1",
		Object: "serial", Outcome: "ok", Detail: map[string]string{"purpose": "hotel", "verifier": "client:h1"}}
	prev := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		prev = Chain(prev, e)
	}
}
