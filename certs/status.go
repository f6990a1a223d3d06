package certs

import (
	"bytes"
	"compress/zlib"
	"crypto/ecdsa"
	"fmt"
	"io"
	"time"

	"github.com/veraison/go-cose"
)

// Status list of issued certificates, shaped after the IETF OAuth Token
// Status List (draft-ietf-oauth-status-list, CWT form): one bit per
// certificate (1 = revoked), index 0 in the least significant bit of byte 0,
// the byte array zlib-compressed (RFC 1950), carried in a CWT signed by the
// issuer with typ "application/statuslist+cwt".

// StatusListType is the protected typ header of a status list token.
const StatusListType = "application/statuslist+cwt"

// MinStatusBits is the smallest list published, so the list's length does
// not reveal how many certificates were issued while it is small.
const MinStatusBits = 1 << 14

// maxStatusBytes bounds decompression of a fetched list (128 Mi entries).
const maxStatusBytes = 16 << 20

type statusListClaim struct {
	Bits int    `cbor:"bits"`
	Lst  []byte `cbor:"lst"`
}

// statusListCWT holds the CWT claims: sub (2), exp (4), iat (6), ttl
// (65534) and status_list (65533) of the draft.
type statusListCWT struct {
	Sub  string          `cbor:"2,keyasint,omitempty"`
	Exp  int64           `cbor:"4,keyasint"`
	Iat  int64           `cbor:"6,keyasint"`
	TTL  int64           `cbor:"65534,keyasint,omitempty"`
	List statusListClaim `cbor:"65533,keyasint"`
}

// StatusList is a verified, decompressed status list.
type StatusList struct {
	IssuedAt  time.Time
	ExpiresAt time.Time
	bits      []byte
}

// Revoked reports whether the certificate at index is revoked. An index
// beyond the list belongs to a certificate issued after the list: not
// revoked. A list past its expiry is an error: fetch a fresh one.
func (s *StatusList) Revoked(index int64, now time.Time) (bool, error) {
	if now.After(s.ExpiresAt) {
		return false, fmt.Errorf("%w: status list expired %s", ErrStatusStale, s.ExpiresAt.Format(time.RFC3339))
	}
	if index < 0 {
		return false, fmt.Errorf("%w: negative status index", ErrMalformed)
	}
	if index/8 >= int64(len(s.bits)) {
		return false, nil
	}
	return s.bits[index/8]&(1<<(index%8)) != 0, nil
}

// Len returns the number of entries in the list.
func (s *StatusList) Len() int64 { return int64(len(s.bits)) * 8 }

// buildStatusBits returns the bit array marking revoked.
func buildStatusBits(revoked []int64) []byte {
	n := int64(MinStatusBits)
	for _, i := range revoked {
		if i+1 > n {
			n = i + 1
		}
	}
	bits := make([]byte, (n+7)/8)
	for _, i := range revoked {
		if i >= 0 {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return bits
}

// signStatusList makes a status list token.
func signStatusList(rand io.Reader, key *ecdsa.PrivateKey, kid []byte, sub string, revoked []int64, now time.Time, ttl time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zw.Write(buildStatusBits(revoked))
	zw.Close()
	claims := statusListCWT{
		Sub:  sub,
		Iat:  now.Unix(),
		Exp:  now.Add(ttl).Unix(),
		TTL:  int64(ttl / time.Second),
		List: statusListClaim{Bits: 1, Lst: buf.Bytes()},
	}
	payload, err := encMode.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("certs: encode status list: %w", err)
	}
	return sign1(rand, key, kid, StatusListType, payload)
}

// ParseStatusList verifies a status list token against the issuer key list
// and decompresses it. Offline verifiers cache the result until ExpiresAt.
func ParseStatusList(token []byte, trust *TrustList, now time.Time) (*StatusList, error) {
	msg, err := parseSign1("status list", token)
	if err != nil {
		return nil, err
	}
	if typ, _ := msg.Headers.Protected[cose.HeaderLabelType].(string); typ != StatusListType {
		return nil, fmt.Errorf("%w: status list typ %q", ErrMalformed, typ)
	}
	kid, ok := kidOf(msg)
	if !ok {
		return nil, fmt.Errorf("%w: status list has no kid", ErrMalformed)
	}
	tk, pub := trust.find(kid)
	if tk == nil {
		return nil, fmt.Errorf("%w: status list kid %s", ErrUnknownIssuerKey, KIDString(kid))
	}
	if err := verifySign1("status list", msg, pub); err != nil {
		return nil, err
	}
	var c statusListCWT
	if err := decMode.Unmarshal(msg.Payload, &c); err != nil {
		return nil, fmt.Errorf("%w: status list claims: %v", ErrMalformed, err)
	}
	if c.List.Bits != 1 {
		return nil, fmt.Errorf("%w: status list uses %d bits per entry", ErrMalformed, c.List.Bits)
	}
	exp := time.Unix(c.Exp, 0).UTC()
	if now.After(exp) {
		return nil, fmt.Errorf("%w: status list expired %s", ErrStatusStale, exp.Format(time.RFC3339))
	}
	zr, err := zlib.NewReader(bytes.NewReader(c.List.Lst))
	if err != nil {
		return nil, fmt.Errorf("%w: status list: %v", ErrMalformed, err)
	}
	bits, err := io.ReadAll(io.LimitReader(zr, maxStatusBytes+1))
	if err != nil || len(bits) > maxStatusBytes {
		return nil, fmt.Errorf("%w: status list content", ErrMalformed)
	}
	return &StatusList{IssuedAt: time.Unix(c.Iat, 0).UTC(), ExpiresAt: exp, bits: bits}, nil
}
