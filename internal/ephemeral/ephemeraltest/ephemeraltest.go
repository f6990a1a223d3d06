// Package ephemeraltest is the conformance suite every ephemeral.Store
// backend must pass. Backends call Run from their own tests with a
// constructor that returns a fresh, isolated store (for Redis: a random key
// prefix) and registers its clean-up with t.Cleanup.
//
// The suite runs against real time: expiry checks use short TTLs (tens to a
// few hundred milliseconds) and poll with a generous deadline instead of
// asserting exact timings, so it stays reliable on a loaded machine.
package ephemeraltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
)

// pollDeadline bounds how long an expiry is waited for. It is a liveness
// bound, not a timing assertion: a healthy backend expires keys within a few
// milliseconds of the TTL.
const pollDeadline = 5 * time.Second

// Run runs the whole suite. newStore must return a fresh store that shares no
// keys with any other store it returned.
func Run(t *testing.T, newStore func(t *testing.T) ephemeral.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s ephemeral.Store)
	}{
		{"SetGet", testSetGet},
		{"Copies", testCopies},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"SetNX", testSetNX},
		{"SetUnless", testSetUnless},
		{"SetUnlessExpiry", testSetUnlessExpiry},
		{"SetUnlessCopies", testSetUnlessCopies},
		{"SetUnlessConcurrent", testSetUnlessConcurrent},
		{"WritesConcurrent", testWritesConcurrent},
		{"Take", testTake},
		{"TakeConcurrent", testTakeConcurrent},
		{"Incr", testIncr},
		{"IncrKeepsExpiry", testIncrKeepsExpiry},
		{"IncrConcurrent", testIncrConcurrent},
		{"IncrNotInteger", testIncrNotInteger},
		{"Allow", testAllow},
		{"AllowWindowSlides", testAllowWindowSlides},
		{"AllowKeysIndependent", testAllowKeysIndependent},
		{"AllowConcurrent", testAllowConcurrent},
		{"Invalid", testInvalid},
		{"Ping", testPing},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

// waitGone polls until Get(key) reports ErrNotFound.
func waitGone(t *testing.T, s ephemeral.Store, key string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(pollDeadline)
	for {
		_, err := s.Get(ctx, key)
		if errors.Is(err, ephemeral.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%q) while waiting for expiry: %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q still present %v after its TTL", key, pollDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustGet(t *testing.T, s ephemeral.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustNotFound(t *testing.T, s ephemeral.Store, key string) {
	t.Helper()
	if v, err := s.Get(context.Background(), key); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

func testSetGet(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	mustNotFound(t, s, "missing")
	cases := []struct {
		name  string
		key   string
		value []byte
	}{
		{"plain", "a", []byte("hello")},
		{"binary", "b", []byte{0, 1, 2, 0xff, 0}},
		{"empty value", "c", []byte{}},
		{"odd key", "ключ:with spaces\x00", []byte("x")},
	}
	for _, c := range cases {
		if err := s.Set(ctx, c.key, c.value, time.Minute); err != nil {
			t.Fatalf("%s: Set: %v", c.name, err)
		}
		mustGet(t, s, c.key, c.value)
	}
	if err := s.Set(ctx, "a", []byte("replaced"), time.Minute); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "a", []byte("replaced"))
}

func testCopies(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	v := []byte("abc")
	if err := s.Set(ctx, "k", v, time.Minute); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abc" {
		t.Fatalf("store kept the caller's slice: got %q", got)
	}
	got[1] = 'Y'
	mustGet(t, s, "k", []byte("abc"))
}

