package qr

import (
	"bytes"
	"encoding/xml"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
)

// ZbarDecode decodes a PNG file with Debian's zbarimg (an independent
// decoder); it skips when zbarimg is missing, except in CI.
func zbarDecode(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zbarimg not installed (apt-get install zbar-tools)")
		}
		t.Skip("zbarimg not installed")
	}
	out, err := exec.Command(bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v", path, err)
	}
	return strings.TrimRight(string(out), "\n")
}

func gozxingDecode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText()
}

func TestEncodeDecodes(t *testing.T) {
	for _, tc := range []struct {
		name, text, mode string
		version          int
	}{
		{"short alphanumeric", "TID1:ABC 123", "alphanumeric", 1},
		{"base45 alphabet", "TID1:0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", "alphanumeric", 3},
		{"lowercase needs byte mode", "hello, world", "byte", 1},
		{"long alphanumeric", "TID1:" + strings.Repeat("6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3", 10), "alphanumeric", 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Encode(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode != tc.mode || c.Version != tc.version || c.Size != 17+4*c.Version {
				t.Errorf("mode %s version %d size %d, want %s version %d", c.Mode, c.Version, c.Size, tc.mode, tc.version)
			}
			pngBytes, err := c.PNG(4)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "qr.png")
			if err := os.WriteFile(path, pngBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := gozxingDecode(t, c.Image(4)); got != tc.text {
				t.Errorf("gozxing decoded %q, want %q", got, tc.text)
			}
			if got := zbarDecode(t, path); got != tc.text {
				t.Errorf("zbarimg decoded %q, want %q", got, tc.text)
			}
		})
	}
}

func TestSVGMatchesMatrix(t *testing.T) {
	c, err := Encode("TID1:SVG TEST")
	if err != nil {
		t.Fatal(err)
	}
	svg := c.SVG()
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	// Count dark modules drawn: each "hN" run covers N modules.
	var drawn, dark int
	for _, seg := range bytes.Split(svg, []byte("h"))[1:] {
		var n int
		for _, ch := range seg {
			if ch < '0' || ch > '9' {
				break
			}
			n = n*10 + int(ch-'0')
		}
		drawn += n
	}
	for r := 0; r < c.Size; r++ {
		for col := 0; col < c.Size; col++ {
			if c.Dark(r, col) {
				dark++
			}
		}
	}
	if drawn != dark || dark == 0 {
		t.Errorf("SVG draws %d modules, matrix has %d dark", drawn, dark)
	}
}

func TestEncodeEmpty(t *testing.T) {
	if _, err := Encode(""); err == nil {
		t.Error("Encode(\"\") succeeded")
	}
}
