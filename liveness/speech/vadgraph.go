package speech

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Silero VAD v4 (silero_vad.onnx) runs once per 512-sample chunk (94 times
// for a 3 s recording), carrying its LSTM state from chunk to chunk, and
// the exported graph picks its 16 kHz or 8 kHz model with an If on the sr
// input and works out batch and time sizes with more If, Shape and Gather
// nodes on every run: about 125 us of CPU a chunk. But the state enters
// only at the LSTMs: everything before them (the STFT, the adaptive
// normalisation, the convolutional encoder, ending in vadEncoded [n,64,1])
// sees one chunk alone. splitVAD inlines the branches the 16 kHz path takes
// and cuts the graph there, so that the front end runs the encoder once on
// all the chunks of a recording as one batch and only the LSTMs and the
// decoder chunk by chunk (about 20 us each). The nodes and weights are the
// exported graph's; run on one chunk at a time the halves give its
// probabilities bit for bit, and batched within float rounding, the kernels
// summing in another order (TestSplitVADMatchesExported). It took the VAD of
// a 3 s GRID clip from 11.4-12.5 to 7.6-7.8 ms of CPU
// (BenchmarkVoiceActivity3s). Making the STFT one long convolution over the
// chunks laid end to end was tried and saved nothing.
//
// ONNX protobuf field numbers used (besides embgraph.go's): NodeProto input
// 1, output 2, name 3, op_type 4, attribute 5; AttributeProto name 1, g 6;
// GraphProto name 2; TypeProto.Tensor shape 2; TensorShapeProto.dim 1;
// Dimension dim_value 1, dim_param 2.

const (
	vadModelName = "silero_vad.onnx"
	vadInputName = "input"
)

// vadBranches are the branches the If nodes of the 16 kHz path take for
// input [n,512] and state [2,1,64]: the 16 kHz model (If_25 on sr), the
// Squeeze of the padded input to [n,1,704] (If_69, on its channel
// dimension), the spectrogram already 3-d (If_106), the LSTMs started from
// the given state (If_177, h not empty), the Squeeze of the sigmoid's
// channel (If_492). Taking them statically leaves one flat graph.
var vadBranches = map[string]string{
	"If_25":  "then_branch",
	"If_69":  "then_branch",
	"If_106": "else_branch",
	"If_177": "then_branch",
	"If_492": "then_branch",
}

// inlineIfs replaces each If node of graph by the nodes of the branch pick
// names for it, recursively, writing the If's outputs, with the branch's
// initializers moved up. An If not in pick is an error, and so is a value
// defined twice.
func inlineIfs(graph []byte, pick map[string]string) ([]byte, error) {
	gf, err := pbFields(graph)
	if err != nil {
		return nil, err
	}
	var nodes, inits, rest []byte
	for _, f := range gf {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			nf, err := pbFields(f.val)
			if err != nil {
				return nil, err
			}
			if pbString(nf, 4) != "If" {
				nodes = append(nodes, f.raw...)
				continue
			}
			n, in, err := inlineIf(nf, pick)
			if err != nil {
				return nil, err
			}
			nodes, inits = append(nodes, n...), append(inits, in...)
		case f.num == 5 && f.typ == protowire.BytesType:
			inits = append(inits, f.raw...)
		default:
			rest = append(rest, f.raw...)
		}
	}
	// Every value is defined once (the exporter numbers them across
	// subgraphs; an inlined branch must not shadow an outer value).
	defined := map[string]bool{}
	for _, b := range [][]byte{nodes, inits} {
		fs, err := pbFields(b)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			xf, err := pbFields(f.val)
			if err != nil {
				return nil, err
			}
			num := protowire.Number(2) // node outputs
			if f.num == 5 {
				num = 8 // initializer name
			}
			for _, x := range xf {
				if x.num == num && x.typ == protowire.BytesType && len(x.val) > 0 {
					if defined[string(x.val)] {
						return nil, fmt.Errorf("value %q defined twice after inlining", x.val)
					}
					defined[string(x.val)] = true
				}
			}
		}
	}
	return append(append(nodes, inits...), rest...), nil
}

