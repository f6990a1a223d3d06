package node

import (
	"bytes"
	"context"
	"testing"
)

// TestOpenDerivesTheSameKeys: two opens of the same development data
// directory (as `trustid serve` and `trustid-lab bench-tokens` do) agree on
// the derived keys and reach the same store; a different purpose gives a
// different key.
func TestOpenDerivesTheSameKeys(t *testing.T) {
	t.Setenv("TRUSTID_CONFIG", "")
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	ctx := context.Background()
	a, err := Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !bytes.Equal(a.OIDCMasterSecret(), b.OIDCMasterSecret()) || len(a.OIDCMasterSecret()) != 32 {
		t.Fatal("two opens of one data directory derive different master secrets")
	}
	if bytes.Equal(a.DerivedKey("x"), a.DerivedKey("y")) {
		t.Fatal("purposes share a key")
	}
	if err := a.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	closed := false
	a.OnClose(func() error { closed = true; return nil })
	if err := a.Close(); err != nil || !closed {
		t.Fatalf("Close: %v, ran OnClose: %v", err, closed)
	}
}
