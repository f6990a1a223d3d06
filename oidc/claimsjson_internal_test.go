package oidc

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// refreshIDTokenClaims is what fosite's IDTokenClaims.ToMap gives signEncoded for
// a refresh: the shape appendClaimsJSON is written for.
func refreshIDTokenClaims() map[string]any {
	return map[string]any{
		"sub": "b2f0c8a4e1d94f3c8a7e6d5c4b3a2918", "iss": "https://id.example", "jti": "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f",
		"aud": []string{"rp"}, "iat": int64(1765100000), "exp": int64(1765103600), "rat": int64(1765099000),
		"auth_time": int64(1765099000), "acr": ACRFaceLiveness, "amr": []string{AMRFace, AMRLiveness},
		"at_hash": "x4Qz1kRz0QfXq7pQm6Lq3w", "sid": "c1d2e3f4",
	}
}

func TestAppendClaimsJSON(t *testing.T) {
	type marshaler struct {
		A string `json:"a"`
	}
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{name: "id token", claims: refreshIDTokenClaims()},
		{name: "nil", claims: nil},
		{name: "empty", claims: map[string]any{}},
		{name: "empty and nil lists", claims: map[string]any{"aud": []string{}, "amr": []string(nil), "x": []any{}, "y": []any(nil)}},
		{name: "html and quotes", claims: map[string]any{"a<b>": "x&y", "q": `say "hi" \ there`, "<": []string{"&", ">"}}},
		{name: "control and unicode", claims: map[string]any{"nl": "a\nb\tc\x01", "zh": "张三", "ls": "a\u2028b\u2029c", "bad": "\xff\xfe", "del": "\x7f"}},
		{name: "numbers", claims: map[string]any{"i": 42, "neg": int64(-7), "f": 1.5, "big": 1e21, "small": 1e-7, "nan-free": math.MaxInt64, "u": uint8(3), "i32": int32(-9)}},
		{name: "bools and nulls", claims: map[string]any{"t": true, "f": false, "n": nil, "np": (*string)(nil)}},
		{name: "nested", claims: map[string]any{"verified_claims": map[string]any{
			"verification": map[string]any{"trust_framework": "cn_mps", "evidence": []any{map[string]any{"type": "electronic_record", "check_details": []map[string]any{{"check_method": "bvr"}}}}},
			"claims":       map[string]any{"name": "张三", "birthdate": "1990-01-01"},
		}, "nilmap": map[string]any(nil)}},
		{name: "other types", claims: map[string]any{"t": time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), "s": marshaler{A: "<>"}, "m": map[string]string{"b": "1", "a": "2"}, "raw": json.RawMessage(`{"z":1}`), "num": json.Number("12.50")}},
		{name: "key order", claims: map[string]any{"b": 1, "a": 2, "B": 3, "aa": 4, "_": 5, "é": 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := json.Marshal(tc.claims)
			got, err := appendClaimsJSON([]byte("prefix"), tc.claims)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, encoding/json's %v", err, wantErr)
			}
			if string(got) != "prefix"+string(want) {
				t.Errorf("got  %s\nwant prefix%s", got, want)
			}
		})
	}
}

func TestAppendClaimsJSONError(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), make(chan int), func() {}} {
		if _, err := appendClaimsJSON(nil, map[string]any{"x": v}); err == nil {
			t.Errorf("%T %v: no error, encoding/json fails", v, v)
		}
	}
}

func FuzzAppendClaimsJSON(f *testing.F) {
	f.Add("sub", "citizen", "amr", "face", int64(1765100000), true)
	f.Add("a<b", "x&y\n", "\u2028", "\xff", int64(-1), false)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, n int64, flag bool) {
		m := map[string]any{k1: v1, k2: []string{v1, v2}, "n": n, "b": flag, "o": map[string]any{k2: v2, k1: []any{n, v1, nil}}}
		want, err := json.Marshal(m)
		if err != nil {
			t.Skip()
		}
		got, err := appendClaimsJSON(nil, m)
		if err != nil || string(got) != string(want) {
			t.Fatalf("got %s, %v\nwant %s", got, err, want)
		}
	})
}

func BenchmarkClaimsJSON(b *testing.B) {
	m := refreshIDTokenClaims()
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendClaimsJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendClaimsJSON(nil, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestWriteAccessResponseAsFosite: the token endpoint's success writer
// answers what fosite's WriteAccessResponse answers, headers and bytes.
func TestWriteAccessResponseAsFosite(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]any
	}{
		{name: "refresh with id token", extra: map[string]any{"expires_in": int64(3599), "scope": "openid offline_access",
			"refresh_token": "ory_rt_x1.y2", "id_token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}},
		{name: "client credentials", extra: map[string]any{"expires_in": int64(60), "scope": "openid"}},
		{name: "escaped", extra: map[string]any{"scope": "a<b&c", "x": 1.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *fosite.AccessResponse {
				r := fosite.NewAccessResponse()
				r.SetAccessToken("ory_at_abc.def")
				r.SetTokenType("bearer")
				for k, v := range tc.extra {
					r.SetExtra(k, v)
				}
				return r
			}
			want := httptest.NewRecorder()
			(&fosite.Fosite{}).WriteAccessResponse(context.Background(), want, nil, mk())
			got := httptest.NewRecorder()
			writeAccessResponse(got, mk())
			if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
				t.Errorf("got %d %v %s\nwant %d %v %s", got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
			}
		})
	}
}
