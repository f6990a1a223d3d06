package tfliteconv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A hand-written reader of the few FlatBuffers tables a TFLite model needs
// (schema.fbs: Model, OperatorCode, SubGraph, Tensor, Operator, Buffer and
// the options of the ops converted). github.com/google/flatbuffers/go would
// give only the same table/vtable access: without code generated from
// schema.fbs by flatc, every field would still be named by its slot by hand,
// so the runtime would save a few dozen lines at the cost of a dependency.
// Every offset is bounds-checked: a model file is input, and a corrupt one
// is an error, never a panic.

// ErrFormat reports a model file that is not a well-formed TFLite flatbuffer.
var ErrFormat = errors.New("tfliteconv: malformed TFLite flatbuffer")

type buf []byte

func (b buf) u32(off int) (uint32, error) {
	if off < 0 || off+4 > len(b) {
		return 0, fmt.Errorf("%w: offset %d out of range", ErrFormat, off)
	}
	return binary.LittleEndian.Uint32(b[off:]), nil
}

// table is a FlatBuffers table: its position and its vtable's.
type table struct {
	b      buf
	pos    int
	vt     int
	vtSize int
}

func (b buf) tableAt(pos int) (table, error) {
	s, err := b.u32(pos)
	if err != nil {
		return table{}, err
	}
	vt := pos - int(int32(s))
	if vt < 0 || vt+4 > len(b) {
		return table{}, fmt.Errorf("%w: vtable at %d", ErrFormat, vt)
	}
	n := int(binary.LittleEndian.Uint16(b[vt:]))
	if n < 4 || vt+n > len(b) {
		return table{}, fmt.Errorf("%w: vtable size %d", ErrFormat, n)
	}
	return table{b: b, pos: pos, vt: vt, vtSize: n}, nil
}

// root returns the file's root table.
func (b buf) root() (table, error) {
	o, err := b.u32(0)
	if err != nil {
		return table{}, err
	}
	return b.tableAt(int(o))
}

// field returns the absolute position of field slot i, or 0 when absent.
func (t table) field(i int) int {
	e := 4 + 2*i
	if e+2 > t.vtSize {
		return 0
	}
	o := int(binary.LittleEndian.Uint16(t.b[t.vt+e:]))
	if o == 0 {
		return 0
	}
	return t.pos + o
}

func (t table) scalar(i, size int, def int64) (int64, error) {
	p := t.field(i)
	if p == 0 {
		return def, nil
	}
	if p+size > len(t.b) {
		return 0, fmt.Errorf("%w: field %d out of range", ErrFormat, i)
	}
	switch size {
	case 1:
		return int64(int8(t.b[p])), nil
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(t.b[p:]))), nil
	}
	return int64(binary.LittleEndian.Uint64(t.b[p:])), nil
}

// ubyte, i32 and u32 read scalar fields with their schema defaults.
func (t table) ubyte(i int, def uint8) (uint8, error) {
	v, err := t.scalar(i, 1, int64(int8(def)))
	return uint8(v), err
}

func (t table) i32(i int, def int32) (int32, error) {
	v, err := t.scalar(i, 4, int64(def))
	return int32(v), err
}

// indirect follows the uoffset stored at field i.
func (t table) indirect(i int) (int, bool, error) {
	p := t.field(i)
	if p == 0 {
		return 0, false, nil
	}
	o, err := t.b.u32(p)
	if err != nil {
		return 0, false, err
	}
	return p + int(o), true, nil
}

// sub returns the table referenced by field i (ok false when absent).
func (t table) sub(i int) (table, bool, error) {
	p, ok, err := t.indirect(i)
	if !ok || err != nil {
		return table{}, ok, err
	}
	s, err := t.b.tableAt(p)
	return s, true, err
}

// vector returns the element count and first element position of the
// vector at field i, checking that n elements of elem bytes fit.
func (t table) vector(i, elem int) (n, start int, err error) {
	p, ok, err := t.indirect(i)
	if !ok || err != nil {
		return 0, 0, err
	}
	l, err := t.b.u32(p)
	if err != nil {
		return 0, 0, err
	}
	if int64(p)+4+int64(l)*int64(elem) > int64(len(t.b)) {
		return 0, 0, fmt.Errorf("%w: vector of %d at %d", ErrFormat, l, p)
	}
	return int(l), p + 4, nil
}

func (t table) bytes(i int) ([]byte, error) {
	n, s, err := t.vector(i, 1)
	if err != nil || n == 0 {
		return nil, err
	}
	return t.b[s : s+n], nil
}

func (t table) str(i int) (string, error) {
	b, err := t.bytes(i)
	return string(b), err
}

func (t table) ints(i int) ([]int32, error) {
	n, s, err := t.vector(i, 4)
	if err != nil {
		return nil, err
	}
	out := make([]int32, n)
	for k := range out {
		out[k] = int32(binary.LittleEndian.Uint32(t.b[s+4*k:]))
	}
	return out, nil
}

func (t table) tables(i int) ([]table, error) {
	n, s, err := t.vector(i, 4)
	if err != nil {
		return nil, err
	}
	out := make([]table, n)
	for k := range out {
		p := s + 4*k
		o, err := t.b.u32(p)
		if err != nil {
			return nil, err
		}
		if out[k], err = t.b.tableAt(p + int(o)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
