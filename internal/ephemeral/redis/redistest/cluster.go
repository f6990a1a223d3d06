package redistest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral/redis"
)

// Cluster is a Redis Cluster of a test's own: n masters without replicas
// (redis-server --cluster-enabled yes on free loopback ports, joined by
// redis-cli --cluster create), removed when the test ends.
type Cluster struct {
	// Addrs are the masters' host:port addresses (any of them is a seed).
	Addrs []string
	cli   string
}

// StartCluster starts a cluster of n >= 3 masters (the least redis-cli
// accepts) and waits until every node reports cluster_state:ok. Without
// redis-server and redis-cli the test is skipped, or fails when CI=true.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	cli, cerr := exec.LookPath("redis-cli")
	if err != nil || cerr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server/redis-cli not found (required when CI=true): %v %v", err, cerr)
		}
		t.Skipf("redis-server/redis-cli not found: %v %v", err, cerr)
	}
	dir := t.TempDir()
	c := &Cluster{cli: cli}
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The cluster bus listens on port+10000: pick again if it is taken.
		if bl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000)); err != nil {
			continue
		} else {
			bl.Close()
		}
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--cluster-node-timeout", "2000", "--dir", dir, "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		c.Addrs = append(c.Addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	if len(c.Addrs) < 3 {
		t.Fatalf("redistest: only %d cluster nodes started", len(c.Addrs))
	}
	for _, a := range c.Addrs {
		c.waitFor(t, a, "PING", "PONG")
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range c.Addrs {
		c.waitFor(t, a, "CLUSTER INFO", "cluster_state:ok")
	}
	return c
}

// waitFor runs a command on addr until its output contains want.
func (c *Cluster) waitFor(t testing.TB, addr, command, want string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command(c.cli, append([]string{"-h", host, "-p", port}, strings.Fields(command)...)...).CombinedOutput()
		if strings.Contains(string(out), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s on %s: no %q in %s", command, addr, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Open returns a store on the cluster under a fresh prefix, closed when t
// ends (the cluster's data goes with it).
func (c *Cluster) Open(t testing.TB) *redis.Store {
	t.Helper()
	st, err := redis.NewCluster(context.Background(), c.Addrs, "", "trustidtest:"+strings.ToLower(rand.Text())+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Keys is the number of keys on every master together (DBSIZE), to check
// that something used the cluster.
func (c *Cluster) Keys(t testing.TB) int {
	t.Helper()
	n := 0
	for _, a := range c.Addrs {
		host, port, _ := net.SplitHostPort(a)
		out, err := exec.Command(c.cli, "-h", host, "-p", port, "DBSIZE").Output()
		if err != nil {
			t.Fatalf("redistest: DBSIZE on %s: %v", a, err)
		}
		k, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("redistest: DBSIZE on %s: %q", a, out)
		}
		n += k
	}
	return n
}
