package oidc

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

func fullSession() *Session {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &Session{
		DefaultSession: openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				JTI: "j", Issuer: "https://id", Subject: "s", Audience: []string{"a", "b"}, Nonce: "n",
				ExpiresAt: t0, IssuedAt: t0, RequestedAt: t0, AuthTime: t0, AccessTokenHash: "h",
				AuthenticationContextClassReference: "acr", AuthenticationMethodsReferences: []string{"face", "otp"},
				CodeHash: "c",
				Extra: map[string]any{
					"name": "Zhang San",
					"verified_claims": map[string]any{
						"verification": map[string]any{"trust_framework": "cn_mps", "time": t0},
						"claims":       map[string]any{"given_name": "San", "list": []any{"x", map[string]any{"y": 1.0}}},
					},
					"roles": []string{"r1"},
					"n":     3,
					"odd":   struct{ A []int }{A: []int{1, 2}},
				},
			},
			Headers:   &jwt.Headers{Extra: map[string]any{"kid": "k1", "nested": map[string]any{"a": []any{"b"}}}},
			ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: t0, fosite.RefreshToken: t0.Add(time.Hour)},
			Username:  "u",
			Subject:   "s",
		},
		CitizenID: "c1", SID: "sid", DPoPJKT: "jkt",
	}
}

// TestSessionClone: the copy equals the reflection-based deep copy and
// shares nothing mutable with the original.
func TestSessionClone(t *testing.T) {
	orig := fullSession()
	want := deepcopy.Copy(orig).(*Session)
	got := orig.Clone().(*Session)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("clone differs from a deep copy:\n got %+v\nwant %+v", got, want)
	}
	got.Claims.Audience[0] = "changed"
	got.Claims.AuthenticationMethodsReferences[0] = "changed"
	got.Claims.Extra["verified_claims"].(map[string]any)["claims"].(map[string]any)["given_name"] = "changed"
	got.Claims.Extra["verified_claims"].(map[string]any)["claims"].(map[string]any)["list"].([]any)[1].(map[string]any)["y"] = 2.0
	got.Claims.Extra["roles"].([]string)[0] = "changed"
	got.Headers.Extra["nested"].(map[string]any)["a"].([]any)[0] = "changed"
	got.ExpiresAt[fosite.AccessToken] = time.Time{}
	got.Claims.Subject, got.CitizenID = "changed", "changed"
	if !reflect.DeepEqual(orig, want) {
		t.Fatalf("changing the clone changed the original:\n got %+v\nwant %+v", orig, want)
	}
	if (*Session)(nil).Clone() != nil {
		t.Error("nil session cloned to non-nil")
	}
	empty := newSession()
	if c := empty.Clone().(*Session); !reflect.DeepEqual(c, empty) {
		t.Errorf("empty session: %+v", c)
	}
}

// TestSessionCloneCoversFields fails when a session type gains a field of
// reference kind (slice, map, pointer, interface) that Clone does not copy
// by itself: it would be shared between the copies.
func TestSessionCloneCoversFields(t *testing.T) {
	known := map[string][]string{
		"Session":        {"DefaultSession"},
		"DefaultSession": {"Claims", "Headers", "ExpiresAt"},
		"IDTokenClaims":  {"Audience", "AuthenticationMethodsReferences", "Extra"},
		"Headers":        {"Extra"},
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Session](), reflect.TypeFor[openid.DefaultSession](), reflect.TypeFor[jwt.IDTokenClaims](), reflect.TypeFor[jwt.Headers]()} {
		var refs []string
		for f := range typ.Fields() {
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Struct:
				if f.Type == reflect.TypeFor[time.Time]() {
					continue
				}
				refs = append(refs, f.Name)
			}
		}
		if !slices.Equal(refs, known[typ.Name()]) {
			t.Errorf("%s: fields of reference kind %v, Clone copies %v", typ.Name(), refs, known[typ.Name()])
		}
	}
}
