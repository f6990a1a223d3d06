package storage

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/binenc"
)

// binSession is a session that encodes itself (as oidc.Session does),
// with JSON as its binary form.
type binSession struct {
	openid.DefaultSession
	Extra string
}

func (s *binSession) AppendBinary(b []byte) ([]byte, error) {
	j, err := json.Marshal(s)
	return append(b, j...), err
}

func (s *binSession) UnmarshalBinary(p []byte) error {
	*s = binSession{}
	return json.Unmarshal(p, s)
}

func codecStorage() *Storage {
	return &Storage{newSession: func() fosite.Session { return &binSession{} }, now: time.Now, ttl: time.Hour,
		cache: map[string]cachedClient{"c": {c: &Client{}, exp: time.Now().Add(time.Hour)}}}
}

// TestBinaryRecordRoundTrip: requests with a self-encoding session are
// stored in the binary format and decode to the same request as through
// the JSON record.
func TestBinaryRecordRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)
	redirect, _ := url.Parse("https://rp.example/cb?x=1")
	sess := &binSession{DefaultSession: openid.DefaultSession{Subject: "s", Username: "u"}, Extra: "x"}
	req := fosite.Request{ID: "r1", RequestedAt: t0, Client: &fosite.DefaultClient{ID: "c"},
		RequestedScope: fosite.Arguments{"openid", "offline_access"}, GrantedScope: fosite.Arguments{"openid"},
		RequestedAudience: fosite.Arguments{}, GrantedAudience: fosite.Arguments{"api"},
		Form:    url.Values{"grant_type": {"refresh_token"}, "scope": {"openid offline_access"}, "refresh_token": {"secret"}, "z": {}},
		Session: sess}
	for _, r := range []fosite.Requester{
		&req,
		&fosite.AuthorizeRequest{Request: req, ResponseTypes: fosite.Arguments{"code"}, RedirectURI: redirect, State: "st",
			ResponseMode: fosite.ResponseModeQuery, DefaultResponseMode: fosite.ResponseModeFragment},
		&fosite.Request{ID: "r2", Client: &fosite.DefaultClient{ID: "c"}, Session: &binSession{}},
	} {
		data, err := encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != recordBinaryV1 || strings.Contains(string(data), "secret") {
			t.Fatalf("not binary, or a sensitive form value kept: %q", data)
		}
		if again, _ := encode(r); string(again) != string(data) {
			t.Fatal("the same request encoded to different bytes")
		}
		s := codecStorage()
		got, err := s.decode(context.Background(), data, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The same request through the JSON record.
		var rec record
		rec.Session = r.GetSession()
		if ar, ok := r.(fosite.AuthorizeRequester); ok {
			rec.Authorize = &authorizeFields{ResponseTypes: ar.GetResponseTypes(), State: ar.GetState(),
				ResponseMode: string(ar.GetResponseMode()), DefaultResponseMode: string(ar.GetDefaultResponseMode())}
			if u := ar.GetRedirectURI(); u != nil {
				rec.Authorize.RedirectURI = u.String()
			}
		}
		rec.ID, rec.RequestedAt, rec.ClientID = r.GetID(), r.GetRequestedAt(), r.GetClient().GetID()
		rec.RequestedScope, rec.GrantedScope = r.GetRequestedScopes(), r.GetGrantedScopes()
		rec.RequestedAudience, rec.GrantedAudience = r.GetRequestedAudience(), r.GetGrantedAudience()
		rec.Form = url.Values{}
		for k, v := range r.GetRequestForm() {
			if k != "refresh_token" {
				rec.Form[k] = v
			}
		}
		j, _ := json.Marshal(rec)
		want, err := codecStorage().decode(context.Background(), j, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("binary and JSON records differ:\n got %+v\nwant %+v", got, want)
		}
		if gs := got.GetSession().(*binSession); !reflect.DeepEqual(gs, r.GetSession()) {
			t.Fatalf("session: got %+v want %+v", gs, r.GetSession())
		}
	}
}

// TestBinaryRecordErrors: corrupt data, and a binary session for a
// session type that cannot read it, are errors; a session without the
// methods is stored as JSON, as before.
func TestBinaryRecordErrors(t *testing.T) {
	r := &fosite.Request{ID: "r1", Client: &fosite.DefaultClient{ID: "c"}, Form: url.Values{"a": {"b"}}, Session: &binSession{Extra: "x"}}
	data, err := encode(r)
	if err != nil {
		t.Fatal(err)
	}
	noSession, err := appendRecord(nil, &record{ID: "r1", ClientID: "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := codecStorage()
	if _, err := s.decode(context.Background(), noSession, nil); err != nil {
		t.Fatalf("a record without a session: %v", err)
	}
	noSession[len(noSession)-1] = 7
	for name, bad := range map[string][]byte{
		"truncated":    data[:len(data)-2],
		"trailing":     append(append([]byte(nil), data...), 0),
		"session kind": noSession,
	} {
		if _, err := s.decode(context.Background(), bad, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := s.decode(context.Background(), data, &openid.DefaultSession{}); err == nil {
		t.Error("a session without UnmarshalBinary read a binary session")
	}
	if _, err := s.decode(context.Background(), data, nil); err != nil {
		t.Fatal(err)
	}
	plain, _ := encode(&fosite.Request{ID: "r", Client: &fosite.DefaultClient{ID: "c"}, Session: &openid.DefaultSession{}})
	if plain[0] != '{' {
		t.Fatalf("a session without AppendBinary: %q", plain)
	}
	if _, err := s.decode(context.Background(), []byte{recordBinaryV1}, nil); !errors.Is(err, binenc.ErrCorrupt) {
		t.Fatalf("a bare format byte: %v", err)
	}
}
