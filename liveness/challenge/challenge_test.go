package challenge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mrand "math/rand/v2"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seededReader is a deterministic random source for tests.
type seededReader struct{ r *mrand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

// memStore is the in-process ephemeral store on the clock now (nil: the
// real one), closed when t ends.
func memStore(t testing.TB, now func() time.Time) *memory.Store {
	s := memory.New(memory.Options{Now: now, JanitorInterval: time.Hour})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// recording is an ephemeral store that remembers every key written
// through it and the value last written there (nil for counters).
type recording struct {
	ephemeral.Store
	mu     sync.Mutex
	writes map[string][]byte
}

func (r *recording) record(key string, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writes == nil {
		r.writes = map[string][]byte{}
	}
	r.writes[key] = bytes.Clone(value)
}

// written returns a copy of what was written.
func (r *recording) written() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.writes)
}

func (r *recording) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.record(key, value)
	return r.Store.Set(ctx, key, value, ttl)
}

func (r *recording) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.record(key, value)
	return r.Store.SetNX(ctx, key, value, ttl)
}

func (r *recording) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	r.record(guard, nil)
	for _, w := range append(slices.Clone(guarded), plain...) {
		r.record(w.Key, w.Value)
	}
	return r.Store.SetUnless(ctx, guard, guarded, plain...)
}

func (r *recording) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	r.record(key, nil)
	return r.Store.Incr(ctx, key, delta, ttl)
}

func (r *recording) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	r.record(key, nil)
	return r.Store.Allow(ctx, key, limit, window)
}

func newManager(t *testing.T) (*Manager, *recording, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	st := &recording{Store: memStore(t, clk.Now)}
	m, err := New(Config{
		Store:  st,
		Secret: bytes.Repeat([]byte{7}, 32),
		Rand:   seededReader{mrand.NewChaCha8([32]byte{1})},
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The store has remembered for longer than every window (no recent loss).
	clk.Add(2 * time.Hour)
	return m, st, clk
}

func TestWeak(t *testing.T) {
	tests := []struct {
		name string
		d    string
		weak bool
	}{
		{"all same", "1111", true},
		{"ascending", "1234", true},
		{"ascending from zero", "0123", true},
		{"ascending wrapping", "8901", true},
		{"descending", "9876", true},
		{"descending wrapping", "1098", true},
		{"three repeats", "1112", true},
		{"three repeats spread", "5155", true},
		{"alternating", "1212", true},
		{"too short", "123", true},
		{"not digits", "12a4", true},
		{"ordinary", "4829", false},
		{"one pair", "4429", false},
		{"partial run", "1235", false},
		{"mirror", "1221", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Weak(tt.d); got != tt.weak {
				t.Errorf("Weak(%q) = %v, want %v", tt.d, got, tt.weak)
			}
		})
	}
}

func TestGenerateDeterministicAndStrong(t *testing.T) {
	a := seededReader{mrand.NewChaCha8([32]byte{9})}
	b := seededReader{mrand.NewChaCha8([32]byte{9})}
	seen := map[string]int{}
	for i := 0; i < 2000; i++ {
		da, err := Generate(a)
		if err != nil {
			t.Fatal(err)
		}
		db, _ := Generate(b)
		if da != db {
			t.Fatalf("same seed gave %s and %s", da, db)
		}
		if Weak(da) {
			t.Fatalf("Generate returned weak code %s", da)
		}
		seen[da]++
	}
	if len(seen) < 1500 {
		t.Errorf("only %d distinct codes in 2000 draws", len(seen))
	}
}

func TestGenerateRejectsWeakDraws(t *testing.T) {
	// 1111, then 65535 (rejected by the sampler), then 4829.
	r := bytes.NewReader([]byte{0x04, 0x57, 0xff, 0xff, 0x12, 0xdd})
	d, err := Generate(r)
	if err != nil {
		t.Fatal(err)
	}
	if d != "4829" {
		t.Errorf("got %s, want 4829", d)
	}
	if _, err := Generate(bytes.NewReader(nil)); err == nil {
		t.Error("exhausted reader: want error")
	}
}

func TestIssueConsume(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	iss, err := m.Issue(ctx, "sess-1", "subj-1", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Digits) != 4 || Weak(iss.Digits) {
		t.Fatalf("bad digits %q", iss.Digits)
	}
	// Nothing written to the store reveals the digits, session or subject.
	writes := st.written()
	if len(writes) == 0 {
		t.Fatal("no write recorded")
	}
	for k, v := range writes {
		for _, secret := range []string{iss.Digits, "sess-1", "subj-1", "10.0.0.1"} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("store entry %q reveals %q", k, secret)
			}
		}
	}
	ch, err := m.Consume(ctx, iss.ID, "sess-1", "subj-1")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Digits != iss.Digits || ch.ID != iss.ID {
		t.Errorf("consumed %+v, issued %+v", ch, iss)
	}
}

func TestConsumeRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(m *Manager, clk *clock, id string)
		session string
		subject string
		id      string
		want    error
	}{
		{"replayed", func(m *Manager, _ *clock, id string) {
			if _, err := m.Consume(ctx, id, "sess", "subj"); err != nil {
				panic(err)
			}
		}, "sess", "subj", "", ErrReplayed},
		{"expired", func(_ *Manager, clk *clock, _ string) { clk.Add(2*time.Minute + time.Second) }, "sess", "subj", "", ErrExpired},
		{"other session", nil, "sess-other", "subj", "", ErrWrongSession},
		{"other subject", nil, "sess", "subj-other", "", ErrWrongSubject},
		{"unknown id", nil, "sess", "subj", "no-such-id", ErrUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, clk := newManager(t)
			iss, err := m.Issue(ctx, "sess", "subj", "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(m, clk, iss.ID)
			}
			id := iss.ID
			if tt.id != "" {
				id = tt.id
			}
			_, err = m.Consume(ctx, id, tt.session, tt.subject)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("err = %v does not match ErrRefused", err)
			}
			// Whatever happened, the challenge is unusable now.
			if id != iss.ID {
				return
			}
			if _, err := m.Consume(ctx, iss.ID, "sess", "subj"); !errors.Is(err, ErrRefused) {
				t.Errorf("second consume: err = %v, want a refusal", err)
			}
		})
	}
}

func TestConsumeFailedAttemptUsesChallenge(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	iss, _ := m.Issue(ctx, "sess", "subj", "a")
	if _, err := m.Consume(ctx, iss.ID, "other", "subj"); !errors.Is(err, ErrWrongSession) {
		t.Fatalf("err = %v", err)
	}
	if _, err := m.Consume(ctx, iss.ID, "sess", "subj"); !errors.Is(err, ErrReplayed) {
		t.Fatalf("genuine session after a wrong-session attempt: err = %v, want ErrReplayed", err)
	}
}

func TestConcurrentConsumeOneWins(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	iss, _ := m.Issue(ctx, "sess", "subj", "a")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Consume(ctx, iss.ID, "sess", "subj"); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d consumers won, want 1", wins)
	}
}

func TestIssueRateLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("per subject", func(t *testing.T) {
		m, _, clk := newManager(t)
		for i := 0; i < 10; i++ {
			if _, err := m.Issue(ctx, "s", "subj", "addr"+string(rune('a'+i))); err != nil {
				t.Fatalf("issue %d: %v", i, err)
			}
		}
		_, err := m.Issue(ctx, "s", "subj", "addr-new")
		var re *RetryError
		if !errors.Is(err, ErrRateLimited) || !errors.As(err, &re) || re.RetryAfter <= 0 {
			t.Fatalf("11th issue: err = %v, want ErrRateLimited with a retry hint", err)
		}
		if _, err := m.Issue(ctx, "s", "other-subj", "addr-new"); err != nil {
			t.Errorf("another subject is not limited: %v", err)
		}
		clk.Add(10 * time.Minute)
		if _, err := m.Issue(ctx, "s", "subj", "addr-new"); err != nil {
			t.Errorf("after the window: %v", err)
		}
	})
	t.Run("per address", func(t *testing.T) {
		m, _, _ := newManager(t)
		for i := 0; i < 30; i++ {
			if _, err := m.Issue(ctx, "s", "subj"+string(rune('a'+i)), "addr"); err != nil {
				t.Fatalf("issue %d: %v", i, err)
			}
		}
		if _, err := m.Issue(ctx, "s", "subj-new", "addr"); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("31st issue from one address: err = %v", err)
		}
	})
}

