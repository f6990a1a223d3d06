package oidc

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/binenc"
)

// A session is stored with every authorization code, refresh token and
// access token and read back on every token request; encoding/json's
// reflection over fosite's ID token claims was 16 % of a refresh's CPU in
// the server. AppendBinary and UnmarshalBinary (encoding.BinaryAppender,
// encoding.BinaryUnmarshaler, which oidc/storage uses when a session has
// them) write the fields in a fixed order with internal/binenc; only the
// free-form claim maps (Extra) go through encoding/json, so their values
// come back as they would from JSON. TestSessionBinaryCoversFields fails if
// fosite adds a field this does not write.

var (
	_ encoding.BinaryAppender    = (*Session)(nil)
	_ encoding.BinaryUnmarshaler = (*Session)(nil)
)

// sessionBinaryV1 is the first byte of the format below.
const sessionBinaryV1 = 1

var errSessionFormat = errors.New("oidc: unknown session format")

// AppendBinary implements encoding.BinaryAppender.
func (s *Session) AppendBinary(b []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("oidc: encode a nil session")
	}
	b = append(b, sessionBinaryV1)
	var err error
	if c := s.Claims; c == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binenc.AppendString(b, c.JTI)
		b = binenc.AppendString(b, c.Issuer)
		b = binenc.AppendString(b, c.Subject)
		b = binenc.AppendStrings(b, c.Audience)
		b = binenc.AppendString(b, c.Nonce)
		for _, t := range []time.Time{c.ExpiresAt, c.IssuedAt, c.RequestedAt, c.AuthTime} {
			if b, err = binenc.AppendTime(b, t); err != nil {
				return nil, err
			}
		}
		b = binenc.AppendString(b, c.AccessTokenHash)
		b = binenc.AppendString(b, c.AuthenticationContextClassReference)
		b = binenc.AppendStrings(b, c.AuthenticationMethodsReferences)
		b = binenc.AppendString(b, c.CodeHash)
		if b, err = appendJSONMap(b, c.Extra); err != nil {
			return nil, err
		}
	}
	if h := s.Headers; h == nil {
		b = append(b, 0)
	} else if b, err = appendJSONMap(append(b, 1), h.Extra); err != nil {
		return nil, err
	}
	b = binenc.AppendLen(b, len(s.ExpiresAt), s.ExpiresAt == nil)
	for k, t := range s.ExpiresAt {
		if b, err = binenc.AppendTime(binenc.AppendString(b, string(k)), t); err != nil {
			return nil, err
		}
	}
	for _, v := range []string{s.Username, s.DefaultSession.Subject, s.CitizenID, s.SID, s.DPoPJKT} {
		b = binenc.AppendString(b, v)
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It decodes over
// s as encoding/json decodes into a used session (see decodeOver): fosite
// reads a code's session into the request's session after the token
// endpoint set the DPoP binding on it, which must survive.
func (s *Session) UnmarshalBinary(data []byte) error {
	r := binenc.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != sessionBinaryV1 {
		return fmt.Errorf("%w %d", errSessionFormat, v)
	}
	var out Session
	if r.Byte() == 1 {
		c := &jwt.IDTokenClaims{}
		c.JTI, c.Issuer, c.Subject = r.String(), r.String(), r.String()
		c.Audience = r.Strings()
		c.Nonce = r.String()
		c.ExpiresAt, c.IssuedAt, c.RequestedAt, c.AuthTime = r.Time(), r.Time(), r.Time(), r.Time()
		c.AccessTokenHash, c.AuthenticationContextClassReference = r.String(), r.String()
		c.AuthenticationMethodsReferences = r.Strings()
		c.CodeHash = r.String()
		c.Extra = readJSONMap(r)
		out.Claims = c
	}
	if r.Byte() == 1 {
		out.Headers = &jwt.Headers{Extra: readJSONMap(r)}
	}
	if n, isNil := r.Len(); !isNil {
		out.ExpiresAt = make(map[fosite.TokenType]time.Time, n)
		for range n {
			k := fosite.TokenType(r.String())
			out.ExpiresAt[k] = r.Time()
		}
	}
	out.Username, out.DefaultSession.Subject = r.String(), r.String()
	out.CitizenID, out.SID, out.DPoPJKT = r.String(), r.String(), r.String()
	if err := r.Done(); err != nil {
		return fmt.Errorf("oidc: session: %w", err)
	}
	s.decodeOver(&out)
	return nil
}

// decodeOver sets s from a decoded session d with encoding/json's
// semantics for decoding into a non-zero value: a present object is
// decoded into the struct or map already there (map keys are added, the
// claims and headers structs are written in place), null makes a pointer
// or map nil, and an omitempty field that was empty (citizen_id, sid,
// dpop_jkt) is absent, so s keeps its own.
func (s *Session) decodeOver(d *Session) {
	switch {
	case d.Claims == nil || s.Claims == nil:
		s.Claims = d.Claims
	default:
		extra := s.Claims.Extra
		*s.Claims = *d.Claims
		s.Claims.Extra = mergeMap(extra, d.Claims.Extra)
	}
	switch {
	case d.Headers == nil || s.Headers == nil:
		s.Headers = d.Headers
	default:
		s.Headers.Extra = mergeMap(s.Headers.Extra, d.Headers.Extra)
	}
	s.ExpiresAt = mergeMap(s.ExpiresAt, d.ExpiresAt)
	s.Username, s.DefaultSession.Subject = d.Username, d.DefaultSession.Subject
	setNonEmpty(&s.CitizenID, d.CitizenID)
	setNonEmpty(&s.SID, d.SID)
	setNonEmpty(&s.DPoPJKT, d.DPoPJKT)
}

// setNonEmpty is an omitempty string field decoded over dst.
func setNonEmpty(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// mergeMap is a JSON object (or null, for nil d) decoded into the map m.
func mergeMap[K comparable, V any](m, d map[K]V) map[K]V {
	if d == nil || m == nil {
		return d
	}
	maps.Copy(m, d)
	return m
}

// appendJSONMap appends a claim map as JSON (0 for nil).
func appendJSONMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, 0), nil
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("oidc: session claims: %w", err)
	}
	return binenc.AppendBytes(append(b, 1), j), nil
}

func readJSONMap(r *binenc.Reader) map[string]any {
	if r.Byte() != 1 {
		return nil
	}
	j := r.Bytes()
	if r.Err() != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil || m == nil {
		r.Fail("claims are not a JSON object")
		return nil
	}
	return m
}
