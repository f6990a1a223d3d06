package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite"
)

const acr = "urn:trustid:acr:face+liveness"

type hotel struct{}

func (hotel) AuthenticateVerifier(*http.Request) (certs.Verifier, error) {
	return certs.Verifier{ClientID: "hotel-bench", Role: "hotel"}, nil
}
func (hotel) AuthenticateCitizen(*http.Request) (certs.CitizenSession, error) {
	return certs.CitizenSession{}, fmt.Errorf("not used")
}

func ring(tb testing.TB) *seal.Ring {
	k := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// env is one backend pair with citizens holding certificates.
type env struct {
	svc     *certs.Service
	holders []*certs.Holder
}

// numbers is the real 网号 assigner on the benchmark's store.
func numbers(tb testing.TB, citizens netnumber.Citizens) *netnumber.Assigner {
	tb.Helper()
	a, err := netnumber.New(netnumber.Config{Citizens: citizens, KeyID: "B1", Key: bytes.Repeat([]byte{5}, 32)})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func setup(tb testing.TB, st store.Store, eph ephemeral.Store, citizens int) *env {
	tb.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	iss, err := certs.NewIssuer(certs.IssuerConfig{
		Certs: st.Certificates(), Keys: st.Keys(), Citizens: st.Citizens(), Templates: st.Templates(), Audit: st.Audit(),
		HolderKey: bytes.Repeat([]byte{3}, 32), NetworkNumbers: numbers(tb, st.Citizens()), ACRLevels: map[string]int{acr: certs.LevelHigh}, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := certs.NewService(certs.ServiceConfig{
		Issuer: iss, Certs: st.Certificates(), Citizens: st.Citizens(), Templates: st.Templates(), Audit: st.Audit(),
		Replay: eph, Verifiers: hotel{}, Citizen: hotel{}, PseudonymKey: bytes.Repeat([]byte{4}, 32), Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{svc: svc}
	for i := range citizens {
		id := fmt.Sprintf("bench-%d", i)
		if err := st.Citizens().Create(ctx, &store.Citizen{ID: id, IDNumber: fmt.Sprintf("1101011990030%05d", i), Name: "Zhang San"}); err != nil {
			tb.Fatal(err)
		}
		photo := sha256.Sum256([]byte(id))
		if err := st.Templates().Create(ctx, &store.Template{ID: "t-" + id, CitizenID: id, Kind: store.TemplateRegister, ModelVersion: "bench", Vector: []float32{1}, PhotoHash: photo[:]}); err != nil {
			tb.Fatal(err)
		}
		dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := iss.Issue(ctx, certs.IssueRequest{CitizenID: id, AuthTime: time.Now(), ACR: acr, DeviceKey: &dev.PublicKey})
		if err != nil {
			tb.Fatal(err)
		}
		e.holders = append(e.holders, &certs.Holder{Cert: is.Cert, Key: dev, Now: time.Now, Rand: rand.Reader})
	}
	return e
}

// payloads makes n fresh presentations (each verifies once) outside the timer.
func (e *env) payloads(tb testing.TB, n int) []string {
	out := make([]string, n)
	for i := range out {
		p, err := e.holders[i%len(e.holders)].Present(nil)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func run(b *testing.B, e *env, parallel bool) {
	ctx := context.Background()
	req := func(p string) {
		if _, err := e.svc.Verify(ctx, certs.Verifier{ClientID: "hotel-bench", Role: "hotel"}, certs.VerifyRequest{Payload: p, Purpose: "check_in"}); err != nil {
			b.Error(err)
		}
	}
	// Presentations are valid 60 s: make them in batches the timed loop
	// uses up quickly.
	const batch = 2000
	done := 0
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for done < b.N {
		n := min(batch, b.N-done)
		b.StopTimer()
		ps := e.payloads(b, n)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		if parallel {
			var next atomic.Int64
			doneCh := make(chan struct{})
			workers := 8
			for range workers {
				go func() {
					defer func() { doneCh <- struct{}{} }()
					for {
						i := next.Add(1) - 1
						if i >= int64(n) {
							return
						}
						req(ps[i])
					}
				}()
			}
			for range workers {
				<-doneCh
			}
		} else {
			for _, p := range ps {
				req(p)
			}
		}
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		done += n
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "verifications/s")
	// CPU of this process only (the service side; PostgreSQL and Redis
	// servers are other processes): what one dedicated core would do.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "verifications/cpu-s")
}

// processCPU is the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sqliteEnv(b testing.TB) *env {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "trustid.db"), ring(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	eph := memory.New(memory.Options{})
	b.Cleanup(func() { eph.Close() })
	return setup(b, db, eph, 20)
}

func postgresRedisEnv(b testing.TB) *env {
	dsn := pgtest.DSN(b)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, ring(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	eph := redistest.Open(b, "bench-certs")
	return setup(b, db, eph, 20)
}

func BenchmarkOnlineVerify(b *testing.B) {
	for _, be := range []struct {
		name string
		env  func(testing.TB) *env
	}{{"sqlite+memory", sqliteEnv}, {"postgres+redis", postgresRedisEnv}} {
		b.Run(be.name+"/serial", func(b *testing.B) { run(b, be.env(b), false) })
		b.Run(be.name+"/8-concurrent", func(b *testing.B) { run(b, be.env(b), true) })
	}
}

// TestOnlineVerifyBackends checks on each backend pair that the
// benchmark's setup verifies, and that one presentation verified by many
// goroutines at once is accepted exactly once (the replay SetNX is atomic).
func TestOnlineVerifyBackends(t *testing.T) {
	for _, be := range []struct {
		name string
		env  func(testing.TB) *env
	}{{"sqlite+memory", sqliteEnv}, {"postgres+redis", postgresRedisEnv}} {
		t.Run(be.name, func(t *testing.T) { checkBackend(t, be.env(t)) })
	}
}

func checkBackend(t *testing.T, e *env) {
	ctx := context.Background()
	v := certs.Verifier{ClientID: "hotel-bench", Role: "hotel"}
	for _, p := range e.payloads(t, 3) {
		if _, err := e.svc.Verify(ctx, v, certs.VerifyRequest{Payload: p, Purpose: "check_in"}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.payloads(t, 1)[0]
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.svc.Verify(ctx, v, certs.VerifyRequest{Payload: p, Purpose: "check_in"})
			errs <- err
		}()
	}
	ok, replayed := 0, 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, certs.ErrReplayed):
			replayed++
		default:
			t.Errorf("concurrent verification: %v", err)
		}
	}
	if ok != 1 || replayed != n-1 {
		t.Errorf("%d accepted, %d refused as replayed; want 1 and %d", ok, replayed, n-1)
	}
}
