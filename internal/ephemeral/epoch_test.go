package ephemeral_test

import (
	"context"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
)

func TestMemorySince(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	born, err := ephemeral.MemorySince(ctx, s, "m:{a}", t0)
	if err != nil || !born.Equal(t0) {
		t.Fatalf("first call: %v %v, want %v", born, err, t0)
	}
	// Later calls keep the first birth.
	born, err = ephemeral.MemorySince(ctx, s, "m:{a}", t0.Add(time.Hour))
	if err != nil || !born.Equal(t0) {
		t.Fatalf("second call: %v %v, want %v", born, err, t0)
	}
	// A loss of the store (the marker is gone) starts a new memory.
	if err := s.Delete(ctx, "m:{a}"); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(2 * time.Hour)
	born, err = ephemeral.MemorySince(ctx, s, "m:{a}", t1)
	if err != nil || !born.Equal(t1) {
		t.Fatalf("after loss: %v %v, want %v", born, err, t1)
	}
	// An unreadable marker counts as a loss.
	if err := s.Set(ctx, "m:{a}", []byte("junk"), time.Hour); err != nil {
		t.Fatal(err)
	}
	t2 := t1.Add(time.Minute)
	born, err = ephemeral.MemorySince(ctx, s, "m:{a}", t2)
	if err != nil || !born.Equal(t2) {
		t.Fatalf("junk marker: %v %v, want %v", born, err, t2)
	}
}

func TestStartMemories(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if err := ephemeral.StartMemories(ctx, s, "p:", t0); err != nil {
		t.Fatal(err)
	}
	if got := ephemeral.MemoryTag(0xab); got != "{ab}" {
		t.Fatalf("MemoryTag(0xab) = %q", got)
	}
	// Every marker exists: a later read keeps the start time.
	for _, b := range []byte{0x00, 0xab, 0xff} {
		born, err := ephemeral.MemorySince(ctx, s, "p:"+ephemeral.MemoryTag(b), t0.Add(time.Hour))
		if err != nil || !born.Equal(t0) {
			t.Fatalf("marker %02x: %v %v, want %v", b, born, err, t0)
		}
	}
}