func testDelete(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotFound(t, s, "k")
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func testExpiry(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if err := s.Set(ctx, "short", []byte("v"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "long", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s, "short")
	if _, err := s.Take(ctx, "short"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Take of an expired key: %v, want ErrNotFound", err)
	}
	mustGet(t, s, "long", []byte("v"))

	// Set replaces the TTL too.
	if err := s.Set(ctx, "long", []byte("w"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s, "long")
}

func testSetNX(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	ok, err := s.SetNX(ctx, "k", []byte("first"), 150*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("SetNX on a new key = %v, %v; want true", ok, err)
	}
	ok, err = s.SetNX(ctx, "k", []byte("second"), time.Minute)
	if err != nil || ok {
		t.Fatalf("SetNX on an existing key = %v, %v; want false", ok, err)
	}
	mustGet(t, s, "k", []byte("first"))
	waitGone(t, s, "k")
	ok, err = s.SetNX(ctx, "k", []byte("third"), time.Minute)
	if err != nil || !ok {
		t.Fatalf("SetNX after expiry = %v, %v; want true", ok, err)
	}
	mustGet(t, s, "k", []byte("third"))

	// Concurrent SetNX: exactly one wins.
	const n = 50
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.SetNX(ctx, "race", fmt.Appendf(nil, "%d", i), time.Minute)
			if err != nil {
				t.Errorf("SetNX: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d concurrent SetNX: %d won, want exactly 1", n, got)
	}
}

// Keys a SetUnless guard relates to share a hash tag (see package ephemeral).
func tagged(name, tag string) string { return name + ":{" + tag + "}" }

func testSetUnless(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	w := func(key, value string) ephemeral.Write {
		return ephemeral.Write{Key: key, Value: []byte(value), TTL: time.Minute}
	}
	cases := []struct {
		name       string
		guardSet   bool
		guarded    []ephemeral.Write
		plain      []ephemeral.Write
		wantStored bool
	}{
		{name: "guard absent", guarded: []ephemeral.Write{w("a", "1"), w("b", "2")}, plain: []ephemeral.Write{w("p", "3"), w("q", "4")}, wantStored: true},
		{name: "guard present", guardSet: true, guarded: []ephemeral.Write{w("a", "1"), w("b", "2")}, plain: []ephemeral.Write{w("p", "3")}},
		{name: "only guarded", guarded: []ephemeral.Write{w("a", "1")}, wantStored: true},
		{name: "only plain, guard present", guardSet: true, plain: []ephemeral.Write{w("p", "3")}},
		{name: "nothing to write", wantStored: true},
	}
	for i, c := range cases {
		tag := fmt.Sprint(i)
		guard := tagged("guard", tag)
		for j := range c.guarded {
			c.guarded[j].Key = tagged(c.guarded[j].Key, tag)
			// A previous value stays when the guard is present.
			if err := s.Set(ctx, c.guarded[j].Key, []byte("old"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		for j := range c.plain {
			c.plain[j].Key += ":" + tag
		}
		if c.guardSet {
			if err := s.Set(ctx, guard, []byte{1}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		stored, err := s.SetUnless(ctx, guard, c.guarded, c.plain...)
		if err != nil || stored != c.wantStored {
			t.Fatalf("%s: SetUnless = %v, %v; want %v", c.name, stored, err, c.wantStored)
		}
		for _, g := range c.guarded {
			want := g.Value
			if !c.wantStored {
				want = []byte("old")
			}
			mustGet(t, s, g.Key, want)
		}
		for _, p := range c.plain {
			mustGet(t, s, p.Key, p.Value)
		}
		if !c.guardSet {
			mustNotFound(t, s, guard) // the guard is only read
		}
	}

	// An expired guard is absent.
	guard := tagged("guard", "expired")
	if err := s.Set(ctx, guard, []byte{1}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s, guard)
	stored, err := s.SetUnless(ctx, guard, []ephemeral.Write{w(tagged("a", "expired"), "1")})
	if err != nil || !stored {
		t.Fatalf("SetUnless after the guard expired = %v, %v; want true", stored, err)
	}
	mustGet(t, s, tagged("a", "expired"), []byte("1"))
}

func testSetUnlessExpiry(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	short := 100 * time.Millisecond
	stored, err := s.SetUnless(ctx, tagged("guard", "t"),
		[]ephemeral.Write{{Key: tagged("short", "t"), Value: []byte("v"), TTL: short}, {Key: tagged("long", "t"), Value: []byte("v"), TTL: time.Minute}},
		ephemeral.Write{Key: "pshort", Value: []byte("v"), TTL: short}, ephemeral.Write{Key: "plong", Value: []byte("v"), TTL: time.Minute})
	if err != nil || !stored {
		t.Fatalf("SetUnless = %v, %v; want true", stored, err)
	}
	waitGone(t, s, tagged("short", "t"))
	waitGone(t, s, "pshort")
	mustGet(t, s, tagged("long", "t"), []byte("v"))
	mustGet(t, s, "plong", []byte("v"))
}

func testSetUnlessCopies(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	g, p := []byte("guarded"), []byte("plain")
	if _, err := s.SetUnless(ctx, tagged("guard", "c"),
		[]ephemeral.Write{{Key: tagged("g", "c"), Value: g, TTL: time.Minute}},
		ephemeral.Write{Key: "p", Value: p, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	g[0], p[0] = 'X', 'X'
	mustGet(t, s, tagged("g", "c"), []byte("guarded"))
	mustGet(t, s, "p", []byte("plain"))
}

// testSetUnlessConcurrent races SetUnless against a writer that sets the
// guard and then the guarded key (a revocation racing a commit): whatever
// the interleaving, the writer's value is the one left.
func testSetUnlessConcurrent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	const n = 50
	var stored atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		tag := fmt.Sprint(i)
		guard, key := tagged("guard", tag), tagged("cur", tag)
		wg.Go(func() {
			ok, err := s.SetUnless(ctx, guard, []ephemeral.Write{{Key: key, Value: []byte("new"), TTL: time.Minute}})
			if err != nil {
				t.Errorf("SetUnless: %v", err)
			}
			if ok {
				stored.Add(1)
			}
		})
		wg.Go(func() {
			if err := s.Set(ctx, guard, []byte{1}, time.Minute); err != nil {
				t.Errorf("Set guard: %v", err)
			}
			if err := s.Set(ctx, key, []byte("revoked"), time.Minute); err != nil {
				t.Errorf("Set: %v", err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		mustGet(t, s, tagged("cur", fmt.Sprint(i)), []byte("revoked"))
	}
	t.Logf("%d of %d SetUnless stored before the guard", stored.Load(), n)
}

func testTake(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if _, err := s.Take(ctx, "k"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Take of a missing key: %v, want ErrNotFound", err)
	}
	if err := s.Set(ctx, "k", []byte("once"), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(ctx, "k")
	if err != nil || string(got) != "once" {
		t.Fatalf("Take = %q, %v; want \"once\"", got, err)
	}
	if _, err := s.Take(ctx, "k"); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("second Take: %v, want ErrNotFound", err)
	}
	mustNotFound(t, s, "k")
}

func testTakeConcurrent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	const takers = 50
	for round := range 5 {
		key := fmt.Sprintf("challenge-%d", round)
		if err := s.Set(ctx, key, []byte("secret"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := s.Take(ctx, key)
				switch {
				case err == nil:
					if string(v) != "secret" {
						t.Errorf("Take = %q", v)
					}
					wins.Add(1)
				case !errors.Is(err, ephemeral.ErrNotFound):
					t.Errorf("Take: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d concurrent takers won, want exactly 1", round, got, takers)
		}
	}
}

func testIncr(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	steps := []struct {
		name  string
		delta int64
		want  int64
	}{
		{"new counter", 3, 3},
		{"add one", 1, 4},
		{"negative", -10, -6},
		{"zero", 0, -6},
	}
	for _, st := range steps {
		got, err := s.Incr(ctx, "n", st.delta, time.Minute)
		if err != nil {
			t.Fatalf("%s: Incr: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: Incr(%d) = %d, want %d", st.name, st.delta, got, st.want)
		}
	}
	mustGet(t, s, "n", []byte("-6"))

	// A new counter expires after its TTL.
	if _, err := s.Incr(ctx, "short", 1, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s, "short")
	got, err := s.Incr(ctx, "short", 1, time.Minute)
	if err != nil || got != 1 {
		t.Fatalf("Incr after expiry = %d, %v; want a fresh counter at 1", got, err)
	}

	// Incr continues a counter stored with Set.
	if err := s.Set(ctx, "fromset", []byte("41"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Incr(ctx, "fromset", 1, time.Minute); err != nil || got != 42 {
		t.Fatalf("Incr on a Set counter = %d, %v; want 42", got, err)
	}
}

func testIncrKeepsExpiry(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if _, err := s.Incr(ctx, "n", 1, 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A later Incr with a long TTL must not extend the existing expiry.
	if got, err := s.Incr(ctx, "n", 1, time.Hour); err != nil || got != 2 {
		t.Fatalf("Incr = %d, %v; want 2", got, err)
	}
	waitGone(t, s, "n")
}

func testIncrConcurrent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	const workers, each = 50, 20
	var wg sync.WaitGroup
	seen := make([]atomic.Bool, workers*each+1)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, err := s.Incr(ctx, "n", 1, time.Minute)
				if err != nil {
					t.Errorf("Incr: %v", err)
					return
				}
				if n < 1 || n > workers*each {
					t.Errorf("Incr returned %d, out of range", n)
					return
				}
				if seen[n].Swap(true) {
					t.Errorf("Incr returned %d twice", n)
				}
			}
		}()
	}
	wg.Wait()
	mustGet(t, s, "n", fmt.Appendf(nil, "%d", workers*each))
}

func testIncrNotInteger(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("not a number"), time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := s.Incr(ctx, "k", 1, time.Minute)
	if err == nil || errors.Is(err, ephemeral.ErrNotFound) {
		t.Fatalf("Incr on a non-integer value: %v, want an error", err)
	}
	mustGet(t, s, "k", []byte("not a number"))
}

func testAllow(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	const limit = 3
	const window = 300 * time.Millisecond
	for i := range limit {
		ok, retry, err := s.Allow(ctx, "ip", limit, window)
		if err != nil || !ok || retry != 0 {
			t.Fatalf("event %d: Allow = %v, %v, %v; want allowed with no retry", i+1, ok, retry, err)
		}
	}
	lastAllowed := time.Now() // no later than the backend's time of the last event
	for i := range 3 {
		ok, retry, err := s.Allow(ctx, "ip", limit, window)
		if err != nil || ok {
			t.Fatalf("event %d over the limit: Allow = %v, %v; want refused", limit+i+1, ok, err)
		}
		if retry <= 0 || retry > window {
			t.Fatalf("retryAfter = %v, want in (0, %v]", retry, window)
		}
	}
	// Refused events are not counted: once the window has passed since the
	// last allowed event, a full limit is available again.
	time.Sleep(time.Until(lastAllowed.Add(window)))
	deadline := time.Now().Add(pollDeadline)
	for {
		ok, retry, err := s.Allow(ctx, "ip", limit, window)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused %v after the window", pollDeadline)
		}
		time.Sleep(retry)
	}
	for i := 1; i < limit; i++ {
		if ok, _, err := s.Allow(ctx, "ip", limit, window); err != nil || !ok {
			t.Fatalf("event %d of a fresh window refused: %v", i+1, err)
		}
	}
}

// testAllowWindowSlides checks that the window slides: events leave it one
// by one, not all at once at a fixed boundary.
func testAllowWindowSlides(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	// Long enough that a loaded machine oversleeping by a few hundred
	// milliseconds does not push the second event out of the window too.
	const window = time.Second
	if ok, _, err := s.Allow(ctx, "k", 2, window); err != nil || !ok {
		t.Fatalf("first event: %v, %v", ok, err)
	}
	time.Sleep(window / 2)
	if ok, _, err := s.Allow(ctx, "k", 2, window); err != nil || !ok {
		t.Fatalf("second event: %v, %v", ok, err)
	}
	ok, retry, err := s.Allow(ctx, "k", 2, window)
	if err != nil || ok {
		t.Fatalf("third event: %v, %v; want refused", ok, err)
	}
	// The first event leaves the window before the second: retryAfter points
	// at the first one, so it is less than the time left for the second.
	if retry <= 0 || retry > window/2+window/4 {
		t.Fatalf("retryAfter = %v, want about %v (when the first event leaves)", retry, window/2)
	}
	time.Sleep(retry)
	ok, retry2, err := s.Allow(ctx, "k", 2, window)
	for !ok && err == nil && retry2 < window/8 {
		// The server's clock may lag ours by a little; allow a short retry.
		time.Sleep(retry2 + time.Millisecond)
		ok, retry2, err = s.Allow(ctx, "k", 2, window)
	}
	if err != nil || !ok {
		t.Fatalf("after the first event left: Allow = %v, %v, %v; want allowed", ok, retry2, err)
	}
	// The second event is still in the window, so the next is refused.
	if ok, _, err := s.Allow(ctx, "k", 2, window); err != nil || ok {
		t.Fatalf("with two events in the window: Allow = %v, %v; want refused", ok, err)
	}
}

func testAllowKeysIndependent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	if ok, _, err := s.Allow(ctx, "a", 1, time.Minute); err != nil || !ok {
		t.Fatalf("a: %v, %v", ok, err)
	}
	if ok, _, err := s.Allow(ctx, "a", 1, time.Minute); err != nil || ok {
		t.Fatalf("a again: %v, %v; want refused", ok, err)
	}
	if ok, _, err := s.Allow(ctx, "b", 1, time.Minute); err != nil || !ok {
		t.Fatalf("b: %v, %v; want allowed", ok, err)
	}
	// Allow's namespace is separate from Set/Get's.
	if err := s.Set(ctx, "a", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set on a key also used by Allow: %v", err)
	}
	mustGet(t, s, "a", []byte("v"))
	if ok, _, err := s.Allow(ctx, "a", 1, time.Minute); err != nil || ok {
		t.Fatalf("a after Set: %v, %v; want still refused", ok, err)
	}
}

func testAllowConcurrent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	cases := []struct {
		name    string
		callers int
		limit   int
	}{
		{"limit 1", 50, 1},
		{"limit 10", 50, 10},
		{"limit above callers", 20, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "conc-" + c.name
			var allowed atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range c.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, retry, err := s.Allow(ctx, key, c.limit, time.Minute)
					if err != nil {
						t.Errorf("Allow: %v", err)
						return
					}
					if ok {
						allowed.Add(1)
					} else if retry <= 0 || retry > time.Minute {
						t.Errorf("refused with retryAfter %v", retry)
					}
				}()
			}
			close(start)
			wg.Wait()
			if got, want := int(allowed.Load()), min(c.callers, c.limit); got != want {
				t.Fatalf("%d concurrent Allow with limit %d: %d allowed, want %d", c.callers, c.limit, got, want)
			}
		})
	}
}

func testInvalid(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
	}{
		{"Set zero ttl", func() error { return s.Set(ctx, "k", []byte("v"), 0) }},
		{"Set negative ttl", func() error { return s.Set(ctx, "k", []byte("v"), -time.Second) }},
		{"Set negative nanosecond ttl", func() error { return s.Set(ctx, "k", []byte("v"), -time.Nanosecond) }},
		{"SetNX zero ttl", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"SetUnless guarded zero ttl", func() error {
			_, err := s.SetUnless(ctx, "{k}g", []ephemeral.Write{{Key: "k", Value: []byte("v")}}, ephemeral.Write{Key: "p", Value: []byte("v"), TTL: time.Minute})
			return err
		}},
		{"SetUnless plain negative ttl", func() error {
			_, err := s.SetUnless(ctx, "{p}g", []ephemeral.Write{{Key: "p", Value: []byte("v"), TTL: time.Minute}}, ephemeral.Write{Key: "k", Value: []byte("v"), TTL: -time.Second})
			return err
		}},
		{"SetUnless guarded key in another hash slot", func() error {
			_, err := s.SetUnless(ctx, "g:{a}", []ephemeral.Write{{Key: "k:{b}", Value: []byte("v"), TTL: time.Minute}})
			return err
		}},
		{"SetUnless guarded key without the guard's tag", func() error {
			_, err := s.SetUnless(ctx, "g:{a}", []ephemeral.Write{{Key: "k", Value: []byte("v"), TTL: time.Minute}})
			return err
		}},
		{"Incr zero ttl", func() error { _, err := s.Incr(ctx, "k", 1, 0); return err }},
		{"Incr negative ttl", func() error { _, err := s.Incr(ctx, "k", 1, -time.Minute); return err }},
		{"Allow zero window", func() error { _, _, err := s.Allow(ctx, "k", 1, 0); return err }},
		{"Allow zero limit", func() error { _, _, err := s.Allow(ctx, "k", 0, time.Second); return err }},
		{"Allow negative limit", func() error { _, _, err := s.Allow(ctx, "k", -1, time.Second); return err }},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, ephemeral.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
	// Nothing was stored by the refused calls.
	mustNotFound(t, s, "k")
	mustNotFound(t, s, "p")
}

func testPing(t *testing.T, s ephemeral.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCanceled(t *testing.T, s ephemeral.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		call func() error
	}{
		{"Set", func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) }},
		{"SetNX", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), time.Minute); return err }},
		{"SetUnless", func() error {
			_, err := s.SetUnless(ctx, "g:{t}", []ephemeral.Write{{Key: "k:{t}", Value: []byte("v"), TTL: time.Minute}}, ephemeral.Write{Key: "k", Value: []byte("v"), TTL: time.Minute})
			return err
		}},
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Take", func() error { _, err := s.Take(ctx, "k"); return err }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"Incr", func() error { _, err := s.Incr(ctx, "k", 1, time.Minute); return err }},
		{"Allow", func() error { _, _, err := s.Allow(ctx, "k", 1, time.Minute); return err }},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", c.name, err)
		}
	}
	mustNotFound(t, s, "k")
}

