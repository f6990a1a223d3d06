package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// sqliteService builds the issuer and online service on the embedded SQLite
// store and the in-process ephemeral store, as the zero-config binary does.
func sqliteService(tb testing.TB, clk *clock) (*Issuer, *Service, *sqlite.DB) {
	tb.Helper()
	db := sqlitetest.Open(tb, sqlite.WithClock(clk.Now))
	eph := memory.New(memory.Options{Now: clk.Now})
	tb.Cleanup(func() { eph.Close() })
	log := slog.New(slog.DiscardHandler)
	iss, err := NewIssuer(IssuerConfig{
		Certs: db.Certificates(), Keys: db.Keys(), Citizens: db.Citizens(), Templates: db.Templates(), Audit: db.Audit(),
		HolderKey: bytes.Repeat([]byte{3}, 32), Name: "https://id.example.test", NetworkNumbers: testNumbers(tb, db.Citizens()),
		ACRLevels: map[string]int{testACR: LevelHigh}, Now: clk.Now, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	auth := bearerAuth{verifiers: map[string]Verifier{"hotel-a": {ClientID: "hotel-a", Role: "hotel"}}}
	svc, err := NewService(ServiceConfig{
		Issuer: iss, Certs: db.Certificates(), Citizens: db.Citizens(), Templates: db.Templates(), Audit: db.Audit(),
		Replay: eph, Verifiers: auth, Citizen: auth, Faces: photoMatcher{}, Clients: db.Clients(), Consents: db.Consents(),
		PseudonymKey: bytes.Repeat([]byte{4}, 32), Now: clk.Now, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return iss, svc, db
}

func sqliteClient(tb testing.TB, db *sqlite.DB, id, name, role string) {
	tb.Helper()
	if err := db.Clients().Create(context.Background(), &store.Client{ID: id, Name: name, Role: role, GrantTypes: []string{"client_credentials"}}); err != nil {
		tb.Fatal(err)
	}
}

func sqliteCitizen(tb testing.TB, db *sqlite.DB, id, idNumber, name string) {
	tb.Helper()
	ctx := context.Background()
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: id, IDNumber: idNumber, Name: name}); err != nil {
		tb.Fatal(err)
	}
	photo := sha256.Sum256([]byte("photo of " + id))
	if err := db.Templates().Create(ctx, &store.Template{
		ID: "t-" + id, CitizenID: id, Kind: store.TemplateRegister, ModelVersion: "test",
		Vector: []float32{0.6, 0.8}, PhotoHash: photo[:],
	}); err != nil {
		tb.Fatal(err)
	}
}

func TestWithSQLiteStore(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	iss, svc, db := sqliteService(t, clk)
	sqliteCitizen(t, db, "c1", "110101199003071234", "Zhang San")
	sqliteClient(t, db, "hotel-a", "Grand Hotel", "hotel")
	ctx := context.Background()
	// The holder allowed this hotel to see the masked ID number.
	if err := db.Consents().Put(ctx, &store.Consent{CitizenID: "c1", ClientID: "hotel-a", Claims: []string{AttrIDNumberMasked}}); err != nil {
		t.Fatal(err)
	}
	dev := (&fixture{t: t, rand: newRand(5)}).deviceKey()
	issue := func() *Holder {
		is, err := iss.Issue(ctx, IssueRequest{CitizenID: "c1", AuthTime: clk.Now(), ACR: testACR, DeviceKey: &dev.PublicKey})
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		return &Holder{Cert: is.Cert, Key: dev, Now: clk.Now, Rand: newRand(6)}
	}
	old := issue()
	h := issue()
	trust, err := iss.TrustList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := h.Present(nil)
	if _, err := Verify(payload, trust, clk.Now()); err != nil {
		t.Fatalf("offline: %v", err)
	}
	v := Verifier{ClientID: "hotel-a", Role: "hotel"}
	resp, err := svc.Verify(ctx, v, VerifyRequest{Payload: payload, Purpose: "check_in"})
	if err != nil || resp.Attributes[AttrIDNumberMasked] != "110***********1234" {
		t.Fatalf("online: %v %+v", err, resp)
	}
	if _, err := svc.Verify(ctx, v, VerifyRequest{Payload: payload, Purpose: "check_in"}); !errors.Is(err, ErrReplayed) {
		t.Errorf("replay: %v", err)
	}
	oldPayload, _ := old.Present(nil)
	if _, err := svc.Verify(ctx, v, VerifyRequest{Payload: oldPayload, Purpose: "check_in"}); !errors.Is(err, ErrRevoked) {
		t.Errorf("superseded: %v", err)
	}
	match, err := svc.FaceCheck(ctx, v, FaceCheckRequest{VerificationID: resp.VerificationID, Photo: []byte("face of c1")})
	if err != nil || !match {
		t.Errorf("face check: %v %v", match, err)
	}
	tok, err := iss.StatusList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := ParseStatusList(tok, trust, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (VerifyOptions{Status: sl}).Verify(oldPayload, trust, clk.Now()); !errors.Is(err, ErrRevoked) {
		t.Errorf("offline superseded with status list: %v", err)
	}
	log, err := svc.Log(ctx, "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if log[0].VerifierName != "Grand Hotel" {
		t.Errorf("log names the verifier %q", log[0].VerifierName)
	}
	var outcomes []string
	for _, e := range log {
		outcomes = append(outcomes, e.Action+":"+e.Outcome)
	}
	want := "face_check:match verify:revoked_certificate verify:replayed_presentation verify:ok issue:ok issue:ok"
	if got := strings.Join(outcomes, " "); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
	// Every event went into the project's hash chain, unbroken.
	if n, err := audit.Verify(ctx, db.Audit()); err != nil || n < len(outcomes) {
		t.Errorf("audit chain: %d events checked, %v", n, err)
	}
}
