package identity_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/authn/index"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite"
)

const (
	dim       = 512
	testModel = "fake-model/v1"
)

// fakeEmbedder reads "photos" that are text:
//
//	face:A            the identity A's face (a fixed random unit vector)
//	face:A:N          the same face with small noise N (another photo of A)
//	mix:A:B           a face halfway between A and B (cosine ~0.7 with each)
//	noface / several / blurred / garbage
//
// It counts calls so tests can see when embedding was skipped.
type fakeEmbedder struct {
	calls atomic.Int64
	model string
}

var _ identity.Embedder = (*fakeEmbedder)(nil)

func (f *fakeEmbedder) ModelVersion() string {
	if f.model != "" {
		return f.model
	}
	return testModel
}

func (f *fakeEmbedder) Embed(ctx context.Context, img []byte) (identity.Probe, error) {
	f.calls.Add(1)
	s := string(img)
	parts := strings.Split(s, ":")
	var v []float32
	switch {
	case s == "noface":
		return identity.Probe{}, fmt.Errorf("%w: face: no face found", identity.ErrNoFace)
	case s == "several":
		return identity.Probe{}, fmt.Errorf("%w: face: several faces: 3 detected", identity.ErrSeveralFaces)
	case s == "blurred":
		return identity.Probe{}, fmt.Errorf("%w: face: face too blurred", identity.ErrPoorQuality)
	case parts[0] == "face" && len(parts) == 2:
		v = faceVector(parts[1])
	case parts[0] == "face" && len(parts) == 3:
		n, _ := strconv.Atoi(parts[2])
		v = noisy(faceVector(parts[1]), uint64(n))
	case parts[0] == "mix" && len(parts) == 3:
		a, b := faceVector(parts[1]), faceVector(parts[2])
		v = make([]float32, dim)
		for i := range v {
			v[i] = a[i] + b[i]
		}
		v = normalize(v)
	default:
		return identity.Probe{}, fmt.Errorf("%w: face: unsupported format", identity.ErrBadImage)
	}
	return identity.Probe{Embedding: v, ModelVersion: f.ModelVersion()}, nil
}

func seedOf(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func faceVector(name string) []float32 {
	r := rand.New(rand.NewPCG(seedOf(name), 1))
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return normalize(v)
}

// noisy adds noise of norm ~0.5 to v: cosine with v ~0.9.
func noisy(v []float32, n uint64) []float32 {
	r := rand.New(rand.NewPCG(n, 2))
	out := make([]float32, dim)
	for i := range out {
		out[i] = v[i] + float32(r.NormFloat64()*0.5/math.Sqrt(dim))
	}
	return normalize(out)
}

func normalize(v []float32) []float32 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

func testRing(t testing.TB) *seal.Ring {
	t.Helper()
	k := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clock is a manual clock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

type fixture struct {
	store store.Store
	emb   *fakeEmbedder
	index *index.Index
	svc   *identity.Service
	clock *clock
	dir   string
}

var testThresholds = &identity.Thresholds{ModelVersion: testModel, ByFAR: map[string]float32{
	identity.FARName(1e-3): 0.34, identity.FARName(1e-4): 0.41, identity.FARName(1e-5): 0.48,
}}

// backends are the durable stores the service tests run on: SQLite always,
// PostgreSQL when TRUSTID_TEST_POSTGRES names a server (a fresh schema per
// test; pgtest skips without it, or fails in CI).
var backends = []string{"sqlite", "postgres"}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// newFixture opens a SQLite store in a temporary directory and builds a
// Service over it with the fake embedder and the real index.
func newFixture(t testing.TB, mod ...func(*identity.Config)) *fixture {
	return newFixtureOn(t, "sqlite", mod...)
}

// newFixtureOn is newFixture on the named backend.
func newFixtureOn(t testing.TB, backend string, mod ...func(*identity.Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	clk := newClock()
	var (
		st  store.Store
		err error
	)
	switch backend {
	case "postgres":
		st, err = postgres.Open(t.Context(), pgtest.DSN(t), testRing(t), postgres.WithClock(clk.Now))
	default:
		st, err = sqlite.Open(t.Context(), filepath.Join(dir, "trustid.db"), testRing(t), sqlite.WithClock(clk.Now))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st, emb: &fakeEmbedder{}, clock: clk, dir: dir}
	f.svc, f.index = f.newService(t, mod...)
	return f
}

// newService builds another Service (a restarted node) over the fixture's store.
func (f *fixture) newService(t testing.TB, mod ...func(*identity.Config)) (*identity.Service, *index.Index) {
	t.Helper()
	idx, err := index.New(index.Config{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.New(audit.Config{Store: f.store.Audit(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := identity.Config{
		Store: f.store, Embedder: f.emb, Index: idx, Audit: rec, Thresholds: testThresholds,
		IDNumbers: idnumber.Policy{AllowTest: true, Now: f.clock.Now},
		Workers:   3, MaxPhotoBytes: 64, MaxLiveTemplates: 3,
		Now: f.clock.Now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := identity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, idx
}

// testID is the n-th synthesised test ID number.
func testID(t testing.TB, n int) string {
	t.Helper()
	id, err := idnumber.Synthesize(n)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// photos builds a photos directory from name -> content.
func photos(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for k, v := range m {
		fsys[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	return fsys
}

func newIndex() (*index.Index, error) { return index.New(index.Config{Dim: dim}) }

type nopAudit struct{}

func (nopAudit) Record(context.Context, *store.AuditEvent) error { return nil }
