package tfliteconv

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX protobuf messages the converter writes, encoded by field number
// (onnx/onnx.proto3, IR version 7 for opset 13) with protowire: the
// generated onnx Go package is not a module on the proxy worth pinning for
// five messages, and writing fields in a fixed order keeps the output
// byte-for-byte deterministic.

// ONNX TensorProto.DataType values.
const (
	onnxFloat = 1
	onnxInt64 = 7
)

// ONNX AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrString = 3
	attrInts   = 7
)

type attr struct {
	name string
	typ  int
	i    int64
	f    float32
	s    string
	ints []int64
}

func intAttr(name string, v int64) attr     { return attr{name: name, typ: attrInt, i: v} }
func intsAttr(name string, v ...int64) attr { return attr{name: name, typ: attrInts, ints: v} }

type node struct {
	name, op string
	inputs   []string
	outputs  []string
	attrs    []attr
}

type initializer struct {
	name  string
	dims  []int64
	dtype int
	raw   []byte
}

func floatInit(name string, dims []int64, v []float32) initializer {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return initializer{name: name, dims: dims, dtype: onnxFloat, raw: raw}
}

func int64Init(name string, v []int64) initializer {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return initializer{name: name, dims: []int64{int64(len(v))}, dtype: onnxInt64, raw: raw}
}

type valueInfo struct {
	name  string
	dims  []int64
	dtype int
}

type graph struct {
	name    string
	nodes   []node
	inits   []initializer
	inputs  []valueInfo
	outputs []valueInfo
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func (a attr) marshal() []byte {
	var b []byte
	b = appendString(b, 1, a.name) // name
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type) // f
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarint(b, 3, a.i) // i
	case attrString:
		b = appendString(b, 4, a.s) // s
	case attrInts:
		for _, v := range a.ints {
			b = appendVarint(b, 8, v) // ints
		}
	}
	return appendVarint(b, 20, int64(a.typ)) // type
}

func (n node) marshal() []byte {
	var b []byte
	for _, s := range n.inputs {
		b = appendString(b, 1, s)
	}
	for _, s := range n.outputs {
		b = appendString(b, 2, s)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.op)
	for _, a := range n.attrs {
		b = appendBytes(b, 5, a.marshal())
	}
	return b
}

func (t initializer) marshal() []byte {
	var b []byte
	for _, d := range t.dims {
		b = appendVarint(b, 1, d) // dims
	}
	b = appendVarint(b, 2, int64(t.dtype)) // data_type
	b = appendString(b, 8, t.name)         // name
	return appendBytes(b, 9, t.raw)        // raw_data
}

func (v valueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.dims {
		shape = appendBytes(shape, 1, appendVarint(nil, 1, d)) // dim { dim_value }
	}
	var tensor []byte
	tensor = appendVarint(tensor, 1, int64(v.dtype)) // elem_type
	tensor = appendBytes(tensor, 2, shape)           // shape
	var b []byte
	b = appendString(b, 1, v.name)
	return appendBytes(b, 2, appendBytes(nil, 1, tensor)) // type { tensor_type }
}

func (g *graph) marshal() []byte {
	var b []byte
	for _, n := range g.nodes {
		b = appendBytes(b, 1, n.marshal())
	}
	b = appendString(b, 2, g.name)
	for _, t := range g.inits {
		b = appendBytes(b, 5, t.marshal())
	}
	for _, v := range g.inputs {
		b = appendBytes(b, 11, v.marshal())
	}
	for _, v := range g.outputs {
		b = appendBytes(b, 12, v.marshal())
	}
	return b
}

// model wraps g in a ModelProto at IR version 7, default-domain opset.
func model(g *graph, opset int64, producer, doc string) []byte {
	var b []byte
	b = appendVarint(b, 1, 7) // ir_version
	b = appendString(b, 2, producer)
	b = appendString(b, 6, doc)
	b = appendBytes(b, 7, g.marshal())
	return appendBytes(b, 8, appendVarint(appendString(nil, 1, ""), 2, opset)) // opset_import
}
