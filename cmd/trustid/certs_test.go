package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/certs"
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
