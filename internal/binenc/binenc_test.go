package binenc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	t1 := time.Date(2026, 11, 23, 18, 0, 0, 0, time.FixedZone("", 8*3600))
	var b []byte
	b = append(b, 7)
	b = AppendString(b, "")
	b = AppendString(b, "名字 <&>")
	b = AppendString(b, strings.Repeat("x", 300))
	b = AppendStrings(b, nil)
	b = AppendStrings(b, []string{})
	b = AppendStrings(b, []string{"a", "", "c"})
	b = AppendBytes(b, []byte{0, 1, 2})
	b = AppendUvarint(b, 1<<40)
	for _, tm := range []time.Time{{}, t0, t1, time.Now()} {
		var err error
		if b, err = AppendTime(b, tm); err != nil {
			t.Fatal(err)
		}
	}
	b = append(AppendLen(b, 2, false), 'p', 'q') // a count and its elements

	r := NewReader(b)
	if r.Byte() != 7 || r.String() != "" || r.String() != "名字 <&>" || r.String() != strings.Repeat("x", 300) {
		t.Fatal("byte or strings")
	}
	if s := r.Strings(); s != nil {
		t.Fatalf("nil slice came back as %#v", s)
	}
	if s := r.Strings(); s == nil || len(s) != 0 {
		t.Fatalf("empty slice came back as %#v", s)
	}
	if s := r.Strings(); !reflect.DeepEqual(s, []string{"a", "", "c"}) {
		t.Fatalf("strings: %#v", s)
	}
	if p := r.Bytes(); !bytes.Equal(p, []byte{0, 1, 2}) {
		t.Fatalf("bytes: %v", p)
	}
	if v := r.Uvarint(); v != 1<<40 {
		t.Fatalf("uvarint: %d", v)
	}
	if tm := r.Time(); !tm.IsZero() {
		t.Fatalf("zero time: %v", tm)
	}
	if tm := r.Time(); !tm.Equal(t0) || tm.Location() != time.UTC || tm.Nanosecond() != 123456789 {
		t.Fatalf("utc time: %v", tm)
	}
	if tm := r.Time(); !tm.Equal(t1) {
		t.Fatalf("zoned time: %v", tm)
	} else if _, off := tm.Zone(); off != 8*3600 {
		t.Fatalf("zone offset %d", off)
	}
	r.Time()
	if n, isNil := r.Len(); n != 2 || isNil {
		t.Fatalf("len: %d %v", n, isNil)
	}
	if r.Byte() != 'p' || r.Byte() != 'q' {
		t.Fatal("elements after a count")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestRest: the bytes left, then none.
func TestRest(t *testing.T) {
	r := NewReader(append(AppendString(nil, "a"), 1, 2))
	if r.String() != "a" || !bytes.Equal(r.Rest(), []byte{1, 2}) || len(r.Rest()) != 0 || r.Done() != nil {
		t.Fatal("rest")
	}
}

// TestCorrupt: truncated, oversized and trailing data fail with ErrCorrupt
// and the failure sticks.
func TestCorrupt(t *testing.T) {
	full := AppendStrings(nil, []string{"abc", "def"})
	for _, tc := range []struct {
		name string
		data []byte
		read func(*Reader)
	}{
		{"empty", nil, func(r *Reader) { r.Byte() }},
		{"truncated string", AppendString(nil, "abc")[:2], func(r *Reader) { _ = r.String() }},
		{"truncated slice", full[:len(full)-1], func(r *Reader) { r.Strings() }},
		{"huge count", AppendUvarint(nil, 1<<62), func(r *Reader) { r.Strings() }},
		{"huge length", AppendUvarint(nil, 1<<62), func(r *Reader) { r.Bytes() }},
		{"bad varint", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) { r.Uvarint() }},
		{"bad time", []byte{3, 9, 9, 9}, func(r *Reader) { r.Time() }},
		{"short time", []byte{15, 1}, func(r *Reader) { r.Time() }},
		{"trailing", append(AppendString(nil, "a"), 0), func(r *Reader) { _ = r.String() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.data)
			tc.read(r)
			if err := r.Done(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v", err)
			}
			if r.String() != "" || r.Strings() != nil || !errors.Is(r.Err(), ErrCorrupt) {
				t.Fatal("the failure did not stick")
			}
		})
	}
}

// FuzzReader: no input makes a reader panic or allocate more than its input
// allows.
func FuzzReader(f *testing.F) {
	b, _ := AppendTime(AppendStrings(AppendString(nil, "s"), []string{"a"}), time.Unix(1, 0))
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(data)
		for r.Err() == nil && len(r.b) > 0 {
			switch r.Byte() % 5 {
			case 0:
				_ = r.String()
			case 1:
				if ss := r.Strings(); len(ss) > len(data) {
					t.Fatalf("%d strings from %d bytes", len(ss), len(data))
				}
			case 2:
				r.Time()
			case 3:
				r.Uvarint()
			case 4:
				r.Len()
			}
		}
	})
}