// inlineIf returns the nodes (each a GraphProto field 1) and initializers
// (field 5) that replace the If node nf: the branch pick names for it,
// inlined recursively, its nodes writing the If's outputs.
func inlineIf(nf []pbField, pick map[string]string) (nodes, inits []byte, err error) {
	name := pbString(nf, 3)
	branch, ok := pick[name]
	if !ok {
		return nil, nil, fmt.Errorf("If node %q has no static branch", name)
	}
	var sub []byte
	var outs []string
	for _, a := range nf {
		switch {
		case a.num == 2 && a.typ == protowire.BytesType:
			outs = append(outs, string(a.val))
		case a.num == 5 && a.typ == protowire.BytesType:
			af, err := pbFields(a.val)
			if err != nil {
				return nil, nil, err
			}
			if pbString(af, 1) != branch {
				continue
			}
			for _, x := range af {
				if x.num == 6 && x.typ == protowire.BytesType {
					sub = x.val
				}
			}
		}
	}
	if sub == nil {
		return nil, nil, fmt.Errorf("If node %q has no %s", name, branch)
	}
	if sub, err = inlineIfs(sub, pick); err != nil {
		return nil, nil, err
	}
	sf, err := pbFields(sub)
	if err != nil {
		return nil, nil, err
	}
	var subOuts []string
	var subNodes [][]pbField
	for _, x := range sf {
		switch {
		case x.num == 1 && x.typ == protowire.BytesType:
			xf, err := pbFields(x.val)
			if err != nil {
				return nil, nil, err
			}
			subNodes = append(subNodes, xf)
		case x.num == 5 && x.typ == protowire.BytesType:
			inits = append(inits, x.raw...)
		case x.num == 12 && x.typ == protowire.BytesType:
			vf, err := pbFields(x.val)
			if err != nil {
				return nil, nil, err
			}
			subOuts = append(subOuts, pbString(vf, 1))
		}
	}
	if len(subOuts) != len(outs) {
		return nil, nil, fmt.Errorf("If node %q: %d outputs, branch has %d", name, len(outs), len(subOuts))
	}
	// The branch's nodes write the If's outputs under the If's
	// names (an Identity per output instead made ONNX Runtime
	// 1.17 return a wrong cn: its buffers were reused).
	rename := map[string]string{}
	produced := map[string]bool{}
	for _, nf := range subNodes {
		for _, x := range nf {
			if x.num == 2 && x.typ == protowire.BytesType {
				produced[string(x.val)] = true
			}
		}
	}
	for i, o := range subOuts {
		if !produced[o] || rename[o] != "" {
			return nil, nil, fmt.Errorf("If node %q: branch output %q is not a node output of its own", name, o)
		}
		rename[o] = outs[i]
	}
	for _, nf := range subNodes {
		var n []byte
		for _, x := range nf {
			if (x.num == 1 || x.num == 2) && x.typ == protowire.BytesType && rename[string(x.val)] != "" {
				n = appendBytesField(n, x.num, []byte(rename[string(x.val)]))
				continue
			}
			n = append(n, x.raw...)
		}
		nodes = appendBytesField(nodes, 1, n)
	}
	return nodes, inits, nil
}

// vadEncoded is the encoder's output, the LSTMs' input (before its
// Transpose).
const vadEncoded = "result.43"

// vadSteps is the decoder's probability per step ([1,t]: the sigmoid with
// its channel squeezed, before the ReduceMean over the steps).
const vadSteps = "612"

// vadModels are the two halves splitVAD makes.
type vadModels struct {
	enc, dec []byte
}

// splitVAD returns the encoder (input [n,512] -> vadEncoded [n,64,t]) and
// the decoder (vadEncoded [1,64,t], h, c -> vadSteps, hn, cn) of the VAD
// model, or an error when model is not the graph this expects.
func splitVAD(model []byte) (vadModels, error) {
	mf, err := pbFields(model)
	if err != nil {
		return vadModels{}, fmt.Errorf("%w: vad model: %w", ErrModel, err)
	}
	var graph []byte
	graphs := 0
	for _, f := range mf {
		if f.num == 7 && f.typ == protowire.BytesType {
			graph = f.val
			graphs++
		}
	}
	if graphs != 1 {
		return vadModels{}, fmt.Errorf("%w: vad model: %d graphs", ErrModel, graphs)
	}
	flat, err := inlineIfs(graph, vadBranches)
	if err != nil {
		return vadModels{}, fmt.Errorf("%w: vad model: %w", ErrModel, err)
	}
	enc, err := subgraph(flat, "vad_encoder", []valueSpec{{vadInputName, []int64{-1, vadChunk}}}, []string{vadEncoded})
	if err != nil {
		return vadModels{}, fmt.Errorf("%w: vad encoder: %w", ErrModel, err)
	}
	dec, err := subgraph(flat, "vad_decoder", []valueSpec{{vadEncoded, []int64{1, 64, -1}}, {"h", []int64{2, 1, 64}}, {"c", []int64{2, 1, 64}}},
		[]string{vadSteps, "hn", "cn"})
	if err != nil {
		return vadModels{}, fmt.Errorf("%w: vad decoder: %w", ErrModel, err)
	}
	withGraph := func(g []byte) []byte {
		var out []byte
		for _, f := range mf {
			if f.num == 7 && f.typ == protowire.BytesType {
				out = appendBytesField(out, 7, g)
				continue
			}
			out = append(out, f.raw...)
		}
		return out
	}
	return vadModels{enc: withGraph(enc), dec: withGraph(dec)}, nil
}

