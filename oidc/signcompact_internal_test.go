package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
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

// TestSignerCachedHeader: a token signed without a caller's header (every
// ID token: the key's header, encoded once per key) has the header and
// claims of the uncached path (signCompact over the header map), for both
// algs and for fosite's empty jwt.Headers as for nil; a caller's header
// field (typ logout+jwt) still goes through the map.
func TestSignerCachedHeader(t *testing.T) {
	r := &keyRing{st: sqlitetest.Open(t).Keys(), now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		algs: SigningAlgs, rotation: time.Hour, prepublish: time.Minute, retention: time.Hour, refresh: time.Second}
	if err := r.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "s", "aud": []string{"rp"}, "exp": time.Now().Add(time.Hour).Unix()}
	for _, alg := range SigningAlgs {
		k, err := r.signingKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := signCompact(alg, k.priv, map[string]any{"typ": "JWT", "kid": k.meta.ID, "alg": alg}, claims)
		if err != nil {
			t.Fatal(err)
		}
		wantHeader, wantClaims, _ := strings.Cut(want, ".")
		wantClaims, _, _ = strings.Cut(wantClaims, ".")
		s := &signer{ring: r, alg: alg}
		for name, h := range map[string]jwt.Mapper{"nil": nil, "empty": &jwt.Headers{}, "empty extra": &jwt.Headers{Extra: map[string]any{}}} {
			tok, _, err := s.Generate(context.Background(), claims, h)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			if parts[0] != wantHeader || parts[1] != wantClaims {
				t.Errorf("%s, %s header: %s.%s, want %s.%s", alg, name, parts[0], parts[1], wantHeader, wantClaims)
			}
			if _, err := s.Decode(context.Background(), tok); err != nil {
				t.Errorf("%s, %s header: %v", alg, name, err)
			}
		}
		tok, _, err := s.Generate(context.Background(), claims, &jwt.Headers{Extra: map[string]any{"typ": "logout+jwt"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Decode(context.Background(), tok)
		if err != nil || d.Header["typ"] != "logout+jwt" || d.Header["kid"] != k.meta.ID || d.Header["alg"] != alg {
			t.Errorf("%s, logout header: %v %v", alg, err, d.Header)
		}
	}
}

// BenchmarkSignerGenerate is the CPU of signing one ID token (claims as a
// refresh's), per alg: what choosing ES256 over RS256 saves per refresh.
//
//	go test ./oidc -run '^$' -bench SignerGenerate
func BenchmarkSignerGenerate(b *testing.B) {
	r := &keyRing{st: sqlitetest.Open(b).Keys(), now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		algs: SigningAlgs, rotation: time.Hour, prepublish: time.Minute, retention: time.Hour, refresh: time.Second}
	if err := r.load(context.Background()); err != nil {
		b.Fatal(err)
	}
	claims := jwt.MapClaims{"iss": "https://id.example", "sub": "pairwise-0123456789abcdef0123456789abcdef", "aud": []string{"rp-0123456789"},
		"exp": int64(1795473361), "iat": int64(1795469761), "auth_time": int64(1795469000), "rat": int64(1795469761),
		"acr": "urn:trustid:acr:face+liveness", "amr": []string{"face", "liveness"}, "sid": "0123456789abcdef", "at_hash": "abcdefghijklmnopqrstuv",
		"jti": "01234567-89ab-cdef-0123-456789abcdef"}
	// header-map: the same header given by the caller, so it is encoded
	// per token (the path before the key's header was cached).
	for _, alg := range SigningAlgs {
		for name, h := range map[string]*jwt.Headers{"": {}, "/header-map": {Extra: map[string]any{"typ": "JWT"}}} {
			b.Run(alg+name, func(b *testing.B) {
				s := &signer{ring: r, alg: alg}
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := s.Generate(context.Background(), claims, h); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestES256Deterministic: ES256 signatures are RFC 6979's (the same
// claims give the same token, other claims another), and each verifies.
func TestES256Deterministic(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(jti string) string {
		tok, err := signCompact(AlgES256, ec, map[string]any{"typ": "JWT", "kid": "k1", "alg": AlgES256}, map[string]any{"sub": "s", "jti": jti})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature %q: %v", parts[2], err)
		}
		d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if !ecdsa.Verify(&ec.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("%s: signature does not verify", tok)
		}
		return tok
	}
	a, b, c := sign("1"), sign("1"), sign("2")
	if a != b {
		t.Errorf("same claims, two tokens:\n%s\n%s", a, b)
	}
	if strings.Split(a, ".")[2] == strings.Split(c, ".")[2] {
		t.Errorf("other claims, same signature")
	}
}

// TestECDSARaw checks the DER to r||s conversion against encoding/asn1 on
// real signatures (r and s of every length, leading zero bytes included)
// and refuses malformed input.
func TestECDSARaw(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 2000 {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		der, err := ecdsa.SignASN1(rand.Reader, ec, d[:])
		if err != nil {
			t.Fatal(err)
		}
		var want struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &want); err != nil {
			t.Fatal(err)
		}
		got, err := ecdsaRaw(der, 32)
		if err != nil {
			t.Fatalf("%x: %v", der, err)
		}
		if new(big.Int).SetBytes(got[:32]).Cmp(want.R) != 0 || new(big.Int).SetBytes(got[32:]).Cmp(want.S) != 0 {
			t.Fatalf("%x: got %x", der, got)
		}
	}
	for _, tc := range []struct {
		name string
		der  string
	}{
		{name: "empty", der: ""},
		{name: "not a sequence", der: "3106020101020101"},
		{name: "length mismatch", der: "3007020101020101"},
		{name: "trailing data", der: "300602010102010100"},
		{name: "one integer", der: "3003020101"},
		{name: "negative", der: "3006020181020101"},
		{name: "zero length integer", der: "30050200020101"},
		{name: "integer too long", der: "3027022201" + strings.Repeat("01", 33) + "020101"},
		{name: "not an integer", der: "3006040101020101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, _ := hex.DecodeString(tc.der)
			if got, err := ecdsaRaw(der, 32); err == nil {
				t.Errorf("%s: %x, want an error", tc.der, got)
			}
		})
	}
}
