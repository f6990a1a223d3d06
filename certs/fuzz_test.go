package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds arbitrary QR text to the offline verifier: it must never
// panic, and every refusal must carry one of the package's codes.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	is, h := fx.issue("c1")
	nn := is.Claims.NetworkNumber
	trust := fx.trust()
	now := fx.clock.Now()
	valid := fx.present(h, nil)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(PayloadPrefix)
	f.Add("TID1:%%%")
	f.Add(EncodePayload([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}))
	f.Add(PayloadPrefix + "X5")
	f.Fuzz(func(t *testing.T, payload string) {
		res, err := VerifyOptions{}.Verify(payload, trust, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("refusal without a code: %v", err)
			}
			if res != nil {
				t.Fatal("result returned with an error")
			}
			return
		}
		if res.Claims.NetworkNumber != nn {
			t.Fatalf("accepted a payload with other claims: %+v", res.Claims)
		}
	})
}

// FuzzPresentationBytes mutates the decoded presentation (the CBOR/COSE
// parser's input) rather than the text.
func FuzzPresentationBytes(f *testing.F) {
	fx := newFixture(f)
	_, h := fx.issue("c1")
	trust := fx.trust()
	now := fx.clock.Now()
	raw, err := h.PresentBytes([]byte("challenge"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := VerifyOptions{}.VerifyBytes(b, trust, now.Add(time.Duration(len(b))*time.Millisecond))
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("refusal without a code: %v", err)
		}
	})
}

// FuzzParseStatusList checks the status list parser on untrusted bytes.
func FuzzParseStatusList(f *testing.F) {
	fx := newFixture(f)
	fx.issue("c1")
	trust := fx.trust()
	tok, err := fx.iss.StatusList(t0Context())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(tok[:len(tok)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		sl, err := ParseStatusList(b, trust, fx.clock.Now())
		if err == nil {
			if _, err := sl.Revoked(0, fx.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzVerifyHandler posts arbitrary bodies to POST /verify: the answer is
// always a JSON refusal with a 4xx status or a success, never a 500.
func FuzzVerifyHandler(f *testing.F) {
	o := newOnlineFixture(f)
	_, h := o.issue("c1")
	valid, _ := json.Marshal(VerifyRequest{Payload: o.present(h, nil), Purpose: "check_in"})
	f.Add(valid)
	f.Add([]byte(`{"payload":"TID1:%%%","purpose":"check_in"}`))
	f.Add([]byte(`{"payload":1}`))
	f.Add([]byte(`{"payload":"","purpose":"","challenge":"***"}`))
	f.Add([]byte(`{`))
	handler := o.svc.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/verify", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer hotel-a")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.Bytes())
		}
	})
}

// FuzzParseDeviceKey feeds arbitrary JSON to the device key parser (the
// untrusted device_key of POST /issue): no panic; an accepted key is a P-256
// public key on the curve, and every refusal is invalid_device_key.
func FuzzParseDeviceKey(f *testing.F) {
	fx := newFixture(f)
	dev := fx.deviceKey()
	good, _ := json.Marshal(jose.JSONWebKey{Key: &dev.PublicKey})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: dev})
	for _, s := range []string{string(good), string(priv), `{}`, `null`, `"x"`, `{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}`,
		`{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}`, `{"kty":"RSA","n":"AQAB","e":"AQAB"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pub, err := ParseDeviceKey(raw)
		if err != nil {
			if CodeOf(err) != ErrInvalidDeviceKey.Code {
				t.Fatalf("refusal %v, want %s", err, ErrInvalidDeviceKey.Code)
			}
			return
		}
		b, err := pub.Bytes()
		if err != nil || pub.Curve != elliptic.P256() {
			t.Fatalf("accepted %s", raw)
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil { // checks the point is on the curve
			t.Fatalf("accepted a key off the curve: %s", raw)
		}
		if _, err := NewCOSEKey(pub); err != nil {
			t.Fatalf("accepted key cannot be certified: %v", err)
		}
	})
}
