// Package base45 implements the Base45 data encoding of RFC 9285, which maps
// bytes onto the 45-character alphabet of QR code alphanumeric mode so a
// binary payload fills a QR code about as densely as byte mode would.
//
// It is written by hand (about 80 lines) because no Base45 module is among the
// project's chosen dependencies; it is tested against the RFC's examples and
// fuzzed for round trips and decoder robustness.
package base45

import (
	"errors"
	"fmt"
)

// Alphabet is the RFC 9285 section 4.2 table, value -> character.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// ErrInvalid reports input that is not valid Base45 (a character outside the
// alphabet, a dangling single character, or a group above 65535).
var ErrInvalid = errors.New("base45: invalid input")

var decodeTable = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(Alphabet); i++ {
		t[Alphabet[i]] = int8(i)
	}
	return t
}()

// EncodedLen returns the length of the encoding of n bytes.
func EncodedLen(n int) int { return n/2*3 + n%2*2 }

// Encode returns the Base45 encoding of src (RFC 9285 section 4): each pair
// of bytes a,b is the number a*256+b written as three base-45 digits, least
// significant first; a trailing single byte becomes two digits.
func Encode(src []byte) string {
	dst := make([]byte, 0, EncodedLen(len(src)))
	for i := 0; i+1 < len(src); i += 2 {
		n := int(src[i])<<8 | int(src[i+1])
		dst = append(dst, Alphabet[n%45], Alphabet[n/45%45], Alphabet[n/2025])
	}
	if len(src)%2 == 1 {
		n := int(src[len(src)-1])
		dst = append(dst, Alphabet[n%45], Alphabet[n/45])
	}
	return string(dst)
}

// Decode returns the bytes encoded by s, or an error wrapping ErrInvalid.
func Decode(s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, fmt.Errorf("%w: length %d leaves a single character", ErrInvalid, len(s))
	}
	dst := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		end := min(i+3, len(s))
		n := 0
		for j := end - 1; j >= i; j-- {
			v := decodeTable[s[j]]
			if v < 0 {
				return nil, fmt.Errorf("%w: character at offset %d", ErrInvalid, j)
			}
			n = n*45 + int(v)
		}
		if end-i == 3 {
			if n > 0xFFFF {
				return nil, fmt.Errorf("%w: group at offset %d exceeds 65535", ErrInvalid, i)
			}
			dst = append(dst, byte(n>>8), byte(n))
		} else {
			if n > 0xFF {
				return nil, fmt.Errorf("%w: final pair at offset %d exceeds 255", ErrInvalid, i)
			}
			dst = append(dst, byte(n))
		}
	}
	return dst, nil
}
