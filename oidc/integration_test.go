package oidc_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite"
)

func testRing(t testing.TB) *seal.Ring {
	t.Helper()
	k := func(b byte) string { return strings.Repeat(string(rune('A'+b)), 43) + "=" }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sqliteStore(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trustid.db"), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func postgresStore(t testing.TB) store.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t), testRing(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func redisStore(t testing.TB) ephemeral.Store {
	return redistest.Open(t, "oidc")
}

func memoryStore(t testing.TB) ephemeral.Store {
	m := memory.New(memory.Options{})
	t.Cleanup(func() { m.Close() })
	return m
}

// TestEndToEndSQLite runs the flows on the embedded default: SQLite and the in-process ephemeral store.
func TestEndToEndSQLite(t *testing.T) {
	e := newEnv(t, sqliteStore(t), memoryStore(t), nil)
	runEndToEnd(t, e)
	runNegative(t, e.with(t, true))
}

// TestEndToEndPostgresRedis runs the flows on PostgreSQL + Redis.
func TestEndToEndPostgresRedis(t *testing.T) {
	st := postgresStore(t)
	e := newEnv(t, st, redisStore(t), nil)
	runEndToEnd(t, e)
	runNegative(t, e.with(t, true))
}

// TestTwoNodesSQLite: every step of the flows alternates between two
// provider nodes sharing the stores (login state, sessions, keys, tokens).
func TestTwoNodesSQLite(t *testing.T) {
	e := newEnvN(t, sqliteStore(t), memoryStore(t), 2, nil)
	runEndToEnd(t, e)
}
