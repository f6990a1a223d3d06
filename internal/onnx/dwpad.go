package onnx

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// DepthwiseBlock is the channel multiple RewriteDepthwisePad pads to: ONNX
// Runtime's NCHWc block on AVX-512 (16 floats; 8 on AVX2 divides it).
const DepthwiseBlock = 16

// RewriteDepthwisePad pads, in an ONNX model, every inverted-residual
// bottleneck whose inner channel count C is not a multiple of
// DepthwiseBlock up to the next multiple C': the 1x1 expanding Conv gets
// C'-C more filters of zeros (bias 0), the PRelus C'-C more slopes, the
// depthwise 3x3 Conv C'-C more groups of zeros (group C'), and the 1x1
// projecting Conv C'-C more input columns of zeros. It returns the new
// model and how many bottlenecks it padded. The pattern, with every
// weight, bias and slope an initializer read only there and every tensor
// between read only by the next node:
//
//	Conv(1x1, C filters) -> PRelu([C,1,1]) -> Conv(depthwise, group C) -> PRelu([C,1,1]) -> Conv(1x1, C inputs)
//
// Why: ONNX Runtime (1.17) runs a depthwise convolution in its blocked
// NCHWc layout only when its channels fill whole blocks. The anti-spoof
// net (fr_liveness, a pruned MiniFASNet) has bottlenecks of 13, 26, 52,
// 77, 103 and 231 channels: each left the layout and came back (25
// ReorderOutput and 18 ReorderInput a run), its PRelus ran unfused, and
// the 103-channel depthwise convolution at 64x64 alone took a tenth of
// the net in the plain NCHW kernel.
//
// The added channels are zero at every step (zero weights and bias,
// PRelu(0) = 0) and add zero terms to the projection: the outputs are the
// original ones up to the order the kernels sum in.
func RewriteDepthwisePad(model []byte) ([]byte, int, error) {
	return rewriteModel(model, padDepthwise)
}

func padDepthwise(graph []byte) ([]byte, int, error) {
	pg, err := parseGraph(graph)
	if err != nil {
		return nil, 0, err
	}
	gf, nodes, uses, inits := pg.gf, pg.nodes, pg.uses, pg.inits
	// floats returns an initializer's values when it is a float tensor of
	// the given dims read by one node only.
	floats := func(name string, dims ...uint64) []float32 {
		t, ok := inits[name]
		if !ok || uses[name] != 1 || !slices.Equal(t.dims, dims) {
			return nil
		}
		return t.floats()
	}
	// next returns the index of the only node reading tensor t.
	next := func(t string) (int, bool) {
		i, ok := pg.reader[t]
		return i, ok && uses[t] == 1
	}
	is := func(i int, op string, ins int) bool {
		nd := nodes[i]
		return gf[i].num == 1 && nd.op == op && nd.domain == "" && len(nd.in) == ins && len(nd.out) == 1
	}
	newInit := map[string][]byte{} // initializer name -> its padded TensorProto field
	newNode := map[int][]byte{}    // node index -> its rewritten NodeProto field
	k := 0
	for e := range gf {
		if !is(e, "Conv", 3) || nodeInts(gf[e].val)["group"] > 1 {
			continue
		}
		ew := inits[nodes[e].in[1]]
		if len(ew.dims) != 4 || ew.dims[2] != 1 || ew.dims[3] != 1 || ew.dims[0]%DepthwiseBlock == 0 {
			continue
		}
		c, cin := ew.dims[0], ew.dims[1]
		p1, ok1 := next(nodes[e].out[0])
		if !ok1 || !is(p1, "PRelu", 2) {
			continue
		}
		d, ok2 := next(nodes[p1].out[0])
		if !ok2 || !is(d, "Conv", 3) || nodeInts(gf[d].val)["group"] != int64(c) {
			continue
		}
		p2, ok3 := next(nodes[d].out[0])
		if !ok3 || !is(p2, "PRelu", 2) {
			continue
		}
		j, ok4 := next(nodes[p2].out[0])
		if !ok4 || !is(j, "Conv", 2) && !is(j, "Conv", 3) || nodeInts(gf[j].val)["group"] > 1 {
			continue
		}
		jw := inits[nodes[j].in[1]]
		if len(jw.dims) != 4 || jw.dims[1] != c || jw.dims[2] != 1 || jw.dims[3] != 1 {
			continue
		}
		cout := jw.dims[0]
		dw := inits[nodes[d].in[1]]
		if len(dw.dims) != 4 || dw.dims[0] != c || dw.dims[1] != 1 {
			continue
		}
		kh, kw := dw.dims[2], dw.dims[3]
		eW, eB := floats(nodes[e].in[1], c, cin, 1, 1), floats(nodes[e].in[2], c)
		s1, s2 := prSlope(inits, uses, nodes[p1].in[1], c), prSlope(inits, uses, nodes[p2].in[1], c)
		dW, dB := floats(nodes[d].in[1], c, 1, kh, kw), floats(nodes[d].in[2], c)
		jW := floats(nodes[j].in[1], cout, c, 1, 1)
		if eW == nil || eB == nil || s1 == nil || s2 == nil || dW == nil || dB == nil || jW == nil {
			continue
		}
		cp := (c + DepthwiseBlock - 1) / DepthwiseBlock * DepthwiseBlock
		grow := func(v []float32, n uint64) []float32 { return append(v, make([]float32, n-uint64(len(v)))...) }
		newInit[nodes[e].in[1]] = appendFloatTensor(nil, nodes[e].in[1], []uint64{cp, cin, 1, 1}, grow(eW, cp*cin))
		newInit[nodes[e].in[2]] = appendFloatTensor(nil, nodes[e].in[2], []uint64{cp}, grow(eB, cp))
		newInit[nodes[p1].in[1]] = appendFloatTensor(nil, nodes[p1].in[1], prDims(inits[nodes[p1].in[1]], cp), grow(s1, cp))
		newInit[nodes[d].in[1]] = appendFloatTensor(nil, nodes[d].in[1], []uint64{cp, 1, kh, kw}, grow(dW, cp*kh*kw))
		newInit[nodes[d].in[2]] = appendFloatTensor(nil, nodes[d].in[2], []uint64{cp}, grow(dB, cp))
		newInit[nodes[p2].in[1]] = appendFloatTensor(nil, nodes[p2].in[1], prDims(inits[nodes[p2].in[1]], cp), grow(s2, cp))
		wide := make([]float32, cout*cp)
		for o := range cout {
			copy(wide[o*cp:], jW[o*c:(o+1)*c])
		}
		newInit[nodes[j].in[1]] = appendFloatTensor(nil, nodes[j].in[1], []uint64{cout, cp, 1, 1}, wide)
		newNode[d] = withIntAttr(gf[d], "group", int64(cp))
		k++
	}
	if k == 0 {
		return graph, 0, nil
	}
	var g []byte
	for i, f := range gf {
		switch {
		case f.num == 5:
			if t, ok := parseTensor(f.val); ok && newInit[t.name] != nil {
				g = append(g, newInit[t.name]...)
				continue
			}
		case newNode[i] != nil:
			g = append(g, newNode[i]...)
			continue
		}
		g = append(g, f.raw...)
	}
	return g, k, nil
}

