package certs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/certs/base45"
)

func TestIssueAndVerifyOffline(t *testing.T) {
	f := newFixture(t)
	issued, h := f.issue("c1")
	payload := f.present(h, nil)
	if !strings.HasPrefix(payload, PayloadPrefix) {
		t.Fatalf("payload %q lacks prefix", payload[:10])
	}
	res, err := Verify(payload, f.trust(), f.clock.Now())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	c := res.Claims
	if c.NetworkNumber != issued.Claims.NetworkNumber || c.NetworkNumber == "" || c.Level != LevelHigh || !bytes.Equal(c.Serial, issued.Claims.Serial) {
		t.Errorf("claims = %+v", c)
	}
	if !bytes.Equal(c.HolderRef, HolderRef(make([]byte, 32), "c1")) {
		t.Errorf("holder ref mismatch")
	}
	if bytes.Contains([]byte(payload), []byte("110101199003071234")) {
		t.Errorf("payload carries the ID number")
	}
	dev, err := c.DeviceKey.PublicKey()
	if err != nil || !dev.Equal(&h.Key.PublicKey) {
		t.Errorf("device key round trip: %v", err)
	}
	if got, want := c.Expires().Sub(c.Issued()), 30*24*time.Hour; got != want {
		t.Errorf("lifetime %v, want %v", got, want)
	}
	t.Logf("presentation %d bytes, QR text %d characters", res.Size, len(payload))
}

// tamper decodes payload, replaces old by new in the presentation bytes and
// re-encodes it (an attacker editing the QR content).
func tamper(t *testing.T, payload string, old, new []byte) string {
	t.Helper()
	raw, err := DecodePayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, old) {
		t.Fatalf("presentation does not contain %q", old)
	}
	return EncodePayload(bytes.Replace(raw, old, new, 1))
}

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	is, h := f.issue("c1")
	nn, changed := changedNumber(is)
	trust := f.trust()
	now := f.clock.Now()
	fresh := f.present(h, nil)

	other := newFixture(t)
	other.rand = newRand(9)
	other.iss.cfg.Rand = other.rand
	_, oh := other.issue("c1")

	// A holder whose certificate binds another device key: the QR is signed
	// by a key the certificate does not name.
	thief := *h
	thief.Key = f.deviceKey()

	narrowed := f.trust()
	narrowed.Keys[0].SignsUntil = now.Add(-time.Hour)
	narrowed.Keys[0].NotBefore = now.Add(-2 * time.Hour)

	cases := []struct {
		name    string
		payload string
		trust   *TrustList
		now     time.Time
		opts    VerifyOptions
		want    *Error
	}{
		{"tampered network number", tamper(t, fresh, nn, changed), trust, now, VerifyOptions{}, ErrTampered},
		{"holder signature by another device", f.present(&thief, nil), trust, now, VerifyOptions{}, ErrTampered},
		{"unknown issuer key", f.present(oh, nil), trust, now, VerifyOptions{}, ErrUnknownIssuerKey},
		{"empty key list", fresh, &TrustList{}, now, VerifyOptions{}, ErrUnknownIssuerKey},
		{"issued outside key window", fresh, narrowed, now, VerifyOptions{}, ErrIssuerKeyNotValid},
		{"expired presentation", fresh, trust, now.Add(DefaultWindow + DefaultSkew + time.Second), VerifyOptions{}, ErrPresentationExpired},
		{"presentation from the future", fresh, trust, now.Add(-time.Minute), VerifyOptions{}, ErrPresentationFuture},
		{"challenge mismatch", fresh, trust, now, VerifyOptions{Challenge: []byte("abc")}, ErrChallengeMismatch},
		{"bad prefix", "HC1:" + fresh[5:], trust, now, VerifyOptions{}, ErrMalformed},
		{"bad base45", fresh + "A", trust, now, VerifyOptions{}, ErrMalformed},
		{"neither zlib nor cose", PayloadPrefix + "BB8", trust, now, VerifyOptions{}, ErrMalformed},
		{"broken zlib", PayloadPrefix + base45.Encode([]byte{0x78, 0xda, 0xff, 0x00}), trust, now, VerifyOptions{}, ErrMalformed},
		{"not cose", EncodePayload([]byte("hello")), trust, now, VerifyOptions{}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.opts.Verify(tc.payload, tc.trust, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if CodeOf(err) != tc.want.Code {
				t.Errorf("code %q, want %q", CodeOf(err), tc.want.Code)
			}
		})
	}
}

func TestCOSEKeyRoundTrip(t *testing.T) {
	f := newFixture(t)
	for i := range 50 {
		k := f.deviceKey()
		ck, err := NewCOSEKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ck.PublicKey()
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if !pub.Equal(&k.PublicKey) {
			t.Fatalf("key %d: decompressed point differs", i)
		}
	}
	notOnCurve := COSEKeyEC{Kty: 2, Crv: 1, X: bytes.Repeat([]byte{0xff}, 32), Y: []byte{0xf4}}
	if _, err := notOnCurve.PublicKey(); !errors.Is(err, ErrMalformed) {
		t.Errorf("x >= p accepted: %v", err)
	}
}