// testWritesConcurrent runs many Sets and SetUnless calls at once (a
// backend may send concurrent writes together): each gets its own
// outcome, and every value stored is its own.
func testWritesConcurrent(t *testing.T, s ephemeral.Store) {
	ctx := context.Background()
	const n = 64
	for i := range n {
		if i%3 == 0 {
			if err := s.Set(ctx, fmt.Sprintf("wc:guard{%d}", i), []byte("g"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.Set(ctx, fmt.Sprintf("wc:set%d", i), []byte(fmt.Sprint(i)), time.Minute); err != nil {
				t.Errorf("set %d: %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			stored, err := s.SetUnless(ctx, fmt.Sprintf("wc:guard{%d}", i),
				[]ephemeral.Write{{Key: fmt.Sprintf("wc:guarded{%d}", i), Value: []byte(fmt.Sprint(i)), TTL: time.Minute}},
				ephemeral.Write{Key: fmt.Sprintf("wc:plain%d", i), Value: []byte(fmt.Sprint(i)), TTL: time.Minute})
			if err != nil || stored != (i%3 != 0) {
				t.Errorf("setunless %d: stored %v, %v", i, stored, err)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		v := []byte(fmt.Sprint(i))
		mustGet(t, s, fmt.Sprintf("wc:set%d", i), v)
		mustGet(t, s, fmt.Sprintf("wc:plain%d", i), v)
		if i%3 == 0 {
			mustNotFound(t, s, fmt.Sprintf("wc:guarded{%d}", i))
		} else {
			mustGet(t, s, fmt.Sprintf("wc:guarded{%d}", i), v)
		}
	}
}
