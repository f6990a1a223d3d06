// Package redistest gives tests a Redis ephemeral store on the server named
// by TRUSTID_TEST_REDIS, under a key prefix of its own whose keys are
// deleted when the test ends. Without the variable the test is skipped, or
// fails when CI=true.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/trustid/trustid/internal/ephemeral/redis"
)

// EnvVar names the server used by tests.
const EnvVar = "TRUSTID_TEST_REDIS"

// URL returns the test server's URL.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (required when CI=true)", EnvVar)
		}
		t.Skipf("%s not set", EnvVar)
	}
	return u
}

// Open returns a store under a fresh prefix (name says which tests own
// it) and removes the prefix's keys and closes the store when t ends.
func Open(t testing.TB, name string) *redis.Store {
	t.Helper()
	u := URL(t)
	prefix := "trustidtest:" + name + ":" + strings.ToLower(rand.Text()) + ":"
	ctx := context.Background()
	s, err := redis.New(ctx, u, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Clear(ctx); err != nil {
			t.Errorf("redistest: clear %s: %v", prefix, err)
		}
		_ = s.Close()
	})
	return s
}
