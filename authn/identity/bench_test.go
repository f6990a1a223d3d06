package identity_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/internal/store"
)

var idnumberSynth = idnumber.Synthesize

// BenchmarkVerify measures the service's own cost of a 1:1 verification
// (ID-number lookup by keyed hash, template listing and unsealing from
// SQLite, scoring) with an embedder that costs nothing; the face engine's
// time adds to it.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := b.Context()
	if _, err := f.svc.ImportCSV(ctx, "operator:bench", csvOf(testID(b, 1)+",Alice,a.jpg"), photos(map[string]string{"a.jpg": "face:alice"})); err != nil {
		b.Fatal(err)
	}
	probe := []byte("face:alice:1")
	b.ReportAllocs()
	for b.Loop() {
		d, _, err := f.svc.Verify(ctx, testID(b, 1), probe)
		if err != nil || !d.Match {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkImportRow measures importing new citizens (validation, store
// writes, 1:N duplicate check against the growing index, audit), per row.
func BenchmarkImportRow(b *testing.B) {
	f := newFixture(b)
	ctx := b.Context()
	const batch = 100
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		var lines []string
		for i := range batch {
			// Fresh faces per batch so every row is a real import.
			lines = append(lines, fmt.Sprintf("%s,Person,p%d.jpg", testID(b, n*batch+i), i))
		}
		n++
		b.StopTimer()
		fsys := photos(func() map[string]string {
			m := map[string]string{}
			for i := range batch {
				m[fmt.Sprintf("p%d.jpg", i)] = fmt.Sprintf("face:person%d-%d", n, i)
			}
			return m
		}())
		b.StartTimer()
		rep, err := f.svc.ImportCSV(ctx, "operator:bench", csvOf(strings.Join(lines, "\n")), fsys)
		if err != nil || rep.Imported != batch {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n*batch), "µs/row")
}

// BenchmarkLoadIndex measures loading the 1:N index from the store at
// start (paging ListAll, unsealing each vector, quantising), per template.
func BenchmarkLoadIndex(b *testing.B) {
	const n = 5000
	f := newFixture(b)
	ctx := b.Context()
	for i := range n {
		cid := fmt.Sprintf("c%05d", i)
		id, err := idnumberSynth(i)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.store.Citizens().Create(ctx, &store.Citizen{ID: cid, IDNumber: id, Name: "X"}); err != nil {
			b.Fatal(err)
		}
		if err := f.store.Templates().Create(ctx, &store.Template{ID: fmt.Sprintf("t%05d", i), CitizenID: cid,
			Kind: store.TemplateRegister, ModelVersion: testModel, Vector: faceVector(cid)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		svc, idx := f.newService(b)
		loaded, _, err := svc.LoadIndex(ctx)
		if err != nil || loaded != n || idx.Len() != n {
			b.Fatal(loaded, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/template")
}
