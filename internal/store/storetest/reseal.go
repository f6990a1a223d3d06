package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
)

// Resealer is implemented by backends that can rewrite sealed values under
// the ring's current primary key (key rotation).
type Resealer interface {
	Reseal(ctx context.Context) (int, error)
}

func ringOf(t *testing.T, primary string, ids ...string) *seal.Ring {
	t.Helper()
	keys := map[string]string{}
	for _, id := range ids {
		keys[id] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(id[:1]), 32))
	}
	r, err := seal.New(seal.Config{Keys: keys, Primary: primary, LookupKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'L'}, 32))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// RunReseal checks key rotation end to end: data written under key "a" is
// readable after "b" becomes primary, Reseal rewrites it under "b", and then
// a ring without "a" reads everything. open must return a handle on the same
// (initially empty) database every time it is called, sealing with ring.
func RunReseal(t *testing.T, open func(t *testing.T, ring *seal.Ring) store.Store) {
	ctx := ctxT(t)
	s1 := open(t, ringOf(t, "a", "a"))
	const n = 2*200 + 7 // more than two reseal batches (200) of citizens
	for i := range n {
		must(t, s1.Citizens().Create(ctx, &store.Citizen{ID: fmt.Sprintf("c%04d", i), IDNumber: idNumber(i)}))
	}
	must(t, s1.Templates().Create(ctx, &store.Template{ID: "t1", CitizenID: "c0000", Kind: store.TemplateLive, Vector: vec(1)}))
	must(t, s1.Keys().Create(ctx, &store.SigningKey{ID: "k1", Use: "oidc", Private: []byte("priv")}))
	must(t, s1.OAuth().Create(ctx, &store.OAuthRecord{Kind: store.OAuthCode, Signature: "s1", Data: []byte("d")}))

	s2 := open(t, ringOf(t, "b", "a", "b"))
	if c, err := s2.Citizens().GetByIDNumber(ctx, idNumber(5)); err != nil || c.ID != "c0005" {
		t.Fatalf("old data under rotated ring: %v %v", c, err)
	}
	rs, ok := s2.(Resealer)
	if !ok {
		t.Skip("backend cannot reseal")
	}
	got, err := rs.Reseal(ctx)
	must(t, err)
	if want := n + 3; got != want {
		t.Fatalf("Reseal rewrote %d values, want %d", got, want)
	}
	if again, err := rs.Reseal(ctx); err != nil || again != 0 {
		t.Fatalf("second Reseal = %d, %v; want 0", again, err)
	}

	s3 := open(t, ringOf(t, "b", "b")) // old key dropped
	for _, i := range []int{0, 199, 200, 400, n - 1} {
		c, err := s3.Citizens().Get(ctx, fmt.Sprintf("c%04d", i))
		must(t, err)
		if c.IDNumber != idNumber(i) {
			t.Fatalf("citizen %d id number = %q", i, c.IDNumber)
		}
	}
	if _, err := s3.Templates().Get(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if k, err := s3.Keys().Get(ctx, "k1"); err != nil || string(k.Private) != "priv" {
		t.Fatalf("key after reseal: %v %v", k, err)
	}
	if r, err := s3.OAuth().Get(ctx, store.OAuthCode, "s1"); err != nil || string(r.Data) != "d" {
		t.Fatalf("oauth record after reseal: %v %v", r, err)
	}
}
