package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// testNumbers is the real 网号 assigner on the test's citizen store.
func testNumbers(tb testing.TB, citizens netnumber.Citizens) *netnumber.Assigner {
	tb.Helper()
	a, err := netnumber.New(netnumber.Config{Citizens: citizens, KeyID: "T1", Key: make([]byte, 32)})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedRand makes a seeded ChaCha8 safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func newRand(seed byte) io.Reader {
	return &lockedRand{r: rand.NewChaCha8([32]byte{seed})}
}

const testACR = "urn:trustid:acr:face+liveness"

type fixture struct {
	t     testing.TB
	clock *clock
	rand  io.Reader
	st    *sqlite.DB
	path  string // the SQLite file of st
	iss   *Issuer
}

// t0 has a fraction of a second on purpose: claims carry whole seconds, keys do not.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: t0}, rand: newRand(1)}
	f.path = filepath.Join(t.TempDir(), "trustid.db")
	var err error
	f.st, err = sqlite.Open(context.Background(), f.path, sqlitetest.Ring(t), sqlite.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.iss, err = NewIssuer(IssuerConfig{
		Certs: f.st.Certificates(), Keys: f.st.Keys(), Citizens: f.st.Citizens(), Templates: f.st.Templates(), Audit: f.st.Audit(),
		HolderKey: make([]byte, 32), NetworkNumbers: testNumbers(t, f.st.Citizens()),
		Name:      "https://id.example.test",
		ACRLevels: map[string]int{testACR: LevelHigh, "urn:trustid:acr:password": LevelLow},
		Now:       f.clock.Now, Rand: f.rand,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.addCitizen("c1", "110101199003071234", "Zhang San")
	return f
}

// addCitizen stores a citizen with a register template.
func (f *fixture) addCitizen(id, idNumber, name string) {
	f.t.Helper()
	f.addCitizenOnly(id, idNumber, name)
	photo := sha256.Sum256([]byte("photo of " + id))
	if err := f.st.Templates().Create(context.Background(), &store.Template{
		ID: "t-" + id, CitizenID: id, Kind: store.TemplateRegister, ModelVersion: "test",
		Vector: []float32{1, 0, 0}, PhotoHash: photo[:], CreatedAt: t0,
	}); err != nil {
		f.t.Fatal(err)
	}
}

// addCitizenOnly stores a citizen without a template.
func (f *fixture) addCitizenOnly(id, idNumber, name string) {
	f.t.Helper()
	if err := f.st.Citizens().Create(context.Background(), &store.Citizen{ID: id, IDNumber: idNumber, Name: name, CreatedAt: t0}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) deviceKey() *ecdsa.PrivateKey {
	f.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), f.rand)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// issue issues a certificate to citizen and returns its holder.
func (f *fixture) issue(citizen string) (*Issued, *Holder) {
	f.t.Helper()
	return f.issueTo(citizen, f.deviceKey())
}

// issueTo issues a certificate to citizen's device dev.
func (f *fixture) issueTo(citizen string, dev *ecdsa.PrivateKey) (*Issued, *Holder) {
	f.t.Helper()
	is, err := f.iss.Issue(context.Background(), IssueRequest{
		CitizenID: citizen, AuthTime: f.clock.Now().Add(-time.Minute), ACR: testACR, DeviceKey: &dev.PublicKey,
	})
	if err != nil {
		f.t.Fatalf("issue: %v", err)
	}
	return is, &Holder{Cert: is.Cert, Key: dev, Now: f.clock.Now, Rand: f.rand}
}

// changedNumber returns the 网号 an issued certificate carries and a
// different one of the same length (to tamper with the signed bytes).
func changedNumber(is *Issued) (nn, other []byte) {
	nn = []byte(is.Claims.NetworkNumber)
	other = append([]byte(nil), nn...)
	if other[len(other)-1] == '0' {
		other[len(other)-1] = '1'
	} else {
		other[len(other)-1] = '0'
	}
	return nn, other
}

// trust returns the published key list as a verifier would parse it.
func (f *fixture) trust() *TrustList {
	f.t.Helper()
	tl, err := f.iss.TrustList(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := json.Marshal(tl)
	if err != nil {
		f.t.Fatal(err)
	}
	parsed, err := ParseTrustList(b)
	if err != nil {
		f.t.Fatal(err)
	}
	return parsed
}

func (f *fixture) present(h *Holder, challenge []byte) string {
	f.t.Helper()
	p, err := h.Present(challenge)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func t0Context() context.Context { return context.Background() }
