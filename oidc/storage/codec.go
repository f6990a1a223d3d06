package storage

import (
	"encoding"
	"fmt"
	"net/url"
	"slices"

	"github.com/trustid/trustid/internal/binenc"
)

// Records are stored in one of two formats. Requests whose session can
// encode itself (encoding.BinaryAppender, as oidc.Session does) are written
// in the binary format below, which costs a tenth of encoding/json's
// reflection on every token request; others are written as the JSON of
// record. Both are read: the binary format starts with recordBinaryV1, a
// JSON record with '{', so records written before the binary format keep
// decoding.
const recordBinaryV1 = 1

// Session kinds in the binary format.
const (
	sessionNone   = 0
	sessionBinary = 1
)

// binarySession is a session that encodes itself.
type binarySession interface {
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// appendRecord appends rec, whose session (if any) is sess, in the binary
// format.
func appendRecord(b []byte, rec *record, sess binarySession) ([]byte, error) {
	b = append(b, recordBinaryV1)
	b = binenc.AppendString(b, rec.ID)
	b, err := binenc.AppendTime(b, rec.RequestedAt)
	if err != nil {
		return nil, err
	}
	b = binenc.AppendString(b, rec.ClientID)
	for _, ss := range [][]string{rec.RequestedScope, rec.GrantedScope, rec.RequestedAudience, rec.GrantedAudience} {
		b = binenc.AppendStrings(b, ss)
	}
	// Form keys in order, so a request always encodes to the same bytes.
	keys := make([]string, 0, len(rec.Form))
	for k := range rec.Form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binenc.AppendLen(b, len(keys), false)
	for _, k := range keys {
		b = binenc.AppendStrings(binenc.AppendString(b, k), rec.Form[k])
	}
	b = binenc.AppendString(b, rec.Lang)
	if af := rec.Authorize; af == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binenc.AppendStrings(b, af.ResponseTypes)
		b = binenc.AppendString(b, af.RedirectURI)
		b = binenc.AppendString(b, af.State)
		b = binenc.AppendStrings(b, af.HandledResponseTypes)
		b = binenc.AppendString(b, af.ResponseMode)
		b = binenc.AppendString(b, af.DefaultResponseMode)
	}
	if sess == nil {
		return append(b, sessionNone), nil
	}
	// The session is the last field: its bytes are the rest of the record.
	if b, err = sess.AppendBinary(append(b, sessionBinary)); err != nil {
		return nil, fmt.Errorf("oidc/storage: encode session: %w", err)
	}
	return b, nil
}

// readRecord decodes a binary record into rec, filling session in place.
func readRecord(data []byte, rec *record, session any) error {
	r := binenc.NewReader(data)
	if v := r.Byte(); v != recordBinaryV1 {
		r.Fail("record format")
	}
	rec.ID = r.String()
	rec.RequestedAt = r.Time()
	rec.ClientID = r.String()
	rec.RequestedScope, rec.GrantedScope = r.Strings(), r.Strings()
	rec.RequestedAudience, rec.GrantedAudience = r.Strings(), r.Strings()
	if n, _ := r.Len(); r.Err() == nil {
		rec.Form = make(url.Values, n)
		for range n {
			k := r.String()
			rec.Form[k] = r.Strings()
		}
	}
	rec.Lang = r.String()
	if r.Byte() == 1 {
		rec.Authorize = &authorizeFields{ResponseTypes: r.Strings(), RedirectURI: r.String(), State: r.String(),
			HandledResponseTypes: r.Strings(), ResponseMode: r.String(), DefaultResponseMode: r.String()}
	}
	switch r.Byte() {
	case sessionNone:
	case sessionBinary:
		p := r.Rest()
		bs, ok := session.(binarySession)
		if !ok {
			return fmt.Errorf("oidc/storage: decode request: a %T cannot read a binary session", session)
		}
		if err := bs.UnmarshalBinary(p); err != nil {
			return fmt.Errorf("oidc/storage: decode session: %w", err)
		}
	default:
		r.Fail("session kind")
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("oidc/storage: decode request: %w", err)
	}
	return nil
}
