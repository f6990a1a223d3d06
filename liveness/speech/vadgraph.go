package speech

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Silero VAD v4 (silero_vad.onnx) is exported with every shape free and the
// sample rate as an input: the graph picks its 16 kHz or 8 kHz model with an
// If on sr, and inside it more If, Shape and Gather nodes work out the batch
// and time sizes on every run, 94 runs per 3 s recording. staticVAD fixes
// what the front end always passes (input [1,512], h and c [2,1,64], sr
// 16000 as a constant instead of an input) and inlines the branches those
// values take (vadBranches), so that ONNX Runtime resolves the shape
// arithmetic once when the session is created. The nodes and weights that
// compute the probability are unchanged, and so are the probabilities, bit
// for bit (TestStaticVADMatchesExported). It saved about a tenth of the VAD's
// CPU (BenchmarkVoiceActivity3s): most of a run's ~100 us is ONNX Runtime's
// cost per node, not the If nodes.
//
// ONNX protobuf field numbers used (besides embgraph.go's): NodeProto input
// 1, output 2, name 3, op_type 4, attribute 5; AttributeProto name 1, g 6;
// TypeProto.Tensor shape 2; TensorShapeProto.dim 1; Dimension.dim_value 1;
// TensorProto dims 1.

const (
	vadModelName = "silero_vad.onnx"
	vadInputName = "input"
	vadRateName  = "sr"
)

// vadStatic are the shapes staticVAD gives the graph's float inputs.
var vadStatic = map[string][]int64{
	vadInputName: {1, vadChunk},
	"h":          {2, 1, 64},
	"c":          {2, 1, 64},
}

// staticVAD returns the VAD model with fixed input shapes and sr a constant
// SampleRate (see above), or an error when model is not the graph this
// expects.
func staticVAD(model []byte) ([]byte, error) {
	mf, err := pbFields(model)
	if err != nil {
		return nil, fmt.Errorf("%w: vad model: %w", ErrModel, err)
	}
	var out []byte
	graphs := 0
	for _, f := range mf {
		if f.num != 7 || f.typ != protowire.BytesType {
			out = append(out, f.raw...)
			continue
		}
		g, err := vadGraph(f.val)
		if err != nil {
			return nil, fmt.Errorf("%w: vad model: %w", ErrModel, err)
		}
		out = appendBytesField(out, 7, g)
		graphs++
	}
	if graphs != 1 {
		return nil, fmt.Errorf("%w: vad model: %d graphs", ErrModel, graphs)
	}
	return out, nil
}

// vadBranches are the branches the If nodes of the 16 kHz path take at
// vadStatic's shapes: the 16 kHz model (If_25 on sr), the Squeeze of the
// padded input to [1,1,704] (If_69, batch dimension 1), the spectrogram
// already 3-d (If_106), the LSTM started from the given state (If_177, h
// not empty), the Squeeze of the sigmoid's channel (If_492). Taking them
// statically leaves one flat graph; TestStaticVADMatchesExported checks it
// against the exported one.
var vadBranches = map[string]string{
	"If_25":  "then_branch",
	"If_69":  "then_branch",
	"If_106": "else_branch",
	"If_177": "then_branch",
	"If_492": "then_branch",
}

func vadGraph(graph []byte) ([]byte, error) {
	graph, err := inlineIfs(graph, vadBranches, map[string]bool{})
	if err != nil {
		return nil, err
	}
	gf, err := pbFields(graph)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []byte
	for _, f := range gf {
		if f.num != 11 || f.typ != protowire.BytesType {
			out = append(out, f.raw...)
			continue
		}
		vf, err := pbFields(f.val)
		if err != nil {
			return nil, err
		}
		name := pbString(vf, 1)
		if name == vadRateName {
			// The input becomes a constant of the same shape the
			// front end passed: int64 [1].
			t := protowire.AppendTag(nil, 1, protowire.VarintType)
			t = protowire.AppendVarint(t, 1) // dims [1]
			t = protowire.AppendTag(t, 2, protowire.VarintType)
			t = protowire.AppendVarint(t, 7) // INT64
			t = appendBytesField(t, 8, []byte(vadRateName))
			t = appendBytesField(t, 9, binary.LittleEndian.AppendUint64(nil, SampleRate))
			out = appendBytesField(out, 5, t)
			done[name] = true
			continue
		}
		shape, ok := vadStatic[name]
		if !ok {
			out = append(out, f.raw...)
			continue
		}
		var dims []byte
		for _, d := range shape {
			dim := protowire.AppendTag(nil, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d))
			dims = appendBytesField(dims, 1, dim)
		}
		tensor := protowire.AppendTag(nil, 1, protowire.VarintType)
		tensor = protowire.AppendVarint(tensor, 1) // FLOAT
		tensor = appendBytesField(tensor, 2, dims)
		vi := appendBytesField(nil, 1, []byte(name))
		vi = appendBytesField(vi, 2, appendBytesField(nil, 1, tensor))
		out = appendBytesField(out, 11, vi)
		done[name] = true
	}
	for _, n := range []string{vadInputName, vadRateName, "h", "c"} {
		if !done[n] {
			return nil, fmt.Errorf("no input %s in the graph", n)
		}
	}
	return out, nil
}

// inlineIfs replaces each If node of graph named in pick by the nodes of the
// branch pick names, recursively, writing the If's outputs, with the
// branch's initializers moved up. Any If left is an
// error, and so is a value defined twice. inlined collects the If nodes done.
func inlineIfs(graph []byte, pick map[string]string, inlined map[string]bool) ([]byte, error) {
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
			name := pbString(nf, 3)
			branch, ok := pick[name]
			if !ok {
				return nil, fmt.Errorf("If node %q has no static branch", name)
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
						return nil, err
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
				return nil, fmt.Errorf("If node %q has no %s", name, branch)
			}
			if sub, err = inlineIfs(sub, pick, inlined); err != nil {
				return nil, err
			}
			sf, err := pbFields(sub)
			if err != nil {
				return nil, err
			}
			var subOuts []string
			var subNodes [][]pbField
			for _, x := range sf {
				switch {
				case x.num == 1 && x.typ == protowire.BytesType:
					xf, err := pbFields(x.val)
					if err != nil {
						return nil, err
					}
					subNodes = append(subNodes, xf)
				case x.num == 5 && x.typ == protowire.BytesType:
					inits = append(inits, x.raw...)
				case x.num == 12 && x.typ == protowire.BytesType:
					vf, err := pbFields(x.val)
					if err != nil {
						return nil, err
					}
					subOuts = append(subOuts, pbString(vf, 1))
				}
			}
			if len(subOuts) != len(outs) {
				return nil, fmt.Errorf("If node %q: %d outputs, branch has %d", name, len(outs), len(subOuts))
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
					return nil, fmt.Errorf("If node %q: branch output %q is not a node output of its own", name, o)
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
			inlined[name] = true
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
