package onnx

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// RewriteChannelPad rewrites, in an ONNX model, every Pad that only adds
// zero channels to an NCHW tensor (constant mode, value 0, pads
// [0,b,0,0, 0,e,0,0] from an initializer) into a 1x1 Conv whose weights
// copy input channel k to output channel b+k (weight 1) and give every
// other output channel weight 0, and returns the new model and how many
// Pads it rewrote. A Pad whose input's channel count it cannot tell (from
// a Conv's weights, a PRelu's per-channel slope or a BatchNormalization's
// scale, through the operators that keep the channels) is left alone.
//
// Why: the face mesh's residual blocks widen their shortcut this way
// (MaxPool, then channels 16 -> 32, 32 -> 64, 64 -> 128, as MediaPipe's
// channel_padding). ONNX Runtime (1.17) runs Conv, MaxPool, Add,
// BatchNormalization and Relu in its blocked NCHWc layout but not Pad:
// every block from the first Pad on left that layout before the Add and
// came back before the next convolution (14 ReorderOutput and 9
// ReorderInput a run, and the Adds, BatchNormalizations and Relus of the
// PRelu rewrite run unfused in NCHW). A Conv is NCHWc-able, so the whole
// network stays blocked, as its first stage already was.
//
// Each output is a sum of one input times 1 and the others times 0: the
// input value exactly (the sign of a zero aside), for finite inputs.
func RewriteChannelPad(model []byte) ([]byte, int, error) {
	return rewriteModel(model, rewriteChannelPads)
}

func rewriteChannelPads(graph []byte) ([]byte, int, error) {
	pg, err := parseGraph(graph)
	if err != nil {
		return nil, 0, err
	}
	gf, nodes, uses, inits := pg.gf, pg.nodes, pg.uses, pg.inits
	// channels[t] is the channel count of tensor t, where known; the nodes
	// are in topological order, as ONNX requires.
	channels := map[string]int{}
	known := func(t string) (int, bool) { c, ok := channels[t]; return c, ok && c > 0 }
	var g []byte
	var added []byte
	dropped := map[string]bool{}
	k := 0
	for i, f := range gf {
		if f.num == 5 {
			continue // initializers: written after the nodes
		}
		if f.num != 1 {
			g = append(g, f.raw...)
			continue
		}
		nd := nodes[i]
		out := ""
		if len(nd.out) == 1 {
			out = nd.out[0]
		}
		if nd.domain != "" || out == "" || len(nd.in) == 0 {
			g = append(g, f.raw...)
			continue
		}
		switch nd.op {
		case "Conv": // weights [M, C/group, kH, kW]
			if w, ok := inits[input(nd, 1)]; ok && len(w.dims) == 4 {
				channels[out] = int(w.dims[0])
			}
		case "PRelu":
			if c := len(slopeValues(inits[input(nd, 1)])); c > 0 {
				channels[out] = c
			} else if c, ok := known(nd.in[0]); ok {
				channels[out] = c
			}
		case "BatchNormalization": // scale [C]
			if s, ok := inits[input(nd, 1)]; ok && len(s.dims) == 1 {
				channels[out] = int(s.dims[0])
			}
		case "Relu", "MaxPool", "AveragePool", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "Identity":
			if c, ok := known(nd.in[0]); ok {
				channels[out] = c
			}
		case "Add", "Sub", "Mul":
			for _, in := range nd.in {
				if c, ok := known(in); ok {
					channels[out] = c
					break
				}
			}
		case "Pad":
			c, ok := known(nd.in[0])
			b, e, zero := channelPads(nd, f.val, inits)
			if !ok || !zero {
				break
			}
			k++
			w := fmt.Sprintf("trustid_chpad%d_w", k)
			cout := c + b + e
			v := make([]float32, cout*c)
			for j := range c {
				v[(b+j)*c+j] = 1
			}
			added = appendFloatTensor(added, w, []uint64{uint64(cout), uint64(c), 1, 1}, v)
			g = appendNode(g, "Conv", []string{nd.in[0], w}, out, fmt.Sprintf("trustid_chpad%d", k), nil)
			channels[out] = cout
			uses[nd.in[1]]--
			dropped[nd.in[1]] = true
			continue
		}
		g = append(g, f.raw...)
	}
	if k == 0 {
		return graph, 0, nil
	}
	// The pads no node reads any more go.
	return append(append(g, pg.initializers(dropped)...), added...), k, nil
}

// input is a node's i-th input's name, "" when it has fewer.
func input(nd onnxNode, i int) string {
	if i < len(nd.in) {
		return nd.in[i]
	}
	return ""
}

// channelPads reads a Pad node (node, its NodeProto bytes) and returns the
// channels it adds before (b) and after (e) the input's, with zero true
// only when that is all it does: a 4-D int64 pads initializer with
// nothing on the other axes, constant mode and no constant value (0).
func channelPads(nd onnxNode, node []byte, inits map[string]onnxTensor) (b, e int, zero bool) {
	if len(nd.in) < 2 || len(nd.in) > 3 || (len(nd.in) == 3 && nd.in[2] != "") {
		return 0, 0, false
	}
	attrs, err := attributes(node)
	if err != nil {
		return 0, 0, false
	}
	for _, a := range attrs {
		if a.name != "mode" || a.s != "constant" {
			return 0, 0, false
		}
	}
	t, ok := inits[nd.in[1]]
	if !ok || t.typ != tensorInt64 || len(t.dims) != 1 || t.dims[0] != 8 {
		return 0, 0, false
	}
	var p [8]int64
	if len(t.data) == 64 { // raw_data
		for i := range p {
			p[i] = int64(binary.LittleEndian.Uint64(t.data[8*i:]))
		}
	} else { // packed int64_data
		d := t.data
		for i := range p {
			x, m := protowire.ConsumeVarint(d)
			if m < 0 {
				return 0, 0, false
			}
			p[i], d = int64(x), d[m:]
		}
		if len(d) != 0 {
			return 0, 0, false
		}
	}
	for i, x := range p {
		if i != 1 && i != 5 && x != 0 {
			return 0, 0, false
		}
	}
	if p[1] < 0 || p[5] < 0 || p[1]+p[5] == 0 || p[1]+p[5] > 1<<16 {
		return 0, 0, false
	}
	return int(p[1]), int(p[5]), true
}
