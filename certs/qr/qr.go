// Package qr renders net certificate presentations as QR codes: it encodes
// text with error correction level M (alphanumeric mode when every character
// allows it, as TID1: Base45 payloads do), reports the QR version, and draws
// the module matrix as PNG or SVG.
//
// Encoding is github.com/yeqown/go-qrcode/v2; the drawing is done here from
// the module matrix (a few lines, and it keeps the image libraries of the
// library's writer packages out of the binary).
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/yeqown/go-qrcode/v2"
)

// QuietZone is the blank border in modules that ISO/IEC 18004 requires.
const QuietZone = 4

// Code is an encoded QR symbol.
type Code struct {
	Version int      // 1..40
	Size    int      // modules per side, 17 + 4*Version
	Mode    string   // "alphanumeric" or "byte"
	dark    [][]bool // [row][col], without quiet zone
}

// capture is a go-qrcode Writer that keeps the module matrix.
type capture struct{ bitmap [][]bool }

func (c *capture) Write(m qrcode.Matrix) error { c.bitmap = m.Bitmap(); return nil }
func (c *capture) Close() error                { return nil }

// IsAlphanumeric reports whether s uses only the 45 characters of QR
// alphanumeric mode.
func IsAlphanumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", rune(s[i])) {
			return false
		}
	}
	return true
}

// Encode encodes text at error correction level M in the smallest version
// that holds it.
func Encode(text string) (*Code, error) {
	if text == "" {
		return nil, errors.New("qr: empty text")
	}
	mode, name := qrcode.EncModeByte, "byte"
	if IsAlphanumeric(text) {
		mode, name = qrcode.EncModeAlphanumeric, "alphanumeric"
	}
	q, err := qrcode.NewWith(text,
		qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium),
		qrcode.WithEncodingMode(mode))
	if err != nil {
		return nil, fmt.Errorf("qr: encode: %w", err)
	}
	var c capture
	if err := q.Save(&c); err != nil {
		return nil, fmt.Errorf("qr: encode: %w", err)
	}
	n := len(c.bitmap)
	if n < 21 || (n-17)%4 != 0 {
		return nil, fmt.Errorf("qr: unexpected matrix size %d", n)
	}
	return &Code{Version: (n - 17) / 4, Size: n, Mode: name, dark: c.bitmap}, nil
}

// Dark reports whether the module at row, col is dark.
func (c *Code) Dark(row, col int) bool { return c.dark[row][col] }

// Image draws the code with scale pixels per module and the quiet zone.
func (c *Code) Image(scale int) *image.Gray {
	if scale < 1 {
		scale = 1
	}
	side := (c.Size + 2*QuietZone) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for r := 0; r < c.Size; r++ {
		for col := 0; col < c.Size; col++ {
			if !c.dark[r][col] {
				continue
			}
			x0, y0 := (col+QuietZone)*scale, (r+QuietZone)*scale
			for y := y0; y < y0+scale; y++ {
				for x := x0; x < x0+scale; x++ {
					img.SetGray(x, y, color.Gray{})
				}
			}
		}
	}
	return img
}

// PNG returns the code as a PNG with scale pixels per module.
func (c *Code) PNG(scale int) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, c.Image(scale)); err != nil {
		return nil, fmt.Errorf("qr: png: %w", err)
	}
	return buf.Bytes(), nil
}

// SVG returns the code as a scalable SVG: one path of unit squares, one unit
// per module, with the quiet zone; the page sizes it with CSS.
func (c *Code) SVG() []byte {
	side := c.Size + 2*QuietZone
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, side, side)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, side, side)
	for r := 0; r < c.Size; r++ {
		for col := 0; col < c.Size; {
			if !c.dark[r][col] {
				col++
				continue
			}
			run := 0
			for col+run < c.Size && c.dark[r][col+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", col+QuietZone, r+QuietZone, run, run)
			col += run
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes()
}
