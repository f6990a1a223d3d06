package netnumber_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

func TestNew(t *testing.T) {
	st := sqlitetest.Open(t)
	key := bytes.Repeat([]byte{1}, 32)
	for _, tc := range []struct {
		name string
		cfg  netnumber.Config
		ok   bool
	}{
		{"ok", netnumber.Config{Citizens: st.Citizens(), KeyID: "1", Key: key}, true},
		{"four chars", netnumber.Config{Citizens: st.Citizens(), KeyID: "K2A9", Key: key}, true},
		{"no store", netnumber.Config{KeyID: "1", Key: key}, false},
		{"lower-case id", netnumber.Config{Citizens: st.Citizens(), KeyID: "a", Key: key}, false},
		{"long id", netnumber.Config{Citizens: st.Citizens(), KeyID: "12345", Key: key}, false},
		{"empty id", netnumber.Config{Citizens: st.Citizens(), Key: key}, false},
		{"short key", netnumber.Config{Citizens: st.Citizens(), KeyID: "1", Key: key[:31]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := netnumber.New(tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestEnsureStableAcrossRotation(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	for _, id := range []string{"cit-a", "cit-b"} {
		if err := st.Citizens().Create(ctx, &store.Citizen{ID: id, IDNumber: "11010119900307" + map[string]string{"cit-a": "1234", "cit-b": "5678"}[id], Name: "Li Si"}); err != nil {
			t.Fatal(err)
		}
	}
	old, err := netnumber.New(netnumber.Config{Citizens: st.Citizens(), KeyID: "1", Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent first sign-ins agree on one number.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := old.Ensure(ctx, "cit-a")
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		}()
	}
	wg.Wait()
	a := got[0]
	for _, n := range got {
		if n != a {
			t.Fatalf("concurrent Ensure gave %q and %q", a, n)
		}
	}
	if !netnumber.Valid(a) || !strings.HasPrefix(a, "1") || len(a) != 21 {
		t.Fatalf("number %q: want key id 1 and 20 base32 characters", a)
	}
	for _, leak := range []string{"110101", "19900307", "1234", "Li", "cit-a"} {
		if strings.Contains(a, leak) {
			t.Errorf("number %q contains %q", a, leak)
		}
	}
	// Rotation: a new key id and key; issued numbers stay, new ones use the new key.
	rotated, err := netnumber.New(netnumber.Config{Citizens: st.Citizens(), KeyID: "2", Key: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rotated.Ensure(ctx, "cit-a"); err != nil || n != a {
		t.Fatalf("after rotation Ensure(cit-a) = %q, %v; want the issued %q", n, err, a)
	}
	b, err := rotated.Ensure(ctx, "cit-b")
	if err != nil || !strings.HasPrefix(b, "2") || b == a || !netnumber.Valid(b) {
		t.Fatalf("new citizen after rotation: %q, %v", b, err)
	}
	if c, err := st.Citizens().GetByNetworkNumber(ctx, b); err != nil || c.ID != "cit-b" {
		t.Fatalf("lookup by number: %+v, %v", c, err)
	}
	// Different keys give unrelated numbers for the same citizen.
	if old.Derive("cit-b") == rotated.Derive("cit-b") {
		t.Fatal("two keys derived the same number")
	}
	if _, err := old.Ensure(ctx, "nobody"); err == nil {
		t.Fatal("Ensure of an unknown citizen succeeded")
	}
}

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"1" + strings.Repeat("A", 20):     true,
		"K2A9" + strings.Repeat("7", 20):  true,
		"1" + strings.Repeat("A", 19):     false,
		"1" + strings.Repeat("I", 20):     false, // not in Crockford's alphabet
		"1" + strings.Repeat("a", 20):     false,
		"":                                false,
		"12345" + strings.Repeat("A", 20): false,
	} {
		if got := netnumber.Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
