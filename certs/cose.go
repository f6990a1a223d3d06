package certs

import (
	"bytes"
	"compress/zlib"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/trustid/trustid/certs/base45"
	"github.com/veraison/go-cose"
)

// PayloadPrefix starts every QR text; the digit is the format version.
const PayloadPrefix = "TID1:"

// maxPresentationBytes bounds decompression of untrusted QR text (a zip bomb
// guard); real presentations are about 330 bytes.
const maxPresentationBytes = 4096

// sign1 signs payload with key as a tagged COSE_Sign1 with ES256 and, when
// set, the kid and content type (typ, RFC 9596) in the protected header.
func sign1(rand io.Reader, key *ecdsa.PrivateKey, kid []byte, typ string, payload []byte) ([]byte, error) {
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("certs: signer: %w", err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
	if kid != nil {
		msg.Headers.Protected[cose.HeaderLabelKeyID] = kid
	}
	if typ != "" {
		msg.Headers.Protected[cose.HeaderLabelType] = typ
	}
	msg.Payload = payload
	if err := msg.Sign(rand, nil, signer); err != nil {
		return nil, fmt.Errorf("certs: sign: %w", err)
	}
	return msg.MarshalCBOR()
}

// parseSign1 decodes a COSE_Sign1 and checks it claims ES256.
func parseSign1(what string, data []byte) (*cose.Sign1Message, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES256 {
		return nil, fmt.Errorf("%w: %s: algorithm is not ES256", ErrMalformed, what)
	}
	if msg.Payload == nil {
		return nil, fmt.Errorf("%w: %s: detached payload", ErrMalformed, what)
	}
	return &msg, nil
}

// verifySign1 checks msg's signature with pub.
func verifySign1(what string, msg *cose.Sign1Message, pub *ecdsa.PublicKey) error {
	v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
	if err != nil {
		return fmt.Errorf("certs: verifier: %w", err)
	}
	if err := msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: %s signature", ErrTampered, what)
	}
	return nil
}

// kidOf returns the protected kid of msg.
func kidOf(msg *cose.Sign1Message) ([]byte, bool) {
	v, ok := msg.Headers.Protected[cose.HeaderLabelKeyID]
	if !ok {
		return nil, false
	}
	b, ok := v.([]byte)
	return b, ok && len(b) > 0 && len(b) <= 32
}

// signedDigest is SHA-256 over the signed content of msg (protected header
// and payload), not the signature: an ECDSA signature can be altered into
// another valid one, so replay detection must not key on it.
func signedDigest(msg *cose.Sign1Message) []byte {
	h := sha256.New()
	h.Write(msg.Headers.RawProtected)
	h.Write([]byte{0})
	h.Write(msg.Payload)
	return h.Sum(nil)
}

// EncodePayload turns presentation bytes into QR text: the prefix and
// Base45 of the zlib-compressed (best compression) bytes, all in QR
// alphanumeric mode. Signatures, keys and hashes do not compress, so when
// zlib's framing makes the result longer the bytes are sent as they are;
// DecodePayload tells the two apart by the first byte (0x78 starts a zlib
// stream at the window size used, 0xD2 a tagged COSE_Sign1), as EU DCC
// verifiers do.
func EncodePayload(presentation []byte) string {
	var buf bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	zw.Reset(&buf)
	zw.Write(presentation)
	zw.Close()
	zlibWriters.Put(zw)
	if buf.Len() >= len(presentation) && (len(presentation) == 0 || presentation[0] != zlibMagic) {
		return PayloadPrefix + base45.Encode(presentation)
	}
	return PayloadPrefix + base45.Encode(buf.Bytes())
}

// zlibWriters reuses compressors: a new one allocates about 800 KB.
var zlibWriters = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(io.Discard, zlib.BestCompression)
	return zw
}}

// zlibMagic is the first byte of a zlib stream with a 32 KiB window (RFC 1950).
const zlibMagic = 0x78

// DecodePayload reverses EncodePayload for untrusted QR text.
func DecodePayload(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, PayloadPrefix) {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrMalformed, PayloadPrefix)
	}
	z, err := base45.Decode(text[len(PayloadPrefix):])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(z) == 0 || z[0] != zlibMagic {
		if len(z) > maxPresentationBytes {
			return nil, fmt.Errorf("%w: presentation larger than %d bytes", ErrMalformed, maxPresentationBytes)
		}
		return z, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxPresentationBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	if len(out) > maxPresentationBytes {
		return nil, fmt.Errorf("%w: presentation larger than %d bytes", ErrMalformed, maxPresentationBytes)
	}
	if err := zr.Close(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	return out, nil
}