// valueSpec is a float graph input: its name and shape (-1: free).
type valueSpec struct {
	name  string
	shape []int64
}

func floatValueInfo(name string, shape []int64) []byte {
	tensor := protowire.AppendTag(nil, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, 1) // FLOAT
	if shape != nil {
		var dims []byte
		for i, d := range shape {
			var dim []byte
			if d >= 0 {
				dim = protowire.AppendTag(nil, 1, protowire.VarintType)
				dim = protowire.AppendVarint(dim, uint64(d))
			} else {
				dim = appendBytesField(nil, 2, fmt.Appendf(nil, "%s_%d", name, i)) // dim_param
			}
			dims = appendBytesField(dims, 1, dim)
		}
		tensor = appendBytesField(tensor, 2, dims)
	}
	vi := appendBytesField(nil, 1, []byte(name))
	return appendBytesField(vi, 2, appendBytesField(nil, 1, tensor))
}

// subgraph returns the graph of the nodes of flat (a graph without
// subgraphs) that compute outputs from inputs and initializers, with those
// inputs and outputs; an error when they need any other value.
func subgraph(flat []byte, name string, inputs []valueSpec, outputs []string) ([]byte, error) {
	gf, err := pbFields(flat)
	if err != nil {
		return nil, err
	}
	type node struct {
		raw     []byte
		in, out []string
	}
	var nodes []node
	inits := map[string][]byte{}
	producer := map[string]int{}
	for _, f := range gf {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			nf, err := pbFields(f.val)
			if err != nil {
				return nil, err
			}
			n := node{raw: f.raw}
			for _, x := range nf {
				if x.typ != protowire.BytesType {
					continue
				}
				switch x.num {
				case 1:
					n.in = append(n.in, string(x.val))
				case 2:
					n.out = append(n.out, string(x.val))
				}
			}
			for _, o := range n.out {
				producer[o] = len(nodes)
			}
			nodes = append(nodes, n)
		case f.num == 5 && f.typ == protowire.BytesType:
			tf, err := pbFields(f.val)
			if err != nil {
				return nil, err
			}
			inits[pbString(tf, 8)] = f.raw
		}
	}
	given := map[string]bool{"": true} // "" is an omitted optional input
	for _, in := range inputs {
		given[in.name] = true
	}
	keep := map[int]bool{}
	usedInits := map[string]bool{}
	var visit func(v string) error
	visit = func(v string) error {
		if given[v] {
			return nil
		}
		if _, ok := inits[v]; ok {
			usedInits[v] = true
			return nil
		}
		i, ok := producer[v]
		if !ok {
			return fmt.Errorf("value %q is neither computed, an initializer nor an input", v)
		}
		if keep[i] {
			return nil
		}
		keep[i] = true
		for _, in := range nodes[i].in {
			if err := visit(in); err != nil {
				return err
			}
		}
		return nil
	}
	for _, o := range outputs {
		if err := visit(o); err != nil {
			return nil, err
		}
	}
	out := appendBytesField(nil, 2, []byte(name))
	for i, n := range nodes { // in the original, topological, order
		if keep[i] {
			out = append(out, n.raw...)
		}
	}
	for _, f := range gf { // initializers in the original order
		if f.num != 5 || f.typ != protowire.BytesType {
			continue
		}
		tf, _ := pbFields(f.val)
		if usedInits[pbString(tf, 8)] {
			out = append(out, f.raw...)
		}
	}
	for _, in := range inputs {
		out = appendBytesField(out, 11, floatValueInfo(in.name, in.shape))
	}
	for _, o := range outputs {
		out = appendBytesField(out, 12, floatValueInfo(o, nil))
	}
	return out, nil
}
