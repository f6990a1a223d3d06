// Package pgtest gives tests an isolated PostgreSQL schema on the server
// named by TRUSTID_TEST_POSTGRES: each call creates a fresh schema, returns a
// DSN whose search_path points at it, and drops it when the test ends.
// Without the variable the test is skipped, or fails when CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store/postgres"
)

// EnvVar names the server used by tests.
const EnvVar = "TRUSTID_TEST_POSTGRES"

// DSN returns a DSN for a fresh schema on the test server.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (required when CI=true)", EnvVar)
		}
		t.Skipf("%s not set", EnvVar)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL: %v", EnvVar, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "trustid_test_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.ExecAdmin(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema (%s): %v", EnvVar, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.ExecAdmin(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Schema returns the schema named in a DSN made by DSN.
func Schema(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(u.Query().Get("search_path"))
}
