package oidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// TestSignCompactAsGoJOSE: signCompact's tokens verify with go-jose under
// the key's public half, and carry the same header and claims as fosite's
// SignedString (go-jose) makes of the same input.
func TestSignCompactAsGoJOSE(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	claims := map[string]any{"sub": "s <&> 名", "aud": []string{"a", "b"}, "exp": int64(1795473361), "amr": []string{"face"},
		"verified_claims": map[string]any{"claims": map[string]any{"name": "张三"}}}
	for _, tc := range []struct {
		alg  string
		priv crypto.Signer
		typ  string
	}{{AlgES256, ec, ""}, {AlgRS256, rk, ""}, {AlgES256, ec, "logout+jwt"}} {
		t.Run(tc.alg+tc.typ, func(t *testing.T) {
			h := map[string]any{"typ": "JWT", "kid": "k1", "alg": tc.alg}
			ft := jwt.NewWithClaims(jose.SignatureAlgorithm(tc.alg), jwt.MapClaims(claims))
			ft.Header["kid"] = "k1"
			if tc.typ != "" {
				h["typ"], ft.Header["typ"] = tc.typ, tc.typ
			}
			ours, err := signCompact(tc.alg, tc.priv, h, claims)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := ft.SignedString(tc.priv)
			if err != nil {
				t.Fatal(err)
			}
			oh, op := verifyJOSE(t, ours, tc.priv.Public())
			th, tp := verifyJOSE(t, theirs, tc.priv.Public())
			if !reflect.DeepEqual(oh, th) || !reflect.DeepEqual(op, tp) {
				t.Fatalf("differ from go-jose:\n ours %v %v\n jose %v %v", oh, op, th, tp)
			}
			if oh["typ"] != h["typ"] || oh["kid"] != "k1" || oh["alg"] != tc.alg {
				t.Fatalf("header %v", oh)
			}
			// A changed payload does not verify.
			parts := strings.Split(ours, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory"}`))
			if jws, err := jose.ParseSigned(strings.Join(parts, ".")); err == nil {
				if _, err := jws.Verify(tc.priv.Public()); err == nil {
					t.Fatal("a changed payload verified")
				}
			}
		})
	}
	if _, err := signCompact(AlgRS256, ec, map[string]any{}, claims); err == nil {
		t.Fatal("RS256 with an EC key")
	}
	if _, err := signCompact(AlgES256, rk, map[string]any{}, claims); err == nil {
		t.Fatal("ES256 with an RSA key")
	}
}

// verifyJOSE verifies raw with go-jose and returns its decoded protected
// header and payload.
func verifyJOSE(t *testing.T, raw string, pub crypto.PublicKey) (header, payload map[string]any) {
	t.Helper()
	jws, err := jose.ParseSigned(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jws.Verify(pub)
	if err != nil {
		t.Fatalf("go-jose does not verify %s: %v", raw, err)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err := json.Unmarshal(hb, &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(p, &payload); err != nil {
		t.Fatal(err)
	}
	return header, payload
}
