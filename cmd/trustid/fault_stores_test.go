package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The fault suite's stores are its own: a PostgreSQL cluster and a
// redis-server started here on free loopback ports, so that stopping them
// cannot disturb the other packages' tests, which `go test ./...` runs in
// parallel against the shared servers.

// needTool finds a prerequisite of the fault suite: the test fails in CI
// without it and is skipped elsewhere.
func needTool(t *testing.T, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if strings.ContainsRune(p, '/') {
			if _, err := os.Stat(p); err == nil {
				return p
			}
			continue
		}
		if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	skipOrFail(t, "%s not installed", paths[0])
	return ""
}

// privatePG is a PostgreSQL cluster of the test's own (initdb in a temp
// directory, fsync off), which the test may stop, start and restart.
type privatePG struct {
	t        *testing.T
	bin, dir string
	port     int
	DSN      string
	asUser   []string // runuser prefix when running as root (postgres refuses root)
}

// pgBinDir is where Debian keeps initdb, pg_ctl and postgres.
func pgBinDir() string {
	if d := os.Getenv("TRUSTID_PG_BIN"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return "/usr/lib/postgresql/15/bin"
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bin := pgBinDir()
	needTool(t, filepath.Join(bin, "initdb"))
	needTool(t, filepath.Join(bin, "pg_ctl"))
	dir, err := os.MkdirTemp("", "trustid-fault-pg")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePG{t: t, bin: bin, dir: dir}
	t.Cleanup(func() {
		_ = pg.ctl("stop", "-m", "immediate", "-w", "-t", "30")
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		runuser := needTool(t, "runuser")
		u, err := user.Lookup("postgres")
		if err != nil {
			skipOrFail(t, "running as root and no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.asUser = []string{runuser, "-u", "postgres", "--"}
	}
	if out, err := pg.run(filepath.Join(bin, "initdb"), "-D", pg.data(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	pg.port, _ = strconv.Atoi(port)
	pg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.Start()
	return pg
}

func (pg *privatePG) data() string { return filepath.Join(pg.dir, "data") }

func (pg *privatePG) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, pg.asUser...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = pg.dir
	return cmd.CombinedOutput()
}

func (pg *privatePG) ctl(args ...string) error {
	out, err := pg.run(filepath.Join(pg.bin, "pg_ctl"), append([]string{"-D", pg.data()}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

// Start starts the cluster and waits until it accepts connections.
func (pg *privatePG) Start() {
	pg.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		pg.port, pg.dir)
	if err := pg.ctl("start", "-w", "-t", "60", "-l", filepath.Join(pg.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "log"))
		pg.t.Fatalf("%v\n%s", err, log)
	}
}

// Stop stops the cluster (fast shutdown: sessions are disconnected).
func (pg *privatePG) Stop() {
	pg.t.Helper()
	if err := pg.ctl("stop", "-m", "fast", "-w", "-t", "60"); err != nil {
		pg.t.Fatal(err)
	}
}

// privateRedis is a redis-server of the test's own on a fixed port, which
// the test may stop and start again (empty: it runs without persistence).
type privateRedis struct {
	t        *testing.T
	bin, cli string
	port     int
	URL      string
	cmd      *exec.Cmd
	done     chan struct{}
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	r := &privateRedis{t: t, bin: needTool(t, "redis-server"), cli: needTool(t, "redis-cli")}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	r.port, _ = strconv.Atoi(port)
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Start runs redis-server and waits for PONG.
func (r *privateRedis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--maxmemory-policy", "noeviction")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	for range 200 {
		if out, err := r.Do("PING"); err == nil && strings.Contains(out, "PONG") {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on port %d did not start", r.port)
}

// Stop kills redis-server (its data is gone: no persistence).
func (r *privateRedis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// Do runs one redis-cli command.
func (r *privateRedis) Do(args ...string) (string, error) {
	out, err := exec.Command(r.cli, append([]string{"-p", strconv.Itoa(r.port)}, args...)...).CombinedOutput()
	if err == nil && strings.HasPrefix(string(out), "ERR") {
		err = fmt.Errorf("redis-cli %v: %s", args, out)
	}
	return string(out), err
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
