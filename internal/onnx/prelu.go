package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// RewritePRelu rewrites, in an ONNX model, every PRelu whose slope a is a
// per-channel constant of shape [C,1,1] (or [1,C,1,1], as
// internal/tfliteconv writes it) into operations ONNX Runtime keeps in its
// blocked NCHWc layout, and returns the new model and how many nodes it
// rewrote. NCHWc runs it (after RewriteDepthwisePad and RewriteChannelPad)
// for the face networks (authn/face) and the face mesh (liveness/facemesh).
//
// Why: ONNX Runtime (1.17) runs convolutions in NCHWc but has no NCHWc
// PRelu, so around each PRelu it reorders the tensor out of the blocked
// layout and back: PRelu and the reorders took 46 % of fr_feature's time
// (bench/face/RESULTS.md), and the face mesh's 23 PRelus made it about a
// quarter slower (liveness/RESULTS.md). BatchNormalization on an NCHWc
// tensor becomes a depthwise 1x1 NCHWc convolution, which takes a fused
// Relu and a fused sum, so
//
//	PRelu(y) = a*y + Relu((1-a)*y)           when every a <= 1 (two passes)
//	PRelu(y) = a*y + (1-a)*Relu(y)           otherwise (three passes)
//
// with a*y as BatchNormalization(scale a, bias 0, mean 0, variance 1-eps,
// epsilon eps = 2^-17: variance + epsilon is exactly 1). For y < 0 the
// result is a*y exactly as before; for y > 0 it is a*y + (1-a)*y, y to
// within float rounding (authn/face's TestRuntimesAgree: embeddings at
// cosine 0.9999999 with OpenCV's PRelu; liveness/facemesh's
// TestPReluRewriteAgrees: mesh points within 1e-4 of a crop pixel).
func RewritePRelu(model []byte) ([]byte, int, error) {
	return rewriteModel(model, rewriteGraph)
}

// rewriteModel returns model with its graph rewritten by rewrite, and the
// count rewrite returned.
func rewriteModel(model []byte, rewrite func(graph []byte) ([]byte, int, error)) ([]byte, int, error) {
	top, err := fields(model)
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	n := 0
	for _, f := range top {
		if f.num != 7 { // ModelProto.graph
			out = append(out, f.raw...)
			continue
		}
		g, k, err := rewrite(f.val)
		if err != nil {
			return nil, 0, err
		}
		n += k
		out = protowire.AppendTag(out, 7, protowire.BytesType)
		out = protowire.AppendBytes(out, g)
	}
	return out, n, nil
}

// A protobuf field: its number and type, the whole encoding (tag
// included) and, for length-delimited fields, the payload.
type pbField struct {
	num protowire.Number
	typ protowire.Type
	raw []byte
	val []byte
	x   uint64 // varint and fixed values
}

var errProto = errors.New("onnx: malformed ONNX model")

func fields(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errProto
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, errProto
		}
		f := pbField{num: num, typ: typ, raw: b[:n+m]}
		switch typ {
		case protowire.BytesType:
			f.val, _ = protowire.ConsumeBytes(b[n:])
		case protowire.VarintType:
			f.x, _ = protowire.ConsumeVarint(b[n:])
		case protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(b[n:])
			f.x = uint64(v)
		}
		out = append(out, f)
		b = b[n+m:]
	}
	return out, nil
}

// GraphProto: node 1, initializer 5. NodeProto: input 1, output 2, name 3,
// op_type 4, domain 7. TensorProto: dims 1, data_type 2, float_data 4,
// name 8, raw_data 9.
type onnxNode struct {
	op, domain string
	in, out    []string
}

func parseNode(b []byte) (onnxNode, error) {
	fs, err := fields(b)
	if err != nil {
		return onnxNode{}, err
	}
	var n onnxNode
	for _, f := range fs {
		switch f.num {
		case 1:
			n.in = append(n.in, string(f.val))
		case 2:
			n.out = append(n.out, string(f.val))
		case 4:
			n.op = string(f.val)
		case 7:
			n.domain = string(f.val)
		}
	}
	return n, nil
}

