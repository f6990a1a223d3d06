package qr

import (
	"errors"
	"fmt"
	"image"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
)

// ErrNotFound reports an image in which no QR code could be read.
var ErrNotFound = errors.New("qr: no code found")

// Decode reads the QR code in img with gozxing. gozxing's detector alone
// misses a few percent of valid codes (6 of 200 random certificate-sized
// payloads at 6 px/module); a pass with the hybrid binarizer and one with the
// pure-barcode hint (clean screenshots and uploads) read them.
func Decode(img image.Image) (string, error) {
	var lastErr error
	for _, attempt := range []struct {
		hybrid bool
		hints  map[gozxing.DecodeHintType]any
	}{
		{false, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}},
		{true, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}},
		{false, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}},
	} {
		var bmp *gozxing.BinaryBitmap
		var err error
		if attempt.hybrid {
			bmp, err = gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(img)))
		} else {
			bmp, err = gozxing.NewBinaryBitmapFromImage(img)
		}
		if err != nil {
			lastErr = err
			continue
		}
		res, err := gzqr.NewQRCodeReader().Decode(bmp, attempt.hints)
		if err == nil {
			return res.GetText(), nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("%w: %v", ErrNotFound, lastErr)
}
