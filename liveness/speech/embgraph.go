package speech

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The embedding model (openWakeWord's embedding_model.onnx, Google's
// speech_embedding) is convolutional in time: its convolutions are "valid"
// along time and three of its poolings halve time (the others pool
// frequency only), 8 mel frames in all, so on 76+8k mel frames it computes
// the k+1 windows 8 frames apart that would otherwise run one by one, and
// computes once every intermediate value that overlapping windows share. Only the
// exported file pins the time length: a Reshape to [-1,1,76,32] at the
// input, one to [-1,1,1,96] at the output, and the input and output shapes.
// convolutionalEmbedding rewrites those (and nothing else) so that the
// model takes [1,T,32,1] and returns [1,96,(T-76)/8+1,1]; the arithmetic of
// every window is unchanged.
//
// ONNX protobuf field numbers used: ModelProto.graph 7; GraphProto.node 1,
// initializer 5, input 11, output 12; TensorProto.data_type 2, name 8,
// raw_data 9; ValueInfoProto.name 1, type 2; TypeProto.tensor_type 1;
// TypeProto.Tensor.elem_type 1.

// Reshape targets of the exported model, and what they become.
var embReshapes = []struct {
	name     string
	from, to [4]int64
}{
	{name: "new_shape__262", from: [4]int64{-1, 1, embWindow, melBins}, to: [4]int64{1, 1, -1, melBins}},
	{name: "new_shape__273", from: [4]int64{-1, 1, 1, EmbeddingDim}, to: [4]int64{1, EmbeddingDim, -1, 1}},
}

const (
	embInputName  = "input_1"
	embOutputName = "conv2d_19"
)

func int64Raw(v [4]int64) []byte {
	b := make([]byte, 0, 32)
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

type pbField struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the whole field, tag included
	val []byte // the payload of a bytes field
}

func pbFields(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		f := pbField{num: num, typ: typ, raw: b[:n+m]}
		if typ == protowire.BytesType {
			f.val, _ = protowire.ConsumeBytes(b[n:])
		}
		out = append(out, f)
		b = b[n+m:]
	}
	return out, nil
}

func pbString(fs []pbField, num protowire.Number) string {
	for _, f := range fs {
		if f.num == num && f.typ == protowire.BytesType {
			return string(f.val)
		}
	}
	return ""
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// convolutionalEmbedding returns the embedding model with its time length
// free (see above), or an error when model is not the exported graph this
// expects.
func convolutionalEmbedding(model []byte) ([]byte, error) {
	mf, err := pbFields(model)
	if err != nil {
		return nil, fmt.Errorf("%w: embedding model: %w", ErrModel, err)
	}
	var out []byte
	graphs := 0
	for _, f := range mf {
		if f.num != 7 || f.typ != protowire.BytesType {
			out = append(out, f.raw...)
			continue
		}
		g, err := embGraph(f.val)
		if err != nil {
			return nil, fmt.Errorf("%w: embedding model: %w", ErrModel, err)
		}
		out = appendBytesField(out, 7, g)
		graphs++
	}
	if graphs != 1 {
		return nil, fmt.Errorf("%w: embedding model: %d graphs", ErrModel, graphs)
	}
	return out, nil
}

func embGraph(graph []byte) ([]byte, error) {
	gf, err := pbFields(graph)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var out []byte
	for _, f := range gf {
		switch {
		case f.num == 5 && f.typ == protowire.BytesType:
			t, ok, err := embReshape(f.val)
			if err != nil {
				return nil, err
			}
			if ok {
				done[pbStringMust(f.val, 8)] = true
				out = appendBytesField(out, 5, t)
				continue
			}
		case (f.num == 11 || f.num == 12) && f.typ == protowire.BytesType:
			vf, err := pbFields(f.val)
			if err != nil {
				return nil, err
			}
			name := pbString(vf, 1)
			if (f.num == 11 && name == embInputName) || (f.num == 12 && name == embOutputName) {
				// A float tensor of any shape: ONNX Runtime infers it.
				tensor := protowire.AppendTag(nil, 1, protowire.VarintType)
				tensor = protowire.AppendVarint(tensor, 1) // FLOAT
				typ := appendBytesField(nil, 1, tensor)
				vi := appendBytesField(nil, 1, []byte(name))
				vi = appendBytesField(vi, 2, typ)
				out = appendBytesField(out, f.num, vi)
				done[name] = true
				continue
			}
		}
		out = append(out, f.raw...)
	}
	for _, n := range []string{embReshapes[0].name, embReshapes[1].name, embInputName, embOutputName} {
		if !done[n] {
			return nil, fmt.Errorf("no %s in the graph", n)
		}
	}
	return out, nil
}

func pbStringMust(b []byte, num protowire.Number) string {
	fs, _ := pbFields(b)
	return pbString(fs, num)
}

// embReshape rewrites the initializer t when it is one of embReshapes
// holding the expected values.
func embReshape(t []byte) ([]byte, bool, error) {
	tf, err := pbFields(t)
	if err != nil {
		return nil, false, err
	}
	name := pbString(tf, 8)
	for _, r := range embReshapes {
		if name != r.name {
			continue
		}
		raw := []byte(nil)
		for _, f := range tf {
			if f.num == 9 && f.typ == protowire.BytesType {
				raw = f.val
			}
		}
		if !bytes.Equal(raw, int64Raw(r.from)) {
			return nil, false, fmt.Errorf("%s is not %v", name, r.from)
		}
		var out []byte
		for _, f := range tf {
			if f.num == 9 {
				out = appendBytesField(out, 9, int64Raw(r.to))
				continue
			}
			out = append(out, f.raw...)
		}
		return out, true, nil
	}
	return nil, false, nil
}
