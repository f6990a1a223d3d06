package sqlite

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/storetest"
)

func testRing(t testing.TB) *seal.Ring {
	t.Helper()
	k := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "trustid.db"), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "trustid.db")
	db, err := Open(ctx, path, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003070001"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}()
	if c, err := db.Citizens().GetByIDNumber(ctx, "110101199003070001"); err != nil || c.ID != "c1" {
		t.Fatalf("after reopen: %v %v", c, err)
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a?b"} {
		if _, err := Open(t.Context(), p, testRing(t)); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestSharedFile(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "trustid.db")
		a, err := Open(t.Context(), path, testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		b, err := Open(t.Context(), path, testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openTemp(b) })
}

func TestReseal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trustid.db")
	storetest.RunReseal(t, func(t *testing.T, ring *seal.Ring) store.Store {
		db, err := Open(t.Context(), path, ring)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestBackup(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003070001"}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", st, err)
	}
	if err := db.Backup(ctx, dst); err == nil {
		t.Fatal("backup over an existing file succeeded")
	}
	cp, err := Open(ctx, dst, testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if c, err := cp.Citizens().GetByIDNumber(ctx, "110101199003070001"); err != nil || c.ID != "c1" {
		t.Fatalf("backup content: %v %v", c, err)
	}
}
