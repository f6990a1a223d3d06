package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite"
)

// newRing returns a sealing key ring with fixed test keys.
func newRing() (*seal.Ring, error) {
	k := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	return seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
}

func testRing(t testing.TB) *seal.Ring {
	t.Helper()
	r, err := newRing()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recordConcurrently records workers*each events from concurrent goroutines
// (times with nanoseconds, to check the hash survives the store's
// microsecond precision) and returns the recorder.
func recordConcurrently(t *testing.T, s store.AuditStore, workers, each int) {
	t.Helper()
	var mu sync.Mutex
	clk := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.FixedZone("X", 3600))
	rec, err := audit.New(audit.Config{Store: s, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clk = clk.Add(1001 * time.Nanosecond)
		return clk
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var detail map[string]string
				switch i % 3 {
				case 1:
					detail = map[string]string{}
				case 2:
					detail = map[string]string{"purpose": "hotel", "ключ": "значение", "": "empty key"}
				}
				e := &store.AuditEvent{Actor: fmt.Sprintf("client:%d", w), Action: "cert.verify",
					Subject: "c1", Object: fmt.Sprint(i), Outcome: "ok", Detail: detail}
				if err := rec.Record(context.Background(), e); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSQLiteChain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trustid.db")
	db, err := sqlite.Open(ctx, path, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recordConcurrently(t, db.Audit(), 8, 10)
	if n, err := audit.Verify(ctx, db.Audit()); err != nil || n != 80 {
		t.Fatalf("Verify = %d, %v; want 80 intact events", n, err)
	}

	// Tamper with the file directly, as an attacker with disk access would.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `UPDATE audit_events SET outcome = 'fail' WHERE seq = 42`); err != nil {
		t.Fatal(err)
	}
	n, err := audit.Verify(ctx, db.Audit())
	var be *audit.BrokenError
	if !errors.As(err, &be) || be.Seq != 42 || n != 41 {
		t.Fatalf("Verify after tampering = %d, %v; want broken at seq 42 after 41", n, err)
	}
}

func TestPostgresChain(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.DSN(t), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recordConcurrently(t, db.Audit(), 8, 10)
	if n, err := audit.Verify(ctx, db.Audit()); err != nil || n != 80 {
		t.Fatalf("Verify = %d, %v; want 80 intact events", n, err)
	}
}
