package storetest

import (
	"testing"

	"github.com/trustid/trustid/internal/store"
)

// testClientIDTokenAlg checks that a client's id_token_signed_response_alg
// is stored, read back by Get and List, changed by Update and that an
// unset one reads as "".
func testClientIDTokenAlg(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	cs := s.Clients()
	must(t, cs.Create(ctx, &store.Client{ID: "es", IDTokenAlg: "ES256", CreatedAt: t0}))
	must(t, cs.Create(ctx, &store.Client{ID: "def", CreatedAt: t0}))

	for _, tc := range []struct {
		name, id, want string
	}{
		{"set", "es", "ES256"},
		{"default", "def", ""},
	} {
		got, err := cs.Get(ctx, tc.id)
		must(t, err)
		if got.IDTokenAlg != tc.want {
			t.Errorf("%s: Get(%s).IDTokenAlg = %q, want %q", tc.name, tc.id, got.IDTokenAlg, tc.want)
		}
	}

	up, err := cs.Update(ctx, "es", func(c *store.Client) error {
		c.IDTokenAlg = "RS256"
		return nil
	})
	must(t, err)
	if up.IDTokenAlg != "RS256" {
		t.Errorf("Update returned IDTokenAlg %q, want RS256", up.IDTokenAlg)
	}
	// An updater that leaves the field alone keeps it.
	must(t, second(cs.Update(ctx, "es", func(c *store.Client) error { c.Name = "renamed"; return nil })))
	list, err := cs.List(ctx)
	must(t, err)
	algs := map[string]string{}
	for _, c := range list {
		algs[c.ID] = c.IDTokenAlg
	}
	if algs["es"] != "RS256" || algs["def"] != "" || len(algs) != 2 {
		t.Errorf("List algs = %v, want es:RS256 def:\"\"", algs)
	}
}
