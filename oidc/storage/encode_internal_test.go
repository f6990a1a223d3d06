package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// TestEncodeInOncePerRequest: inside a transaction the same request object
// is encoded once (the refresh stores it as both tokens); each caller gets
// its own bytes, and another request object its own encoding.
func TestEncodeInOncePerRequest(t *testing.T) {
	s := &Storage{}
	ctx, err := s.BeginTX(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client := &fosite.DefaultClient{ID: "c"}
	r1 := &fosite.Request{ID: "r1", Client: client, GrantedScope: fosite.Arguments{"openid"}}
	r2 := &fosite.Request{ID: "r2", Client: client}
	a, err := s.encodeIn(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if s.txFrom(ctx).encoded != r1 {
		t.Fatal("the encoding was not kept")
	}
	b, _ := s.encodeIn(ctx, r1)
	if !bytes.Equal(a, b) || &a[0] == &b[0] {
		t.Fatalf("same request: equal copies expected")
	}
	a[0] = 'x'
	if c, _ := s.encodeIn(ctx, r1); c[0] == 'x' {
		t.Fatal("a caller's change reached the kept encoding")
	}
	d, _ := s.encodeIn(ctx, r2)
	want, _ := encode(r2)
	if !bytes.Equal(d, want) || bytes.Equal(d, b) {
		t.Fatalf("another request got %s", d)
	}
	// Outside a transaction nothing is kept.
	if e, _ := s.encodeIn(context.Background(), r1); !bytes.Equal(e, b) {
		t.Fatalf("outside a transaction: %s", e)
	}
}

// TestEncodeFormatUnchanged: the request is stored byte for byte as when
// the session was encoded apart and embedded (records written before keep
// decoding), and decodes back to the same session.
func TestEncodeFormatUnchanged(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sess := &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{Subject: "s", Audience: []string{"a"}, AuthTime: t0,
			Extra: map[string]any{"verified_claims": map[string]any{"claims": map[string]any{"name": "<Zhang & San>"}}}},
		Headers:   &jwt.Headers{Extra: map[string]any{"kid": "k"}},
		ExpiresAt: map[fosite.TokenType]time.Time{fosite.RefreshToken: t0},
		Subject:   "s",
	}
	r := &fosite.Request{ID: "r1", RequestedAt: t0, Client: &fosite.DefaultClient{ID: "c"},
		GrantedScope: fosite.Arguments{"openid"}, Form: url.Values{"grant_type": {"refresh_token"}}, Session: sess}
	got, err := encode(r)
	if err != nil {
		t.Fatal(err)
	}
	type oldRecord struct {
		ID                string          `json:"id"`
		RequestedAt       time.Time       `json:"requested_at"`
		ClientID          string          `json:"client_id"`
		RequestedScope    []string        `json:"scopes,omitempty"`
		GrantedScope      []string        `json:"granted_scopes,omitempty"`
		RequestedAudience []string        `json:"audience,omitempty"`
		GrantedAudience   []string        `json:"granted_audience,omitempty"`
		Form              url.Values      `json:"form,omitempty"`
		Lang              string          `json:"lang,omitempty"`
		Session           json.RawMessage `json:"session,omitempty"`
	}
	sb, _ := json.Marshal(sess)
	want, _ := json.Marshal(oldRecord{ID: "r1", RequestedAt: t0, ClientID: "c", GrantedScope: []string{"openid"},
		Form: url.Values{"grant_type": {"refresh_token"}}, Session: sb})
	if !bytes.Equal(got, want) {
		t.Fatalf("format changed:\n got %s\nwant %s", got, want)
	}
	// Decoding (the client comes from the cache) gives the session back.
	s := &Storage{newSession: func() fosite.Session { return &openid.DefaultSession{} }, now: time.Now, ttl: time.Hour,
		cache: map[string]cachedClient{"c": {c: &Client{}, exp: time.Now().Add(time.Hour)}}}
	ar, err := s.decode(context.Background(), got, nil)
	if err != nil {
		t.Fatal(err)
	}
	back := ar.GetSession().(*openid.DefaultSession)
	if !reflect.DeepEqual(back, sess) {
		t.Fatalf("decoded session:\n got %+v\nwant %+v", back, sess)
	}
	into := &openid.DefaultSession{}
	if ar, err := s.decode(context.Background(), got, into); err != nil || ar.GetSession() != into || into.Subject != "s" {
		t.Fatalf("decode into a given session: %v %v", ar, err)
	}
}
