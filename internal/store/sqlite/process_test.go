package sqlite

import (
	"bytes"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

const childEnv = "TRUSTID_SQLITE_CHILD_DB"

// TestChildProcess is the body of the child processes started by
// TestCrossProcess; it does nothing in a normal run.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only runs as a child of TestCrossProcess")
	}
	n, _ := strconv.Atoi(os.Getenv(childEnv + "_N"))
	db, err := Open(t.Context(), path, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range n {
		if err := db.Audit().Append(t.Context(), &store.AuditEvent{Actor: fmt.Sprintf("pid%d", os.Getpid()), Action: fmt.Sprint("x", i), Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Passkeys().Update(t.Context(), []byte("cred"), func(p *store.Passkey) error { p.SignCount++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrossProcess runs writers in separate processes on one database file:
// BEGIN IMMEDIATE and busy_timeout must keep the audit chain linear and lose
// no update.
func TestCrossProcess(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child")
	}
	path := filepath.Join(t.TempDir(), "trustid.db")
	db := func() *DB {
		db, err := Open(t.Context(), path, testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}()
	defer db.Close()
	ctx := t.Context()
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003070001"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Passkeys().Create(ctx, &store.Passkey{CredentialID: []byte("cred"), CitizenID: "c1"}); err != nil {
		t.Fatal(err)
	}
	const procs, each = 3, 15
	var cmds []*osexec.Cmd
	var outs []*bytes.Buffer
	for range procs {
		cmd := osexec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path, childEnv+"_N="+strconv.Itoa(each))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	evs, err := db.Audit().List(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != procs*each {
		t.Fatalf("%d events, want %d", len(evs), procs*each)
	}
	var prev []byte
	actors := map[string]bool{}
	for i, e := range evs {
		if e.Seq != int64(i+1) || !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, audit.Chain(prev, e)) {
			t.Fatalf("chain broken at %d", i+1)
		}
		prev = e.Hash
		actors[e.Actor] = true
	}
	if len(actors) != procs {
		t.Fatalf("events from %d processes, want %d", len(actors), procs)
	}
	p, err := db.Passkeys().Get(ctx, []byte("cred"))
	if err != nil {
		t.Fatal(err)
	}
	if p.SignCount != procs*each {
		t.Fatalf("sign count %d, want %d (lost updates across processes)", p.SignCount, procs*each)
	}
}
