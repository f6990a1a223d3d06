package challenge

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestAllSequences(t *testing.T) {
	all := AllSequences()
	if len(all) != 5*4+5*4*3 {
		t.Fatalf("%d sequences, want 80", len(all))
	}
	seen := map[string]bool{}
	for _, s := range all {
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
		if seen[s.String()] {
			t.Errorf("%v listed twice", s)
		}
		seen[s.String()] = true
	}
}

func TestGenerateActionsCoversEverySequence(t *testing.T) {
	r := seededReader{mrand.NewChaCha8([32]byte{3})}
	counts := map[string]int{}
	lengths := map[int]int{}
	const draws = 16000
	for range draws {
		s, err := GenerateActions(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		counts[s.String()]++
		lengths[len(s)]++
	}
	if len(counts) != 80 {
		t.Fatalf("%d distinct sequences in %d draws, want 80", len(counts), draws)
	}
	// Each length is drawn half the time (within 5 standard deviations).
	if d := lengths[2] - draws/2; d*d > 25*draws/4 {
		t.Errorf("lengths %v, want about half each", lengths)
	}
}

func TestIssueConsumeActions(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	iss, err := m.IssueKind(ctx, KindActions, "sess-1", "subj-1", Client{Addr: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if iss.Kind != KindActions || iss.Digits != "" || iss.Actions.Validate() != nil {
		t.Fatalf("issued %+v", iss)
	}
	for k, v := range st.written() {
		for _, a := range iss.Actions {
			if strings.Contains(k, string(a)) || bytes.Contains(v, []byte(a)) {
				t.Errorf("store entry %q reveals %q", k, a)
			}
		}
	}
	if _, err := m.Consume(ctx, iss.ID, "sess-1", "subj-other"); !errors.Is(err, ErrWrongSubject) {
		t.Fatalf("other subject: err = %v", err)
	}
	// The refused attempt used the challenge up.
	if _, err := m.Consume(ctx, iss.ID, "sess-1", "subj-1"); !errors.Is(err, ErrReplayed) {
		t.Fatalf("after a refusal: err = %v, want replayed", err)
	}
	iss, err = m.IssueKind(ctx, KindActions, "sess-1", "subj-1", Client{Addr: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.Consume(ctx, iss.ID, "sess-1", "subj-1")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind != KindActions || ch.Actions.String() != iss.Actions.String() {
		t.Fatalf("consumed %+v, issued %+v", ch, iss)
	}
}

func TestActionsExpireLikeDigits(t *testing.T) {
	ctx := context.Background()
	m, _, clk := newManager(t)
	iss, err := m.IssueKind(ctx, KindActions, "s", "u", Client{Addr: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2*time.Minute + time.Second)
	if _, err := m.Consume(ctx, iss.ID, "s", "u"); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want expired", err)
	}
}

func TestFixedActions(t *testing.T) {
	for _, tt := range []struct {
		name, fixed string
		ok          bool
	}{
		{"valid", "open_mouth+blink", true},
		{"repeat", "blink+blink", false},
		{"unknown", "blink+wave", false},
		{"too long", "blink+nod+turn_left+open_mouth", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{Store: memStore(t, time.Now), Secret: bytes.Repeat([]byte{1}, 32), FixedActions: tt.fixed})
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			iss, err := m.IssueKind(context.Background(), KindActions, "s", "u", Client{Addr: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if iss.Actions.String() != tt.fixed {
				t.Errorf("actions %v, want %s", iss.Actions, tt.fixed)
			}
		})
	}
	if _, err := (&Manager{}).IssueKind(context.Background(), "voice", "s", "u", Client{}); err == nil {
		t.Error("unknown kind issued")
	}
}
