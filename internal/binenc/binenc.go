// Package binenc is a small length-prefixed binary encoding for records the
// service writes and reads itself many times a second (OAuth requests and
// sessions), where encoding/json's reflection is a tenth of a token
// request's CPU. Values are appended in a fixed order and read back in the
// same order; there are no field names and no schema, so each format that
// uses it starts with its own version byte.
//
// Lengths and counts are unsigned varints. A slice or map is written as
// count+1 with 0 for nil, so nil and empty survive a round trip as they do
// through encoding/json (null and []).
package binenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrCorrupt is returned (wrapped) for data that does not decode.
var ErrCorrupt = errors.New("binenc: corrupt data")

// AppendUvarint appends v.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendBytes appends p with its length.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendString appends s with its length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendStrings appends ss, keeping nil apart from empty.
func AppendStrings(b []byte, ss []string) []byte {
	b = AppendLen(b, len(ss), ss == nil)
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

// AppendLen appends the count of a slice or map: n+1, or 0 when isNil.
func AppendLen(b []byte, n int, isNil bool) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

// AppendTime appends t with its zone offset (time.Time.AppendBinary); the
// monotonic clock reading is dropped, as by encoding/json.
func AppendTime(b []byte, t time.Time) ([]byte, error) {
	l := len(b)
	b = append(b, 0) // the length of the time, at most 16 bytes
	b, err := t.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("binenc: time: %w", err)
	}
	b[l] = byte(len(b) - l - 1)
	return b, nil
}

// Reader reads what the Append functions wrote, in order. The first
// failure sticks: later reads return zero values and Err reports it.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b; strings it returns are copies, byte slices are not.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Fail makes the reader fail, for a value that read well but does not
// decode in the caller's terms.
func (r *Reader) Fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at %d bytes from the end", ErrCorrupt, what, len(r.b))
	}
	r.b = nil
}

// Err is the first failure, or nil.
func (r *Reader) Err() error { return r.err }

// Done is Err, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) > 0 {
		r.Fail("trailing data")
	}
	return r.err
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.Fail("byte")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads a length-prefixed byte slice (a subslice of the input).
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.Fail("length")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// Rest reads all the bytes left (a subslice of the input): the last field
// of a format, whose length is the rest of the data.
func (r *Reader) Rest() []byte {
	p := r.b
	r.b = nil
	return p
}

// String reads a string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Len reads a count written by AppendLen: the count and whether it was
// nil. A count above the bytes left (each element takes at least one)
// fails, so corrupt data cannot make a caller allocate a huge slice.
func (r *Reader) Len() (n int, isNil bool) {
	v := r.Uvarint()
	if r.err != nil {
		return 0, true
	}
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)) {
		r.Fail("count")
		return 0, true
	}
	return int(v - 1), false
}

// Strings reads a slice written by AppendStrings.
func (r *Reader) Strings() []string {
	n, isNil := r.Len()
	if isNil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.String()
	}
	if r.err != nil {
		return nil
	}
	return ss
}

// Time reads a time written by AppendTime.
func (r *Reader) Time() time.Time {
	n := int(r.Byte())
	if r.err != nil || n > len(r.b) {
		r.Fail("time")
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalBinary(r.b[:n]); err != nil {
		r.Fail("time: " + err.Error())
		return time.Time{}
	}
	r.b = r.b[n:]
	return t
}
