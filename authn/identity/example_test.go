package identity_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/authn/index"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store/sqlite"
)

// Example imports a two-line register and verifies a probe photo against a
// claimed ID number, then resolves the ID number and matches an embedding
// the way the liveness decision does. The embedder here is a fake that
// reads "face:NAME" photos; cmd/trustid plugs in the OpenCV engine.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "identity-example")
	defer os.RemoveAll(dir)
	cfg, _ := seal.Generate(nil)
	ring, _ := seal.New(cfg)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "trustid.db"), ring)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	idx, _ := index.New(index.Config{Dim: 512})
	rec, _ := audit.New(audit.Config{Store: st.Audit()})
	svc, err := identity.New(identity.Config{
		Store: st, Embedder: &fakeEmbedder{}, Index: idx, Audit: rec,
		Thresholds: testThresholds, OperatingPoint: "1e-4",
		IDNumbers: idnumber.Policy{AllowTest: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	alice, _ := idnumber.Synthesize(1)
	bob, _ := idnumber.Synthesize(2)
	register := "id_number,name,photo\n" + alice + ",Alice,alice.jpg\n" + bob + ",Bob,bob.jpg\n"
	photos := fstest.MapFS{
		"alice.jpg": {Data: []byte("face:alice")},
		"bob.jpg":   {Data: []byte("face:bob")},
	}
	rep, err := svc.ImportCSV(ctx, "operator:example", strings.NewReader(register), photos)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("imported:", rep.Imported, "failed:", rep.Failed)

	d, _, err := svc.Verify(ctx, alice, []byte("face:alice:1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice's other photo matches:", d.Match, "at FAR", d.OperatingPoint)
	d, _, _ = svc.Verify(ctx, alice, []byte("face:bob:1"))
	fmt.Println("bob claiming alice matches:", d.Match)

	citizen, _ := svc.ResolveIDNumber(ctx, bob)
	match, _, _ := svc.MatchReference(ctx, citizen, faceVector("bob"))
	fmt.Println("bob's embedding matches bob:", match)
	// Output:
	// imported: 2 failed: 0
	// alice's other photo matches: true at FAR 1e-4
	// bob claiming alice matches: false
	// bob's embedding matches bob: true
}
