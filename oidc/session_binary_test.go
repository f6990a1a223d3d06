package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/binenc"
)

// fill sets every field reachable from v to a distinct non-zero value:
// strings, slices and maps get entries, times distinct instants, pointers
// new values, claim maps JSON-shaped values.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d <&>", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, n)
		e := reflect.New(v.Type().Elem()).Elem()
		if v.Type().Elem().Kind() == reflect.Interface {
			e.Set(reflect.ValueOf(map[string]any{"name": "张三", "n": float64(*n), "ok": true, "list": []any{"a", 1.5}}))
		} else {
			fill(e, n)
		}
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 23, 10, *n, 0, *n*1000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	default:
		panic("fill: no value for kind " + v.Kind().String())
	}
}

// TestSessionBinaryCoversFields: a session with every field set (fosite's
// included) comes back equal from the binary format and equal to what the
// JSON encoding gives back; a field fosite adds and AppendBinary does not
// write fails here.
func TestSessionBinaryCoversFields(t *testing.T) {
	var s Session
	n := 0
	fill(reflect.ValueOf(&s).Elem(), &n)
	b, err := s.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatal("AppendBinary did not append")
	}
	back := newSession()
	if err := back.UnmarshalBinary(b[6:]); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, &s) {
		t.Fatalf("binary round trip:\n got %+v\nwant %+v", back, &s)
	}
	j, _ := json.Marshal(&s)
	viaJSON := newSession()
	if err := json.Unmarshal(j, viaJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, viaJSON) {
		t.Fatalf("binary and JSON round trips differ:\n binary %+v\n   json %+v", back, viaJSON)
	}
}

// TestSessionBinaryDecodesOverAsJSON: decoding over a used session gives
// what encoding/json gives (the token endpoint's DPoP binding survives
// fosite re-reading the code's session into it), for stored and used
// sessions with parts nil, empty and set.
func TestSessionBinaryDecodesOverAsJSON(t *testing.T) {
	full := func() *Session {
		var s Session
		n := 100
		fill(reflect.ValueOf(&s).Elem(), &n)
		return &s
	}
	sessions := []func() *Session{
		func() *Session { return &Session{} },
		func() *Session { return newSession() },
		func() *Session {
			return &Session{DefaultSession: openid.DefaultSession{Claims: &jwt.IDTokenClaims{Audience: []string{}, Extra: map[string]any{}},
				Headers: &jwt.Headers{Extra: map[string]any{}}, ExpiresAt: map[fosite.TokenType]time.Time{}}}
		},
		func() *Session {
			s := newSession()
			s.DPoPJKT, s.CitizenID = "jkt", "cit"
			s.Claims.Extra = map[string]any{"own": "x"}
			s.ExpiresAt = map[fosite.TokenType]time.Time{fosite.AccessToken: time.Unix(5, 0).UTC()}
			return s
		},
		full,
	}
	for i, stored := range sessions {
		b, err := stored().AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(stored())
		for k, used := range sessions {
			got, want := used(), used()
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(j, want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stored %d over used %d:\n binary %+v\n   json %+v", i, k, got, want)
			}
		}
	}
	if _, err := (*Session)(nil).AppendBinary(nil); err == nil {
		t.Fatal("a nil session encoded")
	}
}

// TestSessionBinaryCorrupt: bad data is an error and leaves the session as
// it was.
func TestSessionBinaryCorrupt(t *testing.T) {
	var s Session
	n := 0
	fill(reflect.ValueOf(&s).Elem(), &n)
	good, _ := s.AppendBinary(nil)
	badJSON := append([]byte{sessionBinaryV1, 0, 1, 1}, binenc.AppendString(nil, "[1]")...)
	for name, data := range map[string][]byte{
		"empty":      nil,
		"version":    append([]byte{9}, good[1:]...),
		"truncated":  good[:len(good)-3],
		"trailing":   append(append([]byte(nil), good...), 0),
		"claims map": badJSON,
	} {
		keep := &Session{CitizenID: "keep"}
		err := keep.UnmarshalBinary(data)
		if err == nil || keep.CitizenID != "keep" {
			t.Errorf("%s: err %v, session %+v", name, err, keep)
		}
		if name == "version" && !errors.Is(err, errSessionFormat) {
			t.Errorf("version: %v", err)
		}
	}
}
