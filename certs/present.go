package certs

import (
	"crypto/ecdsa"
	"fmt"
	"io"
	"time"
)

// presentation is the payload the holder's device signs.
type presentation struct {
	Cert      []byte `cbor:"1,keyasint"`
	Time      int64  `cbor:"2,keyasint"`
	Nonce     []byte `cbor:"3,keyasint"`
	Challenge []byte `cbor:"4,keyasint,omitempty"`
	// Purpose is the purpose the holder chose to show the certificate for
	// (a purpose name of the policy, e.g. "check_in"); empty for any.
	Purpose string `cbor:"5,keyasint,omitempty"`
}

// MaxPurposeLen bounds the purpose a presentation may carry.
const MaxPurposeLen = 64

// NonceSize is the length of a presentation nonce.
const NonceSize = 8

// Holder is the holder side: the certificate as issued and the device key
// whose public half it binds. Tests and the CLI use it to make live QR
// payloads; the account page does the same in the browser
// (web/assets/static/holder.js) with a non-extractable WebCrypto key.
type Holder struct {
	Cert []byte            // the certificate (COSE_Sign1) from Issuer.Issue
	Key  *ecdsa.PrivateKey // the device key (P-256)
	Now  func() time.Time  // clock; required
	Rand io.Reader         // randomness for nonces and signatures; required
}

// Present signs a fresh presentation of the certificate, binding the
// current time, a random nonce and the verifier's challenge (nil when the
// QR is shown without one), and returns the QR text.
func (h *Holder) Present(challenge []byte) (string, error) {
	raw, err := h.PresentBytes(challenge)
	if err != nil {
		return "", err
	}
	return EncodePayload(raw), nil
}

// PresentBytes is Present without the QR text encoding.
func (h *Holder) PresentBytes(challenge []byte) ([]byte, error) {
	return h.PresentFor(challenge, "")
}

// PresentFor is PresentBytes limited to one purpose: a verifier asking for
// another purpose is refused (ErrPurposeMismatch).
func (h *Holder) PresentFor(challenge []byte, purpose string) ([]byte, error) {
	if h.Key == nil || h.Now == nil || h.Rand == nil || len(h.Cert) == 0 {
		return nil, fmt.Errorf("certs: holder needs Cert, Key, Now and Rand")
	}
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(h.Rand, nonce); err != nil {
		return nil, fmt.Errorf("certs: nonce: %w", err)
	}
	if len(purpose) > MaxPurposeLen {
		return nil, fmt.Errorf("certs: purpose longer than %d bytes", MaxPurposeLen)
	}
	p := presentation{Cert: h.Cert, Time: h.Now().Unix(), Nonce: nonce, Challenge: challenge, Purpose: purpose}
	payload, err := encMode.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("certs: encode presentation: %w", err)
	}
	return sign1(h.Rand, h.Key, nil, "", payload)
}
