package base45

import (
	"bytes"
	"errors"
	"testing"
)

// rfcVectors are the examples of RFC 9285 sections 4.3 and 4.4.
var rfcVectors = []struct {
	name    string
	decoded string
	encoded string
}{
	{"AB", "AB", "BB8"},
	{"Hello!!", "Hello!!", "%69 VD92EX0"},
	{"base-45", "base-45", "UJCLQE7W581"},
	{"ietf!", "ietf!", "QED8WEX0"},
	{"empty", "", ""},
	{"zero byte", "\x00", "00"},
	{"max pair", "\xff\xff", "FGW"},
	{"max single", "\xff", "U5"},
}

func TestRFCVectors(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(v.name, func(t *testing.T) {
			if got := Encode([]byte(v.decoded)); got != v.encoded {
				t.Errorf("Encode(%q) = %q, want %q", v.decoded, got, v.encoded)
			}
			got, err := Decode(v.encoded)
			if err != nil {
				t.Fatalf("Decode(%q): %v", v.encoded, err)
			}
			if string(got) != v.decoded {
				t.Errorf("Decode(%q) = %q, want %q", v.encoded, got, v.decoded)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"RFC 9285 4.4 GGW above 65535", "GGW"},
		{"lowercase not in alphabet", "bb8"},
		{"single trailing character", "BB8A"},
		{"single character", "A"},
		{"final pair above 255", "::"},
		{"non-ascii", "BB\xc3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.in); !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode(%q) error = %v, want ErrInvalid", tc.in, err)
			}
		})
	}
}

func TestEncodedLen(t *testing.T) {
	for n := 0; n < 10; n++ {
		if got := len(Encode(make([]byte, n))); got != EncodedLen(n) {
			t.Errorf("len(Encode(%d bytes)) = %d, EncodedLen = %d", n, got, EncodedLen(n))
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range rfcVectors {
		f.Add(v.encoded)
	}
	f.Add("GGW")
	f.Add("BB8A")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// Valid Base45 has a unique encoding: re-encoding gives the input back.
		if got := Encode(b); got != s {
			t.Fatalf("Encode(Decode(%q)) = %q", s, got)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	for _, v := range rfcVectors {
		f.Add([]byte(v.decoded))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(Encode(b))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x gave %x", b, got)
		}
	})
}
