// Package sqlitetest gives tests the embedded SQLite store (package sqlite)
// in a file of the test's temporary directory, sealed with a fixed test key
// ring and closed when the test ends. Tests use it where they would
// otherwise write a fake store: it is a real backend, which passes the
// storetest conformance suite, and opening one takes milliseconds.
package sqlitetest

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store/sqlite"
)

// Ring returns a fixed key ring for tests (not a secret: it is public).
func Ring(t testing.TB) *seal.Ring {
	t.Helper()
	k := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Open returns a fresh, migrated store in t's temporary directory, closed
// when t ends.
func Open(t testing.TB, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "trustid.db"), Ring(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
