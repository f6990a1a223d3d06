package certs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustid/trustid/certs/qr"
)

// TestQRRoundTrip renders a live presentation as a QR PNG, decodes it with
// zbarimg (Debian zbar-tools, an independent decoder) and with gozxing, and
// verifies what was read offline and online.
func TestQRRoundTrip(t *testing.T) {
	o := newOnlineFixture(t)
	_, h := o.issue("c1")
	payload := o.present(h, nil)

	code, err := qr.Encode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if code.Mode != "alphanumeric" {
		t.Errorf("QR mode %s, want alphanumeric", code.Mode)
	}
	t.Logf("payload %d characters, QR version %d (%dx%d modules), level M", len(payload), code.Version, code.Size, code.Size)
	png, err := code.PNG(4)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "presentation.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "presentation.svg"), code.SVG(), 0o644); err != nil {
		t.Fatal(err)
	}

	decoded := map[string]string{}
	if bin, err := exec.LookPath("zbarimg"); err == nil {
		out, err := exec.Command(bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		decoded["zbarimg"] = strings.TrimRight(string(out), "\n")
	} else if os.Getenv("CI") == "true" {
		t.Fatal("zbarimg not installed (apt-get install zbar-tools)")
	} else {
		t.Log("zbarimg not installed; decoding with gozxing only")
	}
	text, err := qr.Decode(code.Image(4))
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	decoded["gozxing"] = text

	for decoder, text := range decoded {
		if text != payload {
			t.Errorf("%s read %q, want the payload", decoder, text)
			continue
		}
		if _, err := Verify(text, o.trust(), o.clock.Now()); err != nil {
			t.Errorf("%s: offline verify: %v", decoder, err)
		}
	}
	// Online, the scanned presentation verifies once (the holder allowed the hotel its name).
	o.allow("c1", "hotel-a", AttrName)
	if s, resp, c := o.verify("hotel-a", decoded["gozxing"], "check_in"); s != 200 || resp.Attributes[AttrName] != "Zhang San" {
		t.Errorf("online verify: %d %s %v", s, c, resp.Attributes)
	}
	if _, _, c := o.verify("hotel-a", decoded["gozxing"], "check_in"); c != ErrReplayed.Code {
		t.Errorf("second online verify: %q", c)
	}
}