// A TensorProto's name, dims, data type and data (raw_data, or the packed
// float_data or int64_data as stored); ok is false for a tensor this
// package does not read (malformed, unpacked values, external data).
type onnxTensor struct {
	name string
	dims []uint64
	typ  uint64
	data []byte
}

// TensorProto data types.
const (
	tensorFloat = 1
	tensorInt64 = 7
)

func parseTensor(b []byte) (t onnxTensor, ok bool) {
	fs, err := fields(b)
	if err != nil {
		return t, false
	}
	for _, f := range fs {
		switch f.num {
		case 1:
			if f.typ == protowire.VarintType {
				t.dims = append(t.dims, f.x)
			} else if f.typ == protowire.BytesType {
				for p := f.val; len(p) > 0; {
					d, m := protowire.ConsumeVarint(p)
					if m < 0 {
						return t, false
					}
					t.dims, p = append(t.dims, d), p[m:]
				}
			}
		case 2:
			t.typ = f.x
		case 4, 7: // float_data, int64_data
			if f.typ != protowire.BytesType {
				return t, false // unpacked: not written by exporters
			}
			t.data = f.val
		case 8:
			t.name = string(f.val)
		case 9:
			t.data = f.val
		case 13, 14: // external data
			return t, false
		}
	}
	return t, true
}

// slopeValues returns the values of a float tensor of shape [C,1,1] (or
// [1,C,1,1]) stored inline, or nil for anything else.
func slopeValues(t onnxTensor) []float32 {
	dims := t.dims
	if len(dims) == 4 && dims[0] == 1 { // [1,C,1,1], as the converter writes NCHW constants
		dims = dims[1:]
	}
	if len(dims) != 3 || dims[1] != 1 || dims[2] != 1 || dims[0] == 0 {
		return nil
	}
	return t.floats()
}

// floats returns a float tensor's values, or nil when it is another type
// or its data does not hold the product of its dims.
func (t onnxTensor) floats() []float32 {
	n := uint64(1)
	for _, d := range t.dims {
		n *= d
	}
	if t.typ != tensorFloat || uint64(len(t.data)) != 4*n {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*i:]))
	}
	return v
}

// A GraphProto read for a rewrite: its fields in order, the node of each
// node field (field 1; zero for the others), how many node inputs read
// each tensor and the index of a node reading it (the only one when uses
// is 1), and the initializers (field 5) this package can read, by name.
type parsedGraph struct {
	gf     []pbField
	nodes  []onnxNode
	uses   map[string]int
	reader map[string]int
	inits  map[string]onnxTensor
}

func parseGraph(graph []byte) (*parsedGraph, error) {
	gf, err := fields(graph)
	if err != nil {
		return nil, err
	}
	g := &parsedGraph{gf: gf, nodes: make([]onnxNode, len(gf)), uses: map[string]int{}, reader: map[string]int{}, inits: map[string]onnxTensor{}}
	for i, f := range gf {
		switch f.num {
		case 1:
			if g.nodes[i], err = parseNode(f.val); err != nil {
				return nil, err
			}
			for _, in := range g.nodes[i].in {
				g.uses[in]++
				g.reader[in] = i
			}
		case 5:
			if t, ok := parseTensor(f.val); ok {
				g.inits[t.name] = t
			}
		}
	}
	return g, nil
}

// initializers returns the graph's initializer fields in order, without
// those named in dropped that no node reads any more.
func (g *parsedGraph) initializers(dropped map[string]bool) []byte {
	var out []byte
	for _, f := range g.gf {
		if f.num != 5 {
			continue
		}
		if t, ok := parseTensor(f.val); ok && dropped[t.name] && g.uses[t.name] == 0 {
			continue
		}
		out = append(out, f.raw...)
	}
	return out
}

