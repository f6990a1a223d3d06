package web

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // photos of a QR code
	_ "image/png"
	"io"
	"net/http"
	"time"

	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/certs/qr"
	"github.com/trustid/trustid/internal/httperr"
)

type purposeView struct{ Role, Purpose string }

func (s *Site) deskPage(w http.ResponseWriter, r *http.Request) {
	ps := s.purposes()
	s.render(w, r, http.StatusOK, "desk", map[string]any{"Purposes": ps, "Roles": rolePurposes(ps), "CertsAPI": s.cfg.CertsAPI,
		"Window": int(s.cfg.QRWindow / time.Second), "Skew": int(certs.DefaultSkew / time.Second)})
}

// ErrNoQR is returned when an image holds no readable QR code.
var ErrNoQR = errors.New("web: no QR code in the image")

// maxImagePixels bounds decoded images (a phone photo is ~12 MP).
const maxImagePixels = 16 << 20

// DecodeQR reads the QR code in a PNG or JPEG image.
func DecodeQR(data []byte) (string, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxImagePixels {
		return "", fmt.Errorf("%w: image is %dx%d", ErrNoQR, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	text, err := qr.Decode(img)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	return text, nil
}

// deskDecode reads a QR code from an uploaded photo (for browsers without
// the BarcodeDetector API): multipart field "image" -> {"text": ...}.
func (s *Site) deskDecode(w http.ResponseWriter, r *http.Request) error {
	f, _, err := r.FormFile("image")
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return err
		}
		return httperr.InvalidRequest("an image part is required").WithCause(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUpload))
	if err != nil {
		return httperr.InvalidRequest("the image could not be read").WithCause(err)
	}
	text, err := DecodeQR(data)
	if err != nil {
		return httperr.New(http.StatusUnprocessableEntity, "no_qr_code", "no readable QR code in the image").WithCause(err)
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]string{"text": text})
}
