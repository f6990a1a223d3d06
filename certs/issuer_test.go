package certs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

func statuses(tl *TrustList) []string {
	var out []string
	for _, k := range tl.Keys {
		out = append(out, k.Status)
	}
	return out
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cfg := f.iss.cfg
	_, h1 := f.issue("c1")
	kid1 := f.trust().Keys[0].KID
	if got := statuses(f.trust()); len(got) != 1 || got[0] != KeyActive {
		t.Fatalf("start: %v", got)
	}

	// Near the end of its signing period the successor is published first.
	f.clock.Advance(cfg.KeyLifetime - 2*cfg.PublishLead + time.Hour)
	if err := f.iss.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := statuses(f.trust()); len(got) != 2 || got[0] != KeyActive || got[1] != KeyNext {
		t.Fatalf("after publishing successor: %v", got)
	}
	if err := f.iss.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.trust().Keys); n != 2 {
		t.Fatalf("EnsureKeys is not idempotent: %d keys", n)
	}
	issued, hOld := f.issue("c1")
	if kidOfCert(t, issued.Cert) != kid1 {
		t.Error("the successor signed before its activation time")
	}

	// After the lead time the successor signs; the old key still verifies.
	f.clock.Advance(cfg.PublishLead + time.Hour)
	second, h2 := f.issue("c1")
	if kidOfCert(t, second.Cert) == kid1 {
		t.Error("the old key still signs after the successor's activation")
	}
	if _, err := Verify(f.present(h2, nil), f.trust(), f.clock.Now()); err != nil {
		t.Errorf("new certificate: %v", err)
	}

	// Past its retirement the old key is listed as retired and keeps
	// verifying what it signed until those certificates expire.
	f.clock.Advance(cfg.PublishLead)
	if got := statuses(f.trust()); got[0] != KeyRetired || got[1] != KeyActive {
		t.Errorf("after retirement: %v", got)
	}
	if _, err := Verify(f.present(hOld, nil), f.trust(), f.clock.Now()); err != nil {
		t.Errorf("certificate of the retired key: %v", err)
	}
	if _, err := Verify(f.present(h1, nil), f.trust(), f.clock.Now()); !errors.Is(err, ErrCertificateExpired) {
		t.Errorf("first certificate after its 30 days: %v", err)
	}

	// Once every certificate of the old key has expired, it leaves the list.
	f.clock.Advance(cfg.CertTTL)
	if err := f.iss.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range f.trust().Keys {
		if k.KID == kid1 {
			t.Error("expired key still published")
		}
	}
}

func kidOfCert(t *testing.T, cert []byte) string {
	t.Helper()
	msg, err := parseSign1("certificate", cert)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := kidOf(msg)
	return KIDString(kid)
}

func TestIssueRefusals(t *testing.T) {
	f := newFixture(t)
	f.addCitizen("c2", "220101199001011111", "Li Si")
	if _, err := f.st.Citizens().Update(context.Background(), "c2", func(c *store.Citizen) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f.addCitizenOnly("c3", "330101199001013333", "No Template")
	dev := f.deviceKey()
	now := f.clock.Now()
	for _, tc := range []struct {
		name string
		req  IssueRequest
		want error
	}{
		{"stale proof", IssueRequest{CitizenID: "c1", AuthTime: now.Add(-6 * time.Minute), ACR: testACR, DeviceKey: &dev.PublicKey}, ErrStaleAuthentication},
		{"no proof time", IssueRequest{CitizenID: "c1", ACR: testACR, DeviceKey: &dev.PublicKey}, ErrStaleAuthentication},
		{"low assurance", IssueRequest{CitizenID: "c1", AuthTime: now, ACR: "urn:trustid:acr:password", DeviceKey: &dev.PublicKey}, ErrInsufficientLevel},
		{"unknown acr", IssueRequest{CitizenID: "c1", AuthTime: now, ACR: "other", DeviceKey: &dev.PublicKey}, ErrInsufficientLevel},
		{"no device key", IssueRequest{CitizenID: "c1", AuthTime: now, ACR: testACR}, ErrBadRequest},
		{"disabled citizen", IssueRequest{CitizenID: "c2", AuthTime: now, ACR: testACR, DeviceKey: &dev.PublicKey}, ErrCitizenDisabled},
		{"no reference template", IssueRequest{CitizenID: "c3", AuthTime: now, ACR: testACR, DeviceKey: &dev.PublicKey}, ErrNoReferenceTemplate},
		{"unknown citizen", IssueRequest{CitizenID: "nobody", AuthTime: now, ACR: testACR, DeviceKey: &dev.PublicKey}, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.iss.Issue(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewIssuer(IssuerConfig{}); err == nil {
		t.Error("empty issuer config accepted")
	}
	if _, err := NewService(ServiceConfig{}); err == nil {
		t.Error("empty service config accepted")
	}
	bad := DefaultPolicy()
	bad["hotel"]["check_in"] = append(bad["hotel"]["check_in"], "photo")
	if err := bad.Validate(); err == nil {
		t.Error("policy with an unknown attribute accepted")
	}
}

func TestMaskIDNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"110101199003071234", "110***********1234"},
		{"11010119900307123X", "110***********123X"},
		{"12345678", "******78"},
		{"1", "1"},
		{"", ""},
	} {
		if got := MaskIDNumber(tc.in); got != tc.want {
			t.Errorf("MaskIDNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
