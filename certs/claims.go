package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Assurance levels carried in claim 4.
const (
	LevelLow         = 1
	LevelSubstantial = 2
	LevelHigh        = 3
)

// LevelName returns the eIDAS-style name of an assurance level.
func LevelName(l int) string {
	switch l {
	case LevelLow:
		return "low"
	case LevelSubstantial:
		return "substantial"
	case LevelHigh:
		return "high"
	}
	return fmt.Sprintf("level-%d", l)
}

// Claims are the signed contents of a net certificate (see the package doc
// for the claim map).
type Claims struct {
	HolderRef []byte `cbor:"1,keyasint"`
	// NetworkNumber is the holder's 网号: the certificate carries it
	// instead of any plaintext identity (MPS Order No. 173).
	NetworkNumber string    `cbor:"2,keyasint"`
	TemplateRef   []byte    `cbor:"3,keyasint"`
	Level         int       `cbor:"4,keyasint"`
	IssuedAt      int64     `cbor:"5,keyasint"`
	ExpiresAt     int64     `cbor:"6,keyasint"`
	Serial        []byte    `cbor:"7,keyasint"`
	StatusIndex   int64     `cbor:"8,keyasint"`
	DeviceKey     COSEKeyEC `cbor:"9,keyasint"`
}

// Issued returns the issue time.
func (c *Claims) Issued() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }

// Expires returns the expiry time.
func (c *Claims) Expires() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// COSEKeyEC is a COSE_Key (RFC 9052 section 7, RFC 9053 section 7.1.1) of
// type EC2 on P-256. Y is a CBOR bool (the sign bit of the compressed point)
// when written by this package, which saves 31 bytes in the QR; a 32-byte
// byte string is accepted too.
type COSEKeyEC struct {
	Kty int             `cbor:"1,keyasint"`
	Crv int             `cbor:"-1,keyasint"`
	X   []byte          `cbor:"-2,keyasint"`
	Y   cbor.RawMessage `cbor:"-3,keyasint"`
}

const (
	coseKtyEC2  = 2
	coseCrvP256 = 1
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	// Core deterministic encoding (RFC 8949 section 4.2.1): shortest forms and
	// sorted map keys, so the same claims always give the same bytes.
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	// Untrusted input: reject duplicate keys and unknown fields, bound sizes.
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   8,
		MaxArrayElements:  64,
		MaxMapPairs:       64,
		IndefLength:       cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// NewCOSEKey returns the COSE_Key of a P-256 public key.
func NewCOSEKey(pub *ecdsa.PublicKey) (COSEKeyEC, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return COSEKeyEC{}, fmt.Errorf("certs: device key must be ECDSA P-256")
	}
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return COSEKeyEC{}, fmt.Errorf("certs: device key: %w", err)
	}
	sign := raw[64]&1 == 1
	y, _ := encMode.Marshal(sign)
	return COSEKeyEC{Kty: coseKtyEC2, Crv: coseCrvP256, X: raw[1:33], Y: y}, nil
}

// PublicKey returns the ECDSA public key, checking that it is on the curve.
func (k COSEKeyEC) PublicKey() (*ecdsa.PublicKey, error) {
	if k.Kty != coseKtyEC2 || k.Crv != coseCrvP256 || len(k.X) != 32 {
		return nil, fmt.Errorf("%w: device key is not an EC2 P-256 COSE_Key", ErrMalformed)
	}
	var y []byte
	var sign bool
	if err := decMode.Unmarshal(k.Y, &sign); err == nil {
		yy, err := decompressP256(k.X, sign)
		if err != nil {
			return nil, err
		}
		y = yy
	} else if err := decMode.Unmarshal(k.Y, &y); err != nil || len(y) != 32 {
		return nil, fmt.Errorf("%w: device key y coordinate", ErrMalformed)
	}
	raw := make([]byte, 0, 65)
	raw = append(raw, 4)
	raw = append(raw, k.X...)
	raw = append(raw, y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: device key: %v", ErrMalformed, err)
	}
	return pub, nil
}

// decompressP256 returns the y coordinate whose parity is sign for the
// P-256 x coordinate xb (SEC 1 section 2.3.4). The standard library's only
// decompression is the deprecated elliptic.UnmarshalCompressed; it is used
// anyway because it runs on the fast constant-time field arithmetic (about
// 40 us here, against 190 us for the same square root with math/big).
func decompressP256(xb []byte, sign bool) ([]byte, error) {
	c := make([]byte, 33)
	c[0] = 2
	if sign {
		c[0] = 3
	}
	copy(c[1:], xb)
	_, y := elliptic.UnmarshalCompressed(elliptic.P256(), c)
	if y == nil {
		return nil, fmt.Errorf("%w: device key is not on the curve", ErrMalformed)
	}
	return y.FillBytes(make([]byte, 32)), nil
}
