package oidc_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/trustid/trustid/oidc"
)

// Token endpoint benchmarks over loopback HTTP (httptest.Server): each
// iteration is one full request through fosite, client authentication
// (HMAC secret check), storage and the JSON response.
//
//	go test ./oidc -run '^$' -bench Token -benchtime 2000x

func benchEnvs(b *testing.B) map[string]func(b *testing.B) *env {
	return map[string]func(b *testing.B) *env{
		// The relying party "rp" is registered without an alg: its ID
		// tokens are ES256 (oidc.NewClientIDTokenAlg).
		"sqlite": func(b *testing.B) *env { return newEnv(b, sqliteStore(b), memoryStore(b), nil) },
		"sqlite-rs256": func(b *testing.B) *env {
			e := newEnv(b, sqliteStore(b), memoryStore(b), nil)
			adm := e.clientAdmin()
			c, err := adm.Get(context.Background(), "rp")
			if err != nil {
				b.Fatal(err)
			}
			spec := oidc.SpecOf(c)
			spec.IDTokenAlg = oidc.AlgRS256
			if _, err := adm.Update(context.Background(), "rp", spec); err != nil {
				b.Fatal(err)
			}
			return e
		},
		"postgres+redis": func(b *testing.B) *env {
			return newEnv(b, postgresStore(b), redisStore(b), nil)
		},
	}
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres+redis"} {
		b.Run(name, func(b *testing.B) {
			e := benchEnvs(b)[name](b)
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}.Encode()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", stringsReader(form))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth("machine", e.mSecret)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					var tok struct {
						AccessToken string `json:"access_token"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&tok)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}

func BenchmarkTokenRefresh(b *testing.B) {
	// The refresh response carries a new ID token: ES256 for "rp" as
	// registered, RS256 in sqlite-rs256, where the RSA signature is most of
	// the CPU cost.
	for _, name := range []string{"sqlite", "sqlite-rs256", "postgres+redis"} {
		b.Run(name, func(b *testing.B) {
			e := benchEnvs(b)[name](b)
			ctx := context.Background()
			v := oauth2.GenerateVerifier()
			q := e.login(e.conf.AuthCodeURL("state-bench", oauth2.S256ChallengeOption(v)), nil, true)
			tok, err := e.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				b.Fatal(err)
			}
			rt := tok.RefreshToken
			client := &http.Client{}
			b.ReportAllocs()
			b.ResetTimer()
			// Rotation makes each refresh depend on the previous one: sequential.
			for i := 0; i < b.N; i++ {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
				req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", stringsReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("rp", e.secret)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var out struct {
					RefreshToken string `json:"refresh_token"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || out.RefreshToken == "" {
					b.Fatalf("status %d", resp.StatusCode)
				}
				rt = out.RefreshToken
			}
		})
	}
}

func BenchmarkJWKS(b *testing.B) {
	e := newEnv(b, sqliteStore(b), memoryStore(b), nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(e.issuer + "/oauth2/jwks")
			if err != nil {
				b.Fatal(err)
			}
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
		}
	})
}

func stringsReader(s string) *stringsReaderT { return &stringsReaderT{s: s} }

type stringsReaderT struct {
	s string
	i int
}

func (r *stringsReaderT) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}
