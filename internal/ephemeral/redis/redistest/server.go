package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral/redis"
)

// Server is a redis-server of a test's own, for faults that must not touch
// the shared server (CONFIG SET maxmemory, FLUSHDB).
type Server struct {
	URL  string
	port int
	cli  string // redis-cli, for admin commands (go-redis stays in package redis)
}

// Start runs redis-server without persistence on a free loopback port
// until t ends. Without the binaries (redis-server, redis-cli) the test is
// skipped, or fails when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	cli, cerr := exec.LookPath("redis-cli")
	if err = errors.Join(err, cerr); err != nil {
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
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, cli: cli}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := redis.New(context.Background(), s.URL, "trustidtest:")
		if err == nil {
			err = st.Ping(context.Background())
			_ = st.Close()
		}
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do runs one command on the server (e.g. "CONFIG", "SET", "maxmemory", "1").
func (s *Server) Do(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(s.cli, append([]string{"-p", fmt.Sprint(s.port)}, args...)...).CombinedOutput()
	if err != nil || strings.HasPrefix(string(out), "ERR") {
		t.Fatalf("redistest: %v: %v %s", args, err, out)
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