// prSlope is a PRelu slope of C values ([C,1,1] or [1,C,1,1]) read by one
// node only, or nil.
func prSlope(inits map[string]onnxTensor, uses map[string]int, name string, c uint64) []float32 {
	t, ok := inits[name]
	if !ok || uses[name] != 1 {
		return nil
	}
	if v := slopeValues(t); uint64(len(v)) == c {
		return v
	}
	return nil
}

// prDims is a slope tensor's dims with its channel count set to c, in the
// tensor's own rank ([c,1,1] or [1,c,1,1]).
func prDims(t onnxTensor, c uint64) []uint64 {
	if len(t.dims) == 4 {
		return []uint64{1, c, 1, 1}
	}
	return []uint64{c, 1, 1}
}

// nodeInts returns a NodeProto's integer attributes by name.
func nodeInts(node []byte) map[string]int64 {
	out := map[string]int64{}
	attrs, _ := attributes(node)
	for _, a := range attrs {
		if a.isInt {
			out[a.name] = a.i
		}
	}
	return out
}

// withIntAttr returns the graph's node field f with its integer attribute
// name set to v (the other fields as they were).
func withIntAttr(f pbField, name string, v int64) []byte {
	fs, _ := fields(f.val)
	var b []byte
	for _, x := range fs {
		if x.num != 5 || parseAttr(x.val).name != name {
			b = append(b, x.raw...)
		}
	}
	a := appendString(nil, 1, name)
	a = protowire.AppendTag(a, 3, protowire.VarintType)
	a = protowire.AppendVarint(a, uint64(v))
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	a = protowire.AppendVarint(a, 2) // AttributeProto.INT
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendBytes(b, a)
	out := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(out, b)
}

// An AttributeProto's name (field 1), integer (field 3, isInt when set)
// and string (field 4).
type onnxAttr struct {
	name, s string
	i       int64
	isInt   bool
}

func parseAttr(b []byte) onnxAttr {
	var a onnxAttr
	fs, err := fields(b)
	if err != nil {
		return a
	}
	for _, f := range fs {
		switch f.num {
		case 1:
			a.name = string(f.val)
		case 3:
			a.i, a.isInt = int64(f.x), true
		case 4:
			a.s = string(f.val)
		}
	}
	return a
}

// attributes returns a NodeProto's attributes (field 5).
func attributes(node []byte) ([]onnxAttr, error) {
	fs, err := fields(node)
	if err != nil {
		return nil, err
	}
	var out []onnxAttr
	for _, f := range fs {
		if f.num == 5 {
			out = append(out, parseAttr(f.val))
		}
	}
	return out, nil
}
