package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
)

// Record two events on the embedded store and verify the chain.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	ring, err := newRing()
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "trustid.db"), ring)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	clock := func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }
	rec, _ := audit.New(audit.Config{Store: db.Audit(), Now: clock})
	for _, outcome := range []string{"fail", "ok"} {
		e := &store.AuditEvent{Actor: "citizen:c1", Action: "login.face", Subject: "c1", Outcome: outcome}
		if err := rec.Record(ctx, e); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("seq %d linked to previous: %t\n", e.Seq, e.PrevHash != nil)
	}
	n, err := audit.Verify(ctx, db.Audit())
	fmt.Println("verified", n, "events, err:", err)
	// Output:
	// seq 1 linked to previous: false
	// seq 2 linked to previous: true
	// verified 2 events, err: <nil>
}
