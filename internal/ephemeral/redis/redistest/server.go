package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trustid/trustid/internal/ephemeral/redis"
)

// Server is a redis-server of a test's own, for faults that must not touch
// the shared server (CONFIG SET maxmemory, FLUSHDB).
type Server struct {
	URL string
	c   *goredis.Client
}

// Start runs redis-server without persistence on a free loopback port
// until t ends. Without the binary the test is skipped, or fails when
// CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found (required when CI=true): %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.c = goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { _ = s.c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for s.c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redistest: redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Do runs one command on the server (e.g. "CONFIG", "SET", "maxmemory", "1").
func (s *Server) Do(t testing.TB, args ...any) {
	t.Helper()
	if err := s.c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("redistest: %v: %v", args, err)
	}
}

// Open returns a store on this server (prefix "trustidtest:"), closed when t ends.
func (s *Server) Open(t testing.TB) *redis.Store {
	t.Helper()
	st, err := redis.New(context.Background(), s.URL, "trustidtest:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
