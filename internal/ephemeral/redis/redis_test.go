package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/ephemeraltest"
)

// redisURL returns TRUSTID_TEST_REDIS, skipping the test when it is unset
// (failing instead when CI=true).
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TRUSTID_TEST_REDIS")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TRUSTID_TEST_REDIS is not set (required in CI)")
		}
		t.Skip("TRUSTID_TEST_REDIS not set")
	}
	return u
}

// newTestStore returns a Store with a random key prefix and deletes every
// key under that prefix when the test ends.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	ctx := context.Background()
	prefix := "trustidtest:" + strings.ToLower(rand.Text()) + ":"
	s, err := New(ctx, redisURL(t), prefix)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Clear(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	ephemeraltest.Run(t, func(t *testing.T) ephemeral.Store { return newTestStore(t) })
}

func TestKeyLayout(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Allow(ctx, "k", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		key     string
		typ     string
		wantTTL bool
	}{
		{"value", s.prefix + "kv:k", "string", true},
		{"window", s.prefix + "rl:k", "zset", true},
	}
	for _, c := range cases {
		typ, err := s.c.Type(ctx, c.key).Result()
		if err != nil || typ != c.typ {
			t.Errorf("%s: TYPE %s = %q, %v; want %q", c.name, c.key, typ, err, c.typ)
		}
		ttl, err := s.c.PTTL(ctx, c.key).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("%s: PTTL = %v, %v; want in (0, 1m]", c.name, ttl, err)
		}
	}
}

func TestSubMillisecondTTL(t *testing.T) {
	s := newTestStore(t)
	// A positive TTL below one millisecond rounds up instead of failing.
	if err := s.Set(context.Background(), "k", []byte("v"), time.Microsecond); err != nil {
		t.Fatalf("Set with a 1µs TTL: %v", err)
	}
}

func TestNewBadURL(t *testing.T) {
	_, err := New(context.Background(), "redis://user:hunter2@%zz", "p:")
	if err == nil {
		t.Fatal("New accepted a malformed URL")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	if _, err := New(ctx, "redis://127.0.0.1:1/0", "p:"); err == nil {
		t.Fatal("New succeeded against a closed port")
	}
}

func TestNewFromClientDoesNotClose(t *testing.T) {
	opts, err := goredis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	s := NewFromClient(c, "trustidtest:"+rand.Text()+":")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("client closed by Store.Close: %v", err)
	}
	if err := s.Ping(context.Background()); errors.Is(err, goredis.ErrClosed) {
		t.Fatal("store unusable after Close of a borrowed client")
	}
}

func BenchmarkAllow(b *testing.B) {
	s := newTestStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Allow(ctx, "k", 1000, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetTake(b *testing.B) {
	s := newTestStore(b)
	ctx := context.Background()
	v := []byte("challenge")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Set(ctx, "k", v, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Take(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClear(t *testing.T) {
	ctx := context.Background()
	s, other := newTestStore(t), newTestStore(t)
	for _, st := range []*Store{s, other} {
		if err := st.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Allow(ctx, "r", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.c.Keys(ctx, s.prefix+"*").Result(); err != nil || len(n) != 0 {
		t.Errorf("after Clear: %v keys left (%v)", n, err)
	}
	if _, err := other.Get(ctx, "k"); err != nil {
		t.Errorf("another prefix's key: %v", err)
	}
}

// pipelines counts the pipelines with SETs a client sends (each one round
// trip) and the SETs in them.
type pipelines struct{ n, cmds atomic.Int64 }

func (p *pipelines) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (p *pipelines) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return next
}
func (p *pipelines) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		sets := 0
		for _, c := range cmds {
			if strings.EqualFold(c.Name(), "set") {
				sets++
			}
		}
		if sets > 0 {
			p.n.Add(1)
			p.cmds.Add(int64(sets))
		}
		return next(ctx, cmds)
	}
}

// TestConcurrentWritesShareRoundTrips: the Sets of concurrent callers go
// out together, in fewer pipelines than writes.
func TestConcurrentWritesShareRoundTrips(t *testing.T) {
	opts, err := goredis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	var p pipelines
	c.AddHook(&p)
	s := NewFromClient(c, "trustidtest:"+strings.ToLower(rand.Text())+":")
	defer s.Clear(context.Background())
	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := s.Set(context.Background(), fmt.Sprint(i), []byte("v"), time.Minute); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d writes in %d pipelines", p.cmds.Load(), p.n.Load())
	if p.cmds.Load() != n || p.n.Load() > n/2 {
		t.Errorf("%d writes in %d pipelines, want %d in at most %d", p.cmds.Load(), p.n.Load(), n, n/2)
	}
}
