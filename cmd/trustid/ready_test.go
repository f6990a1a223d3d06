package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startRedis runs a private redis-server on a free loopback port, so a test
// can break it (refuse writes, stop it) without touching the shared one.
func startRedis(t *testing.T) (addr string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is required in CI")
		}
		t.Skip("redis-server not installed")
	}
	addr = freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}

func redisCLI(t *testing.T, addr string, args ...string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "ERR") {
		t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
}

// TestReadinessWriteProbe: /readyz answers 503 with Retry-After while Redis
// refuses writes (a ping alone said "ready"), and 200 again afterwards.
func TestReadinessWriteProbe(t *testing.T) {
	raddr := startRedis(t)
	s := startServer(t, "TRUSTID_REDIS_URL=redis://"+raddr+"/0")
	ready := func() *http.Response {
		t.Helper()
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := ready(); r.StatusCode != 200 {
		t.Fatalf("readyz %d before the fault", r.StatusCode)
	}
	redisCLI(t, raddr, "config", "set", "maxmemory-policy", "noeviction")
	redisCLI(t, raddr, "config", "set", "maxmemory", "1")
	if r := ready(); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz %d Retry-After %q while Redis refuses writes", r.StatusCode, r.Header.Get("Retry-After"))
	}
	redisCLI(t, raddr, "config", "set", "maxmemory", "0")
	if r := ready(); r.StatusCode != 200 {
		t.Fatalf("readyz %d after the fault", r.StatusCode)
	}
}
