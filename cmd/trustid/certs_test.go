package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/certs/qr"
	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc"
)

// TestCertDemoThenVerifyCert drives the certificate subcommands as a user
// would: issue a development certificate with its QR, then verify the QR
// image and the text offline, and see the refusal once the QR has expired.
func TestCertDemoThenVerifyCert(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := runCertDemo(ctx, []string{"-dir", dir}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"keys.json", "status.cwt", "cert.cose", "device-key.pem", "payload.txt", "qr.png", "qr.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("cert-demo did not write %s", f)
		}
	}
	keys, status := filepath.Join(dir, "keys.json"), filepath.Join(dir, "status.cwt")
	if err := runVerifyCert(ctx, []string{"-keys", keys, "-status", status, "-qr", filepath.Join(dir, "qr.png")}); err != nil {
		t.Errorf("verify-cert -qr: %v", err)
	}
	out := t.TempDir()
	if err := runCertPresent(ctx, []string{"-cert", filepath.Join(dir, "cert.cose"), "-device-key", filepath.Join(dir, "device-key.pem"), "-out", out, "-challenge", "desk-7"}); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile(filepath.Join(out, "payload.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSpace(string(payload))
	if err := runVerifyCert(ctx, []string{"-keys", keys, "-payload", text, "-challenge", "desk-7"}); err != nil {
		t.Errorf("verify-cert -payload with challenge: %v", err)
	}
	if err := runVerifyCert(ctx, []string{"-keys", keys, "-payload", text, "-challenge", "desk-8"}); !errors.Is(err, certs.ErrChallengeMismatch) {
		t.Errorf("wrong challenge: %v", err)
	}
	later := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	if err := runVerifyCert(ctx, []string{"-keys", keys, "-payload", text, "-now", later}); !errors.Is(err, certs.ErrPresentationExpired) {
		t.Errorf("expired QR: %v", err)
	}
}

// TestCertFaceMatcher runs the counter face check on the real face engine:
// another photo of the holder matches the reference, a photo of someone else
// does not, and an image without a face is refused as unusable.
func TestCertFaceMatcher(t *testing.T) {
	models, data := os.Getenv("TRUSTID_MODELS"), os.Getenv("TRUSTID_TESTDATA")
	if _, err := os.Stat(filepath.Join(models, "fr_feature.onnx")); err != nil || data == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TRUSTID_MODELS and TRUSTID_TESTDATA are required in CI")
		}
		t.Skip("models or test data not available")
	}
	eng, err := face.New(face.Config{ModelDir: models, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	m, err := newCertFaceMatcherFor(eng, 1e-4, "lfw") // LFW photos: the lfw population's threshold
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func(name string) []byte {
		person := name[:strings.LastIndex(name, "_")]
		b, err := os.ReadFile(filepath.Join(data, "faces", "lfw", person, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	res, err := eng.Process(ctx, read("Abdullah_Gul_0001.jpg"), face.Options{Embedding: true, AllowSeveral: true})
	if err != nil {
		t.Fatal(err)
	}
	ref := &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateRegister, Vector: res.Embedding}
	code, err := qr.Encode("TID1:NO FACE HERE")
	if err != nil {
		t.Fatal(err)
	}
	noFace, err := code.PNG(4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		photo []byte
		match bool
		err   error
	}{
		{"same person, another photo", read("Abdullah_Gul_0002.jpg"), true, nil},
		{"another person", read("Aaron_Eckhart_0001.jpg"), false, nil},
		{"no face", noFace, false, certs.ErrPhotoUnusable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			match, err := m.MatchPhoto(ctx, tc.photo, ref)
			if !errors.Is(err, tc.err) || (err == nil && match != tc.match) {
				t.Errorf("match=%v err=%v, want match=%v err=%v", match, err, tc.match, tc.err)
			}
		})
	}
}

type clientMap map[string]*store.Client

func (m clientMap) Get(ctx context.Context, id string) (*store.Client, error) {
	c, ok := m[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return c, nil
}

func TestVerifierClients(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	secrets, err := clientauth.New(clientauth.Config{Key: bytes.Repeat([]byte{9}, 32), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	hash := func(s string) []byte { return secrets.Hash([]byte(s)) }
	clients := clientMap{
		"hotel-1": {ID: "hotel-1", Role: "hotel", SecretHash: hash("new"), SecretHashOld: hash("old"), SecretOldExpiresAt: now.Add(time.Hour)},
		"hotel-2": {ID: "hotel-2", Role: "hotel", SecretHash: hash("s2"), SecretHashOld: hash("old2"), SecretOldExpiresAt: now.Add(-time.Hour)},
		"app":     {ID: "app", SecretHash: hash("app")},
	}
	v := &verifierClients{clients: clients, secrets: secrets}
	for _, tc := range []struct {
		name, id, secret string
		want             string // role, or "" for refused
	}{
		{"current secret", "hotel-1", "new", "hotel"},
		{"previous secret within grace", "hotel-1", "old", "hotel"},
		{"previous secret after grace", "hotel-2", "old2", ""},
		{"wrong secret", "hotel-1", "guess", ""},
		{"unknown client", "nobody", "x", ""},
		{"client without a verifier role", "app", "app", ""},
		{"no credentials", "", "", ""},
		{"secret not UTF-8", "hotel-1", "new\xff", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/certs/verify", nil)
			if tc.id != "" {
				r.SetBasicAuth(tc.id, tc.secret)
			}
			got, err := v.AuthenticateVerifier(r)
			if tc.want == "" {
				if err == nil {
					t.Errorf("accepted as %+v", got)
				}
				return
			}
			if err != nil || got.Role != tc.want || got.ClientID != tc.id {
				t.Errorf("got %+v, %v", got, err)
			}
		})
	}
}

func TestCertRevoke(t *testing.T) {
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	t.Setenv("TRUSTID_CONFIG", "")
	ctx := context.Background()
	a, err := openApp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.Citizens().Create(ctx, &store.Citizen{ID: "c1", IDNumber: "110101199003071234", Name: "Zhang San"}); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Templates().Create(ctx, &store.Template{ID: "t1", CitizenID: "c1", Kind: store.TemplateRegister, ModelVersion: "x", Vector: []float32{1}, PhotoHash: []byte("photo")}); err != nil {
		t.Fatal(err)
	}
	iss, err := newCertIssuer(a, a.log)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issue := func() string {
		is, err := iss.Issue(ctx, certs.IssueRequest{CitizenID: "c1", AuthTime: time.Now(), ACR: oidc.ACRFaceLiveness, DeviceKey: &dev.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		return is.Serial
	}
	first := issue()
	a.Close() // the command opens the store itself
	status := func(serial string) store.CertStatus {
		a, err := openApp(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		c, err := a.store.Certificates().Get(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		return c.Status
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"by serial", []string{"-serial", first, "-operator", "alice", "-reason", "fraud report"}, false},
		{"unknown serial", []string{"-serial", "00", "-operator", "alice", "-reason", "x"}, true},
		{"no reason", []string{"-serial", first, "-operator", "alice"}, true},
		{"citizen without an active certificate", []string{"-citizen", "c1", "-operator", "alice", "-reason", "x"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := runCertRevoke(ctx, tc.args); (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if got := status(first); got != store.CertRevoked {
		t.Errorf("status after revocation: %s", got)
	}

	// A citizen with two devices: listed, then both revoked at a desk.
	if a, err = openApp(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if iss, err = newCertIssuer(a, a.log); err != nil {
		t.Fatal(err)
	}
	var serials []string
	for range 2 {
		dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := iss.Issue(ctx, certs.IssueRequest{CitizenID: "c1", AuthTime: time.Now(), ACR: oidc.ACRFaceLiveness, DeviceKey: &dev.PublicKey, DeviceName: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, is.Serial)
	}
	a.Close()
	if err := runCertDevices(ctx, []string{"-citizen", "c1"}); err != nil {
		t.Fatalf("cert-devices: %v", err)
	}
	if err := runCertRevoke(ctx, []string{"-citizen", "c1", "-operator", "alice", "-reason", "lost phones"}); err != nil {
		t.Fatalf("revoke by citizen: %v", err)
	}
	for _, s := range serials {
		if got := status(s); got != store.CertRevoked {
			t.Errorf("device %s after revocation by citizen: %s", s, got)
		}
	}
}
