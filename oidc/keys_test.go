package oidc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func kids(t *testing.T, r *keyRing) map[string]bool {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("private key published")
		}
		out[k.Kid] = true
	}
	return out
}

// TestKeyRotation walks a key through its life: published before it signs,
// signing, retired but still published, deleted.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := sqlitetest.Open(t)
	newRing := func() *keyRing {
		return &keyRing{st: st.Keys(), now: c.now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			algs: []string{AlgRS256, AlgES256}, rotation: 10 * 24 * time.Hour, prepublish: 24 * time.Hour,
			retention: 48 * time.Hour, refresh: time.Minute}
	}
	r := newRing()
	if err := r.load(ctx); err != nil {
		t.Fatal(err)
	}
	first, err := r.signingKey(AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids(t, r)) != 2 {
		t.Fatalf("want one RS256 and one ES256 key, got %v", kids(t, r))
	}
	// A second node loading the same store agrees and creates nothing.
	r2 := newRing()
	if err := r2.load(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := r2.signingKey(AlgRS256); k.meta.ID != first.meta.ID {
		t.Fatalf("nodes disagree: %s vs %s", k.meta.ID, first.meta.ID)
	}

	steps := []struct {
		name        string
		at          time.Duration // since start
		wantSigner  string        // "first" or "next"
		wantFirst   bool          // first key still published
		wantKeysMin int
	}{
		{"before the successor is due", 5 * 24 * time.Hour, "first", true, 2},
		{"successor published, not signing", 9 * 24 * time.Hour, "first", true, 4},
		{"successor signs after retirement", 10*24*time.Hour + time.Second, "next", true, 4},
		{"retired key still published", 11 * 24 * time.Hour, "next", true, 4},
		{"retired key deleted after retention", 12*24*time.Hour + time.Second, "next", false, 2},
	}
	var next string
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(s.at)
			if err := r.load(ctx); err != nil {
				t.Fatal(err)
			}
			k, err := r.signingKey(AlgRS256)
			if err != nil {
				t.Fatal(err)
			}
			ks := kids(t, r)
			if len(ks) < s.wantKeysMin {
				t.Fatalf("published %v", ks)
			}
			if ks[first.meta.ID] != s.wantFirst {
				t.Fatalf("first key published = %v, want %v", ks[first.meta.ID], s.wantFirst)
			}
			switch s.wantSigner {
			case "first":
				if k.meta.ID != first.meta.ID {
					t.Fatalf("signer %s, want %s", k.meta.ID, first.meta.ID)
				}
			case "next":
				if k.meta.ID == first.meta.ID || !ks[k.meta.ID] {
					t.Fatalf("signer %s should be the published successor", k.meta.ID)
				}
				if next != "" && next != k.meta.ID {
					t.Fatalf("signer changed from %s to %s", next, k.meta.ID)
				}
				next = k.meta.ID
			}
		})
	}
}

// TestSignerRoundTrip signs with each alg and verifies by kid.
func TestSignerRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := &keyRing{st: sqlitetest.Open(t).Keys(), now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		algs: []string{AlgRS256, AlgES256}, rotation: time.Hour, prepublish: time.Minute, retention: time.Hour, refresh: time.Second}
	if err := r.load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			s := &signer{ring: r, alg: alg}
			tok, sig, err := s.Generate(ctx, jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()}, &jwt.Headers{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Validate(ctx, tok)
			if err != nil || got != sig {
				t.Fatalf("validate: %v %q", err, got)
			}
			d, err := s.Decode(ctx, tok)
			if err != nil || d.Claims["sub"] != "x" || d.Header["alg"] != alg {
				t.Fatalf("decode: %v %v", err, d)
			}
			if _, err := s.Decode(ctx, tok[:len(tok)-4]+"AAAA"); err == nil {
				t.Fatal("tampered token accepted")
			}
		})
	}
}

// FuzzSignerDecode: id_token_hint is attacker-controlled input.
func FuzzSignerDecode(f *testing.F) {
	r := &keyRing{st: sqlitetest.Open(f).Keys(), now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		algs: []string{AlgES256}, rotation: time.Hour, prepublish: time.Minute, retention: time.Hour, refresh: time.Second}
	if err := r.load(context.Background()); err != nil {
		f.Fatal(err)
	}
	s := &signer{ring: r, alg: AlgES256}
	tok, _, _ := s.Generate(context.Background(), jwt.MapClaims{"sub": "x"}, &jwt.Headers{})
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add(`eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.`)
	f.Fuzz(func(t *testing.T, in string) {
		d, err := s.Decode(context.Background(), in)
		if err == nil && in != tok {
			// Only tokens we signed verify; anything else is a forgery.
			if d.Claims["sub"] != "x" {
				t.Fatalf("unexpected token verified: %q", in)
			}
		}
	})
}