func rewriteGraph(graph []byte) ([]byte, int, error) {
	pg, err := parseGraph(graph)
	if err != nil {
		return nil, 0, err
	}
	gf, nodes, uses := pg.gf, pg.nodes, pg.uses
	slopes := map[string][]float32{}
	for name, t := range pg.inits {
		if v := slopeValues(t); v != nil {
			slopes[name] = v
		}
	}
	var g, inits []byte
	node := func(op string, in []string, out, name string, attr []byte) {
		g = appendNode(g, op, in, out, name, attr)
	}
	tensor := func(name string, v []float32) {
		inits = appendFloatTensor(inits, name, []uint64{uint64(len(v))}, v) // [C], as BatchNormalization takes
	}
	const eps = 1.0 / (1 << 17) // 1-eps and (1-eps)+eps are exact in float32
	epsilon := appendString(nil, 1, "epsilon")
	epsilon = protowire.AppendTag(epsilon, 2, protowire.Fixed32Type)
	epsilon = protowire.AppendFixed32(epsilon, math.Float32bits(eps))
	epsilon = protowire.AppendTag(epsilon, 20, protowire.VarintType)
	epsilon = protowire.AppendVarint(epsilon, 1) // AttributeProto.FLOAT
	rewritten := map[string]bool{}
	k := 0
	for i, f := range gf {
		if f.num == 5 {
			continue // initializers: written after the nodes
		}
		nd := nodes[i]
		var a []float32
		if f.num == 1 && nd.op == "PRelu" && nd.domain == "" && len(nd.in) == 2 && len(nd.out) == 1 {
			a = slopes[nd.in[1]]
		}
		if a == nil {
			g = append(g, f.raw...)
			continue
		}
		k++
		p := fmt.Sprintf("trustid_prelu%d_", k)
		zero, unit, rest := make([]float32, len(a)), make([]float32, len(a)), make([]float32, len(a))
		atMostOne := true
		for c, x := range a {
			unit[c], rest[c] = 1-eps, 1-x
			atMostOne = atMostOne && x <= 1
		}
		tensor(p+"a", a)
		tensor(p+"rest", rest)
		tensor(p+"zero", zero)
		tensor(p+"var", unit)
		bn := func(x, scale, out string) {
			node("BatchNormalization", []string{x, scale, p + "zero", p + "zero", p + "var"}, out, out, epsilon)
		}
		y := nd.in[0]
		if atMostOne { // a*y + Relu((1-a)*y): the Relu fuses into the second convolution
			bn(y, p+"rest", p+"ry")
			node("Relu", []string{p + "ry"}, p+"r", p+"r", nil)
		} else { // a*y + (1-a)*Relu(y)
			node("Relu", []string{y}, p+"relu", p+"relu", nil)
			bn(p+"relu", p+"rest", p+"r")
		}
		bn(y, p+"a", p+"ay")
		node("Add", []string{p + "ay", p + "r"}, nd.out[0], p+"add", nil)
		uses[nd.in[1]]--
		rewritten[nd.in[1]] = true
	}
	if k == 0 {
		return graph, 0, nil
	}
	// The slopes no node reads any more go.
	return append(append(g, pg.initializers(rewritten)...), inits...), k, nil
}

// appendNode appends to a GraphProto a node (field 1) with one output and
// an attribute (AttributeProto bytes) unless attr is nil.
func appendNode(g []byte, op string, in []string, out, name string, attr []byte) []byte {
	var b []byte
	for _, s := range in {
		b = appendString(b, 1, s)
	}
	b = appendString(b, 2, out)
	b = appendString(b, 3, name)
	b = appendString(b, 4, op)
	if attr != nil {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, attr)
	}
	g = protowire.AppendTag(g, 1, protowire.BytesType)
	return protowire.AppendBytes(g, b)
}

// appendFloatTensor appends to a GraphProto an initializer (field 5): a
// float tensor of the given dims holding v as raw data.
func appendFloatTensor(g []byte, name string, dims []uint64, v []float32) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, d)
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, tensorFloat)
	b = appendString(b, 8, name)
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	g = protowire.AppendTag(g, 5, protowire.BytesType)
	return protowire.AppendBytes(g, b)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
