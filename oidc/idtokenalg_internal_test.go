package oidc

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

// TestClientSpecIDTokenAlg: id_token_signed_response_alg accepts the
// provider's algs and empty (the default), nothing else.
func TestClientSpecIDTokenAlg(t *testing.T) {
	tests := []struct {
		name, alg string
		ok        bool
	}{
		{"default", "", true},
		{"RS256", "RS256", true},
		{"ES256", "ES256", true},
		{"lower case", "es256", false},
		{"HMAC", "HS256", false},
		{"unsigned", "none", false},
		{"unpublished", "ES384", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ClientSpec{RedirectURIs: []string{"https://a.example/cb"}, IDTokenAlg: tt.alg}
			err := s.normalise()
			if (err == nil) != tt.ok {
				t.Fatalf("normalise = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSignerContextAlg: the alg on the context overrides the signer's default.
func TestSignerContextAlg(t *testing.T) {
	ctx := context.Background()
	r := &keyRing{st: sqlitetest.Open(t).Keys(), now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		algs: SigningAlgs, rotation: time.Hour, prepublish: time.Minute, retention: time.Hour, refresh: time.Second}
	if err := r.load(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, def, ctxAlg, want string
	}{
		{"default RS256", AlgRS256, "", AlgRS256},
		{"default ES256", AlgES256, "", AlgES256},
		{"client ES256", AlgRS256, AlgES256, AlgES256},
		{"client RS256", AlgES256, AlgRS256, AlgRS256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &signer{ring: r, alg: tt.def}
			tok, _, err := s.Generate(withSigningAlg(ctx, tt.ctxAlg), jwt.MapClaims{"sub": "x"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Decode(ctx, tok)
			if err != nil || d.Header["alg"] != tt.want {
				t.Fatalf("decode: %v, alg %v, want %s", err, d.Header["alg"], tt.want)
			}
		})
	}
}

func TestIDTokenAlgsDefaultFirst(t *testing.T) {
	for _, def := range SigningAlgs {
		got := idTokenAlgs(def)
		if len(got) != len(SigningAlgs) || got[0] != def {
			t.Errorf("idTokenAlgs(%s) = %v", def, got)
		}
	}
}
