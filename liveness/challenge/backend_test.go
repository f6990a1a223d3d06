package challenge

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
)

// TestBackends runs single use, session binding, expiry and lockout on the
// real ephemeral backends with the real clock (short TTLs).
func TestBackends(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) ephemeral.Store
	}{
		{"memory", func(t *testing.T) ephemeral.Store {
			m := memory.New(memory.Options{})
			t.Cleanup(func() { m.Close() })
			return m
		}},
		{"redis", func(t *testing.T) ephemeral.Store { return redistest.Open(t, "challenge") }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t) // closed when the test ends
			m, err := New(Config{Store: st, Secret: bytes.Repeat([]byte{9}, 32), TTL: 300 * time.Millisecond, LockoutDuration: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			iss, err := m.Issue(ctx, "sess", "subj", "addr")
			if err != nil {
				t.Fatal(err)
			}
			if ch, err := m.Consume(ctx, iss.ID, "sess", "subj"); err != nil || ch.Digits != iss.Digits {
				t.Fatalf("consume: %v %v", ch, err)
			}
			if _, err := m.Consume(ctx, iss.ID, "sess", "subj"); !errors.Is(err, ErrReplayed) {
				t.Errorf("replay: %v", err)
			}
			other, _ := m.Issue(ctx, "sess", "subj", "addr")
			if _, err := m.Consume(ctx, other.ID, "sess-2", "subj"); !errors.Is(err, ErrWrongSession) {
				t.Errorf("other session: %v", err)
			}
			late, _ := m.Issue(ctx, "sess", "subj", "addr")
			time.Sleep(400 * time.Millisecond) // past the 300 ms TTL
			if _, err := m.Consume(ctx, late.ID, "sess", "subj"); !errors.Is(err, ErrExpired) {
				t.Errorf("expired: %v", err)
			}
			for i := 0; i < 5; i++ {
				if _, err := m.RecordFailure(ctx, "subj", Client{Addr: "addr"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.Issue(ctx, "sess", "subj", "addr"); !errors.Is(err, ErrLocked) {
				t.Errorf("after 5 failures: %v", err)
			}
		})
	}
}
