package qr

import (
	"bytes"
	"image/png"
	"math/rand"
	"testing"
)

// Every certificate-sized code must decode, at the scales the pages and the
// CLI render (gozxing's first pass alone missed 3 %).
func TestDecodeCertificateSizedPayloads(t *testing.T) {
	const alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	rng := rand.New(rand.NewSource(1))
	for _, scale := range []int{4, 6} {
		fail := 0
		for i := 0; i < 150; i++ {
			b := []byte("TID1:")
			for len(b) < 454 {
				b = append(b, alpha[rng.Intn(len(alpha))])
			}
			code, err := Encode(string(b))
			if err != nil {
				t.Fatal(err)
			}
			// Through PNG bytes, as an upload arrives.
			data, _ := code.PNG(scale)
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Decode(img); err != nil || got != string(b) {
				fail++
			}
		}
		if fail > 0 {
			t.Errorf("scale %d: %d of 150 codes not decoded", scale, fail)
		}
	}
}
