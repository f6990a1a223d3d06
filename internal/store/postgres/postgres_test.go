package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
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

func openTemp(t testing.TB) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			db, err := postgres.Open(t.Context(), dsn, testRing(t))
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSharedSchema(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := pgtest.DSN(t)
		a, err := postgres.Open(t.Context(), dsn, testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		b, err := postgres.Open(t.Context(), dsn, testRing(t))
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
	dsn := pgtest.DSN(t)
	storetest.RunReseal(t, func(t *testing.T, ring *seal.Ring) store.Store {
		db, err := postgres.Open(t.Context(), dsn, ring)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