func TestLockoutAfterFailures(t *testing.T) {
	ctx := context.Background()
	m, _, clk := newManager(t)
	attacker := Client{Addr: "203.0.113.9", Device: "dev-attacker"}
	for i := 1; i <= 4; i++ {
		locked, err := m.RecordFailure(ctx, "subj", attacker)
		if err != nil || locked {
			t.Fatalf("failure %d: locked=%v err=%v", i, locked, err)
		}
		clk.Add(30 * time.Second)
	}
	if err := m.Locked(ctx, "subj", attacker); err != nil {
		t.Fatalf("locked after 4 failures: %v", err)
	}
	locked, err := m.RecordFailure(ctx, "subj", attacker)
	if err != nil || !locked {
		t.Fatalf("5th failure: locked=%v err=%v", locked, err)
	}
	var re *RetryError
	if _, err := m.IssueFor(ctx, "s", "subj", attacker); !errors.As(err, &re) || !errors.Is(err, ErrLocked) || re.RetryAfter != time.Minute {
		t.Errorf("issue for the locked pair: err = %v, want a 1 min lockout", err)
	}
	// A stranger's failures lock the stranger, not the citizen: the
	// citizen's own device (same NAT address, even unknown) still gets a
	// challenge, and so does the attacker for another subject.
	if _, err := m.IssueFor(ctx, "s", "subj", Client{Addr: "203.0.113.9", Device: "dev-citizen"}); err != nil {
		t.Errorf("citizen's device behind the same address: %v", err)
	}
	if _, err := m.IssueFor(ctx, "s", "other-subj", attacker); err != nil {
		t.Errorf("attacker for another subject: %v", err)
	}
	clk.Add(time.Minute)
	if _, err := m.IssueFor(ctx, "s", "subj", attacker); err != nil {
		t.Errorf("after the first lockout: %v", err)
	}
	// Exponential backoff: the next lockouts of the pair last 2, 4, ... min.
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute} {
		for range 5 {
			if _, err := m.RecordFailure(ctx, "subj", attacker); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Locked(ctx, "subj", attacker); !errors.As(err, &re) || re.RetryAfter != want {
			t.Fatalf("Locked = %v, want %v", err, want)
		}
		clk.Add(want)
	}
	// A success (the device is then known for subj) clears the pair's backoff.
	known := attacker
	known.Known = true
	if err := m.RecordSuccess(ctx, "subj", known); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		m.RecordFailure(ctx, "subj", known)
	}
	if err := m.Locked(ctx, "subj", known); !errors.As(err, &re) || re.RetryAfter != time.Minute {
		t.Errorf("after a success the backoff restarts: %v", err)
	}
}