func TestMaskIDNumber(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"18-digit resident id", "110101199003074512", "110***********4512"},
		{"with X checksum", "11010119900307451X", "110***********451X"},
		{"short", "12345", "*****"},
		{"empty", "", ""},
		{"multibyte", "甲乙丙丁戊己庚辛壬癸", "甲乙丙***庚辛壬癸"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskIDNumber(tt.in); got != tt.want {
				t.Fatalf("MaskIDNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecretHasher(t *testing.T) {
	ctx := context.Background()
	if _, err := NewSecretHasher(make([]byte, 16)); err == nil {
		t.Fatal("short key accepted")
	}
	h, _ := NewSecretHasher([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := NewSecretHasher([]byte("fedcba9876543210fedcba9876543210"))
	secret, err := NewClientSecret()
	if err != nil || len(secret) != 43 {
		t.Fatalf("secret %q %v", secret, err)
	}
	hash, _ := h.Hash(ctx, []byte(secret))
	tests := []struct {
		name string
		h    *SecretHasher
		hash []byte
		in   string
		ok   bool
	}{
		{"right secret", h, hash, secret, true},
		{"wrong secret", h, hash, secret + "x", false},
		{"other server key", other, hash, secret, false},
		{"empty hash", h, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.h.Compare(ctx, tt.hash, []byte(tt.in)); (err == nil) != tt.ok {
				t.Fatalf("Compare = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestClientSpecValidation(t *testing.T) {
	tests := []struct {
		name string
		spec ClientSpec
		ok   bool
	}{
		{"web app", ClientSpec{RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"openid", "profile"}}, true},
		{"loopback http", ClientSpec{RedirectURIs: []string{"http://127.0.0.1:8080/cb"}}, true},
		{"machine", ClientSpec{GrantTypes: []string{"client_credentials"}}, true},
		{"plain http", ClientSpec{RedirectURIs: []string{"http://a.example/cb"}}, false},
		{"fragment", ClientSpec{RedirectURIs: []string{"https://a.example/cb#x"}}, false},
		{"relative", ClientSpec{RedirectURIs: []string{"/cb"}}, false},
		{"no redirect", ClientSpec{Scopes: []string{"openid"}}, false},
		{"unknown scope", ClientSpec{RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"x"}}, false},
		{"unknown grant", ClientSpec{GrantTypes: []string{"password"}}, false},
		{"public machine", ClientSpec{Public: true, GrantTypes: []string{"client_credentials"}}, false},
		{"unknown claim", ClientSpec{RedirectURIs: []string{"https://a.example/cb"}, Claims: []string{"photo"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.normalise()
			if (err == nil) != tt.ok {
				t.Fatalf("normalise = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPairwiseSubject(t *testing.T) {
	p := &claimSource{subKey: []byte("k")}
	a := p.subject(&fakeClient("a", "https://a.example/cb", "", false).Client, "c1")
	a2 := p.subject(&fakeClient("a2", "https://a.example/other", "", false).Client, "c1")
	b := p.subject(&fakeClient("b", "https://b.example/cb", "", false).Client, "c1")
	s1 := p.subject(&fakeClient("s1", "https://s1.example/cb", "sector-x", false).Client, "c1")
	s2 := p.subject(&fakeClient("s2", "https://s2.example/cb", "sector-x", false).Client, "c1")
	fp := p.subject(&fakeClient("fp", "https://gov.example/cb", "", true).Client, "c1")
	switch {
	case a != a2:
		t.Error("same host, different sub")
	case a == b:
		t.Error("two sectors share a sub")
	case s1 != s2:
		t.Error("same sector identifier, different sub")
	case fp != "c1":
		t.Error("first-party client should get the public sub")
	case a == "c1":
		t.Error("pairwise sub reveals the citizen id")
	}
}

type fakeClientT struct{ Client store.Client }

func fakeClient(id, redirect, sector string, firstParty bool) *fakeClientT {
	return &fakeClientT{Client: store.Client{ID: id, RedirectURIs: []string{redirect}, SectorIdentifier: sector, FirstParty: firstParty}}
}
