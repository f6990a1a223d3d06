package clientauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

type clientMap map[string]*store.Client

func (m clientMap) Get(_ context.Context, id string) (*store.Client, error) {
	if id == "down" {
		return nil, errors.New("store unavailable")
	}
	c, ok := m[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return c, nil
}

// TestHashFormat pins the stored form: HMAC-SHA256 under the key, the
// format oidc.SecretHasher wrote before this package existed, so existing
// databases still verify.
func TestHashFormat(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := New(Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("s3cret"))
	if got, want := hex.EncodeToString(a.Hash([]byte("s3cret"))), hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if _, err := New(Config{Key: key[:31]}); err == nil {
		t.Fatal("short key accepted")
	}
}

// TestHashReused: Hash reuses its HMACs; a reused one (after secrets of
// other lengths, and from concurrent callers) still gives each secret's
// own HMAC, and a returned hash is not overwritten by a later call.
func TestHashReused(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	a, err := New(Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	want := func(s string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	secrets := []string{"", "a", "s3cret", strings.Repeat("x", 200), "s3cret"}
	first := a.Hash([]byte(secrets[0]))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for _, s := range secrets {
					if got := hex.EncodeToString(a.Hash([]byte(s))); got != want(s) {
						t.Errorf("Hash(%q) = %s, want %s", s, got, want(s))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := hex.EncodeToString(first); got != want(secrets[0]) {
		t.Errorf("first hash changed to %s by later calls", got)
	}
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	a, err := New(Config{Key: bytes.Repeat([]byte{7}, 32), Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte { return a.Hash([]byte(s)) }
	clients := clientMap{
		"app":     {ID: "app", SecretHash: h("new"), SecretHashOld: h("old"), SecretOldExpiresAt: now.Add(time.Hour)},
		"rotated": {ID: "rotated", SecretHash: h("new"), SecretHashOld: h("old"), SecretOldExpiresAt: now},
		"spa":     {ID: "spa", Public: true},
		"short":   {ID: "short", SecretHash: h("new")[:31]},
	}
	tests := []struct {
		name, id, secret string
		want             error // nil: authenticated
		fault            bool  // a store error, not a refusal
	}{
		{name: "current secret", id: "app", secret: "new"},
		{name: "previous secret within grace", id: "app", secret: "old"},
		{name: "previous secret when grace ends", id: "rotated", secret: "old", want: ErrInvalidCredentials},
		{name: "wrong secret", id: "app", secret: "guess", want: ErrInvalidCredentials},
		{name: "empty secret", id: "app", secret: "", want: ErrInvalidCredentials},
		{name: "public client", id: "spa", secret: "x", want: ErrInvalidCredentials},
		{name: "truncated stored hash", id: "short", secret: "new", want: ErrInvalidCredentials},
		{name: "unknown client", id: "ghost", secret: "x", want: ErrInvalidCredentials},
		{name: "store fault", id: "down", secret: "x", fault: true},
		{name: "secret not UTF-8", id: "app", secret: "new\xff", want: ErrMalformed},
		{name: "client id not UTF-8", id: "down\xff", secret: "x", want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			c, err := a.Authenticate(t.Context(), clients, tc.id, tc.secret, "192.0.2.1")
			switch {
			case tc.fault:
				if err == nil || errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("err = %v, want a fault", err)
				}
			case tc.want == nil:
				if err != nil || c.ID != tc.id {
					t.Fatalf("got %v, %v", c, err)
				}
			default:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.want == ErrInvalidCredentials && !strings.Contains(logs.String(), "client_id="+tc.id) {
					t.Errorf("failure not logged with the client id: %q", logs.String())
				}
				if tc.secret != "" && strings.Contains(logs.String(), tc.secret) {
					t.Errorf("secret logged: %q", logs.String())
				}
			}
		})
	}
}

func TestRotatedHashes(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	c := &store.Client{SecretHashOld: []byte("old"), SecretOldExpiresAt: now.Add(time.Second)}
	if got := RotatedHashes(c, now); len(got) != 1 {
		t.Fatalf("within grace: %q", got)
	}
	if got := RotatedHashes(c, now.Add(time.Second)); got != nil {
		t.Fatalf("after grace: %q", got)
	}
	if got := RotatedHashes(&store.Client{}, now); got != nil {
		t.Fatalf("never rotated: %q", got)
	}
}

// TestLimits: failed authentications are limited per address and per
// client (issue 16 point 6). A limited address is refused even with the
// right secret, without the store being read; a limited client is refused
// only from addresses it has not authenticated from, so a stranger who
// knows its id cannot lock it out; the limit lifts when the window has room.
func TestLimits(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var logs bytes.Buffer
	eph := memory.New(memory.Options{Now: clock})
	t.Cleanup(func() { eph.Close() })
	a, err := New(Config{Key: bytes.Repeat([]byte{7}, 32), Now: clock, Ephemeral: eph,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Limits: Limits{PerAddress: 3, PerClient: 5, Window: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	clients := countingGetter{clientMap{"app": {ID: "app", SecretHash: a.Hash([]byte("right"))},
		"other": {ID: "other", SecretHash: a.Hash([]byte("right"))}}, &reads}
	auth := func(id, secret, addr string) error {
		_, err := a.Authenticate(t.Context(), clients, id, secret, addr)
		return err
	}
	limited := func(t *testing.T, err error, scope string) {
		t.Helper()
		var le *LimitedError
		if !errors.As(err, &le) || !errors.Is(err, ErrLimited) || le.Scope != scope || le.RetryAfter < time.Second {
			t.Fatalf("err = %v, want a %s limit", err, scope)
		}
		if he := httperr.From(err); he.Status != 429 || he.Code != httperr.CodeRateLimited || he.RetryAfter <= 0 {
			t.Fatalf("answer %+v, want 429 rate_limited with Retry-After", he)
		}
	}

	// The client authenticates from its office: the address becomes known.
	if err := auth("app", "right", "198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	t.Run("address", func(t *testing.T) {
		for i := range 3 {
			if err := auth("app", fmt.Sprint("guess", i), "203.0.113.9"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		// The fourth failure trips the limit.
		if err := auth("other", "guess", "203.0.113.9"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("4th guess: %v", err)
		}
		if !strings.Contains(logs.String(), "client authentication limited") {
			t.Errorf("limit not logged: %s", logs.String())
		}
		before := reads
		limited(t, auth("app", "right", "203.0.113.9"), "address")
		limited(t, auth("other", "guess", "203.0.113.9"), "address")
		if reads != before {
			t.Errorf("a limited address read the store %d times", reads-before)
		}
		// Other addresses are not affected.
		if err := auth("app", "right", "198.51.100.8"); err != nil {
			t.Fatalf("other address: %v", err)
		}
		now = now.Add(time.Minute + time.Second)
		if err := auth("app", "right", "203.0.113.9"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		// Guesses spread over many addresses, each under its own limit.
		for i := range 6 {
			_ = auth("app", "guess", fmt.Sprintf("203.0.113.%d", 100+i))
		}
		limited(t, auth("app", "right", "203.0.113.200"), "client")
		// The client's known address keeps working: no lockout by a stranger.
		if err := auth("app", "right", "198.51.100.7"); err != nil {
			t.Fatalf("known address refused: %v", err)
		}
		// Another client is not affected.
		if err := auth("other", "right", "203.0.113.200"); err != nil {
			t.Fatalf("other client: %v", err)
		}
	})
	t.Run("credentials that are not UTF-8 never reach the store", func(t *testing.T) {
		before := reads
		for _, c := range [][2]string{{"app\xff", "right"}, {"app", "right\xc3\x28"}} {
			if err := auth(c[0], c[1], "198.51.100.9"); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: %v", c, err)
			}
		}
		if reads != before {
			t.Errorf("the store was read %d times", reads-before)
		}
	})
	t.Run("store fault lets the exact check through", func(t *testing.T) {
		b, err := New(Config{Key: bytes.Repeat([]byte{7}, 32), Now: clock, Ephemeral: brokenEph{eph}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authenticate(t.Context(), clients, "app", "right", "203.0.113.250"); err != nil {
			t.Fatalf("right secret: %v", err)
		}
		if _, err := b.Authenticate(t.Context(), clients, "app", "wrong", "203.0.113.250"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong secret: %v", err)
		}
	})
}

type countingGetter struct {
	clientMap
	n *int
}

func (c countingGetter) Get(ctx context.Context, id string) (*store.Client, error) {
	*c.n++
	return c.clientMap.Get(ctx, id)
}

// brokenEph fails every call, as an unreachable Redis does.
type brokenEph struct{ *memory.Store }

var errDown = errors.New("redis down")

func (brokenEph) Get(context.Context, string) ([]byte, error) { return nil, errDown }
func (brokenEph) Set(context.Context, string, []byte, time.Duration) error {
	return errDown
}
func (brokenEph) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return false, 0, errDown
}

// TestAddressLimitAcrossNodes: two nodes share the ephemeral store. A node
// trusts a clear read of an address's limit for addrRecheck only while it
// has seen no failure from it, so a limit tripped on another node holds
// here within addrRecheck, and a node that sees failures reads every time.
func TestAddressLimitAcrossNodes(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eph := memory.New(memory.Options{Now: clock})
	t.Cleanup(func() { eph.Close() })
	node := func() *Authenticator {
		a, err := New(Config{Key: bytes.Repeat([]byte{7}, 32), Now: clock, Ephemeral: eph,
			Limits: Limits{PerAddress: 3, PerClient: 100, Window: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := node(), node()
	reads := 0
	clients := countingGetter{clientMap{"app": {ID: "app", SecretHash: a.Hash([]byte("right"))}}, &reads}
	const addr = "203.0.113.9"
	if _, err := b.Authenticate(t.Context(), clients, "app", "right", addr); err != nil {
		t.Fatal(err)
	}
	for i := range 4 { // trips the address limit, on node a
		if _, err := a.Authenticate(t.Context(), clients, "app", fmt.Sprint("guess", i), addr); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("guess %d on a: %v", i, err)
		}
	}
	if _, err := a.Authenticate(t.Context(), clients, "app", "right", addr); !errors.Is(err, ErrLimited) {
		t.Fatalf("node a after the guesses: %v, want limited", err)
	}
	now = now.Add(addrRecheck)
	if _, err := b.Authenticate(t.Context(), clients, "app", "right", addr); !errors.Is(err, ErrLimited) {
		t.Fatalf("node b %v later: %v, want limited", addrRecheck, err)
	}
	// A wrong guess on b marks the address there: b reads the limit from
	// then on, even right after a clear read.
	now = now.Add(time.Minute + time.Second)
	if _, err := b.Authenticate(t.Context(), clients, "app", "right", addr); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if _, err := b.Authenticate(t.Context(), clients, "app", "wrong", addr); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if b.clearHere(addr) {
		t.Fatal("node b trusts a clear read of an address it saw fail")
	}
}