// TestDistributedGuessing: failures from many unknown devices against one
// subject lock unknown devices out of it, but not the citizen's known
// device; failures from one address lock that address for unknown devices.
func TestDistributedGuessing(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	for i := range 20 {
		dev := Client{Addr: fmt.Sprintf("198.51.100.%d", i), Device: fmt.Sprintf("bot-%d", i)}
		if _, err := m.RecordFailure(ctx, "subj", dev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.IssueFor(ctx, "s", "subj", Client{Addr: "192.0.2.1", Device: "new"}); !errors.Is(err, ErrLocked) {
		t.Errorf("unknown device after 20 distributed failures: %v", err)
	}
	known := Client{Addr: "192.0.2.1", Device: "phone", Known: true}
	if _, err := m.IssueFor(ctx, "s", "subj", known); err != nil {
		t.Errorf("the citizen's known device: %v", err)
	}
	for i := range 50 {
		if _, err := m.RecordFailure(ctx, fmt.Sprintf("victim-%d", i), Client{Addr: "192.0.2.200", Device: fmt.Sprintf("d%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.IssueFor(ctx, "s", "fresh", Client{Addr: "192.0.2.200", Device: "another"}); !errors.Is(err, ErrLocked) {
		t.Errorf("unknown device on an address with 50 failures: %v", err)
	}
	if _, err := m.IssueFor(ctx, "s", "fresh", Client{Addr: "192.0.2.200", Device: "phone", Known: true}); err != nil {
		t.Errorf("known device on that address: %v", err)
	}
}

func TestKnownDeviceProof(t *testing.T) {
	m, _, _ := newManager(t)
	p := m.KnownDeviceProof("subj", "dev")
	for _, tc := range []struct {
		name, subject, device, proof string
		want                         bool
	}{
		{"own proof", "subj", "dev", p, true},
		{"other subject", "other", "dev", p, false},
		{"other device", "subj", "dev2", p, false},
		{"no device", "subj", "", p, false},
		{"empty proof", "subj", "dev", "", false},
		{"forged", "subj", "dev", "AAAAAAAAAAAAAAAAAAAAAAAA", false},
	} {
		if got := m.IsKnownDevice(tc.subject, tc.device, tc.proof); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLossShrinksUnknownDeviceBudget: after the ephemeral store lost its
// memory (a Redis flush: every counter gone), unknown devices get a quarter
// of the subject-wide budget for a subject window, so a loss gives a
// stranger no fresh window of guesses; known devices are not affected.
func TestLossShrinksUnknownDeviceBudget(t *testing.T) {
	ctx := context.Background()
	m, st, clk := newManager(t)
	if err := st.Store.(interface{ Clear(context.Context) error }).Clear(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		locked, err := m.RecordFailure(ctx, "subj", Client{Addr: fmt.Sprintf("198.51.100.%d", i), Device: fmt.Sprintf("bot-%d", i)})
		if err != nil || locked != (i == 4) {
			t.Fatalf("failure %d after the loss: locked=%v err=%v", i+1, locked, err)
		}
	}
	if _, err := m.IssueFor(ctx, "s", "subj", Client{Addr: "192.0.2.1", Device: "new"}); !errors.Is(err, ErrLocked) {
		t.Errorf("unknown device after 5 failures following a loss: %v", err)
	}
	if _, err := m.IssueFor(ctx, "s", "subj", Client{Addr: "192.0.2.1", Device: "phone", Known: true}); err != nil {
		t.Errorf("known device: %v", err)
	}
	// An hour later the full budget is back.
	clk.Add(time.Hour + 15*time.Minute)
	for i := range 6 {
		if locked, err := m.RecordFailure(ctx, "other", Client{Addr: fmt.Sprintf("203.0.113.%d", i), Device: fmt.Sprintf("d-%d", i)}); err != nil || locked {
			t.Fatalf("failure %d an hour after the loss: locked=%v err=%v", i+1, locked, err)
		}
	}
}

// TestPartialLossShrinksBudget: on a Redis Cluster one node can lose its
// keys while the others keep theirs. The subject-wide counter and the
// marker that tells of its loss share a hash tag (one slot, one node), so
// losing that node's keys alone still shrinks the unknown devices' budget
// (with one marker for every counter, the marker could survive on another
// node and the loss go unseen).
func TestPartialLossShrinksBudget(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	tag := m.subjectTag("subj")
	if !strings.Contains(m.subjectKey("fail:subj:", "subj"), tag) || !strings.Contains(m.subjectKey("lock:subj:", "subj"), tag) {
		t.Fatalf("subject keys %q, %q lack the tag %q", m.subjectKey("fail:subj:", "subj"), m.subjectKey("lock:subj:", "subj"), tag)
	}
	// The node holding the tag's slot loses its keys: the subject's
	// counters (none yet here) and the tag's marker; the other markers stay.
	if err := st.Delete(ctx, m.cfg.KeyPrefix+"memory"+tag); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		locked, err := m.RecordFailure(ctx, "subj", Client{Addr: fmt.Sprintf("203.0.113.%d", i), Device: fmt.Sprintf("d-%d", i)})
		if err != nil || locked != (i == 4) {
			t.Fatalf("failure %d after the node's loss: locked=%v err=%v (want the quarter budget: 5)", i+1, locked, err)
		}
	}
	// Another subject, on a node that lost nothing, keeps the full budget.
	if m.subjectTag("other") == tag {
		t.Skip("same tag") // not the case for this secret
	}
	for i := range 6 {
		if locked, err := m.RecordFailure(ctx, "other", Client{Addr: fmt.Sprintf("192.0.2.%d", i), Device: fmt.Sprintf("o-%d", i)}); err != nil || locked {
			t.Fatalf("other subject, failure %d: locked=%v err=%v", i+1, locked, err)
		}
	}
}

func TestFailuresOutsideWindowDoNotLock(t *testing.T) {
	ctx := context.Background()
	m, _, clk := newManager(t)
	for i := 0; i < 10; i++ {
		if locked, err := m.RecordFailure(ctx, "subj", Client{Addr: "addr"}); err != nil || locked {
			t.Fatalf("failure %d: locked=%v err=%v", i, locked, err)
		}
		clk.Add(50 * time.Second) // 4 per 200 s: never 5 within 3 min
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Store") || !strings.Contains(err.Error(), "Secret") {
		t.Errorf("empty config: err = %v, want both problems reported", err)
	}
}

func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	m, _ := New(Config{Store: memStore(b, clk.Now), Secret: make([]byte, 32), Now: clk.Now, SubjectIssueLimit: 1 << 30, AddressIssueLimit: 1 << 30})
	b.ReportAllocs()
	for b.Loop() {
		iss, err := m.Issue(ctx, "s", "u", "a")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Consume(ctx, iss.ID, "s", "u"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFixedDigitsForTestHarness(t *testing.T) {
	for _, tc := range []struct {
		name    string
		digits  string
		wantErr bool
	}{
		{name: "four digits", digits: "2749"},
		{name: "one digit (a real GRID speaker's)", digits: "5"},
		{name: "too long", digits: "27491", wantErr: true},
		{name: "empty after trim", digits: " 5", wantErr: true},
		{name: "not digits", digits: "27a9", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Store: memStore(t, nil), Secret: make([]byte, 32), FixedDigits: tc.digits}
			m, err := New(cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want a config error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			iss, err := m.Issue(context.Background(), "s", "sub", "a")
			if err != nil {
				t.Fatal(err)
			}
			if iss.Digits != tc.digits {
				t.Fatalf("digits %q, want %q", iss.Digits, tc.digits)
			}
		})
	}
}

func TestFixedDigits(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	m, err := New(Config{Store: memStore(t, clk.Now), Secret: make([]byte, 32), Now: clk.Now, FixedDigits: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := m.Issue(ctx, "s", "u", "a")
	if err != nil || iss.Digits != "1234" {
		t.Fatalf("issued %+v, %v", iss, err)
	}
	ch, err := m.Consume(ctx, iss.ID, "s", "u")
	if err != nil || ch.Digits != "1234" {
		t.Fatalf("consumed %+v, %v", ch, err)
	}
	if _, err := New(Config{Store: memStore(t, clk.Now), Secret: make([]byte, 32), FixedDigits: "12a"}); err == nil {
		t.Error("bad FixedDigits accepted")
	}
}
