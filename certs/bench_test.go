package certs

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/trustid/trustid/certs/qr"
)

// BenchmarkVerifyOffline is offline verification of one QR text: Base45,
// zlib, two COSE_Sign1 parses and two ES256 verifications, on one goroutine
// (run with -cpu 1 for one core).
func BenchmarkVerifyOffline(b *testing.B) {
	f := newFixture(b)
	_, h := f.issue("c1")
	trust := f.trust()
	payload := f.present(h, nil)
	now := f.clock.Now()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := Verify(payload, trust, now); err != nil {
			b.Fatal(err)
		}
	}
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	// On a shared machine wall time overstates the cost: CPU time spent by
	// the process (including the garbage collector) per verification gives
	// what one dedicated core would do.
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

// BenchmarkPresent is the holder's cost of one live QR (sign + encode).
func BenchmarkPresent(b *testing.B) {
	f := newFixture(b)
	_, h := f.issue("c1")
	var size int
	b.ReportAllocs()
	for b.Loop() {
		p, err := h.Present(nil)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p)
	}
	b.ReportMetric(float64(size), "qr-chars")
}

// BenchmarkVerifyOnlineSQLite is one online verification (signatures,
// freshness, replay SetNX in the in-process ephemeral store, certificate and
// citizen reads and the audit append in SQLite) on one goroutine.
func BenchmarkVerifyOnlineSQLite(b *testing.B) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	iss, svc, db := sqliteService(b, clk)
	sqliteCitizen(b, db, "c1", "110101199003071234", "Zhang San")
	ctx := context.Background()
	dev := (&fixture{t: b, rand: newRand(5)}).deviceKey()
	is, err := iss.Issue(ctx, IssueRequest{CitizenID: "c1", AuthTime: clk.Now(), ACR: testACR, DeviceKey: &dev.PublicKey})
	if err != nil {
		b.Fatal(err)
	}
	h := &Holder{Cert: is.Cert, Key: dev, Now: clk.Now, Rand: newRand(6)}
	v := Verifier{ClientID: "hotel-a", Role: "hotel"}
	// Every verification needs a fresh presentation (each verifies once):
	// make them outside the timed loop.
	payloads := make([]string, 0, 1024)
	next := func() string {
		if len(payloads) == 0 {
			b.StopTimer()
			for range cap(payloads) {
				p, err := h.Present(nil)
				if err != nil {
					b.Fatal(err)
				}
				payloads = append(payloads, p)
			}
			b.StartTimer()
		}
		p := payloads[len(payloads)-1]
		payloads = payloads[:len(payloads)-1]
		return p
	}
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		p := next()
		c0 := processCPU()
		if _, err := svc.Verify(ctx, v, VerifyRequest{Payload: p, Purpose: "check_in"}); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "verifications/cpu-s")
}

// TestPayloadSize reports the size of a live QR: decoded bytes, QR text
// characters and QR version at level M, for a typical name. It fails only if
// the QR stops fitting version 15 (a regression in the payload's size).
func TestPayloadSize(t *testing.T) {
	f := newFixture(t)
	// 4 CJK characters, 12 bytes of UTF-8; an ID number of c1's length (numbers are unique).
	f.addCitizen("c9", "110101199003075678", "欧阳娜娜")
	for _, c := range []struct{ citizen, challenge string }{{"c1", ""}, {"c9", ""}, {"c9", "8-byte-c"}} {
		_, h := f.issue(c.citizen)
		var ch []byte
		if c.challenge != "" {
			ch = []byte(c.challenge)
		}
		raw, err := h.PresentBytes(ch)
		if err != nil {
			t.Fatal(err)
		}
		text := EncodePayload(raw)
		code, err := qr.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("citizen %s challenge %q: presentation %d bytes (certificate %d), QR text %d chars, QR version %d-M (%d modules)",
			c.citizen, c.challenge, len(raw), len(h.Cert), len(text), code.Version, code.Size)
		if code.Version > 15 {
			t.Errorf("QR version %d: the payload grew", code.Version)
		}
	}
}
