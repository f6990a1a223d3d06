package tfliteconv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrUnsupported reports an operator or operand the converter does not
// handle; the message names it.
var ErrUnsupported = errors.New("tfliteconv: unsupported")

// Opset is the ONNX operator set the converter writes.
const Opset = 13

// Producer is written into the model's producer_name.
const Producer = "trustid tfliteconv"

// Convert translates a TFLite model's first subgraph into an ONNX model
// (opset 13, IR version 7). Same input, same bytes.
//
// Layout: TFLite tensors are NHWC, ONNX convolutions NCHW. Every 4-D
// activation inside the ONNX graph is NCHW; the graph's inputs and outputs
// keep TFLite's names and NHWC shapes, with a Transpose after each 4-D input
// and before each 4-D output, so a caller feeds and reads the model exactly
// as it would the TFLite one. Constants are permuted at conversion time
// (convolution kernels OHWI -> OIHW, depthwise 1HW(C*M) -> (C*M)1HW,
// broadcast operands NHWC -> NCHW).
//
// Float16 weights: TFLite stores them as float16 constants, each followed by
// a DEQUANTIZE to float32. The converter folds the pair into one float32
// initializer (the exact widening DEQUANTIZE computes at run time), so the
// ONNX graph runs in float32 throughout, as the TFLite interpreter does.
func Convert(data []byte) ([]byte, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	c := &converter{m: m, consts: map[int32][]float32{}, inits: map[string]bool{}, g: &graph{name: "tfliteconv"}}
	if err := c.run(); err != nil {
		return nil, err
	}
	doc := "converted from TFLite by " + Producer
	return model(c.g, Opset, Producer, doc), nil
}

type converter struct {
	m      *Model
	g      *graph
	names  []string
	io     map[int32]bool // graph inputs and outputs
	consts map[int32][]float32
	inits  map[string]bool
	nodes  int
}

func (c *converter) run() error {
	seen := map[string]bool{}
	c.names = make([]string, len(c.m.Tensors))
	for i, t := range c.m.Tensors {
		n := t.Name
		if n == "" || seen[n] {
			n = n + "#" + strconv.Itoa(i)
		}
		seen[n] = true
		c.names[i] = n
	}
	c.io = map[int32]bool{}
	for _, i := range c.m.Inputs {
		c.io[i] = true
		t := c.m.Tensors[i]
		if t.Type != Float32 {
			return fmt.Errorf("%w: input %s of type %d", ErrUnsupported, t.Name, t.Type)
		}
		c.g.inputs = append(c.g.inputs, valueInfo{name: c.names[i], dims: dims64(t.Shape), dtype: onnxFloat})
		if len(t.Shape) == 4 {
			c.node("Transpose", []string{c.names[i]}, []string{c.act(i)}, intsAttr("perm", 0, 3, 1, 2))
		}
	}
	for _, i := range c.m.Outputs {
		c.io[i] = true
	}
	for k, op := range c.m.Operators {
		if err := c.op(op); err != nil {
			return fmt.Errorf("operator %d (%s): %w", k, OpName(op.Code), err)
		}
	}
	for _, i := range c.m.Outputs {
		t := c.m.Tensors[i]
		c.g.outputs = append(c.g.outputs, valueInfo{name: c.names[i], dims: dims64(t.Shape), dtype: onnxFloat})
		if len(t.Shape) == 4 {
			c.node("Transpose", []string{c.act(i)}, []string{c.names[i]}, intsAttr("perm", 0, 2, 3, 1))
		}
	}
	return nil
}

// act is the ONNX name of tensor i as an activation inside the graph (NCHW
// when 4-D); graph inputs and outputs get a suffix, their own names being
// the NHWC ones.
func (c *converter) act(i int32) string {
	if c.io[i] && len(c.m.Tensors[i].Shape) == 4 {
		return c.names[i] + "/nchw"
	}
	return c.names[i]
}

func (c *converter) node(op string, in, out []string, attrs ...attr) {
	c.g.nodes = append(c.g.nodes, node{name: fmt.Sprintf("n%d_%s", c.nodes, op), op: op, inputs: in, outputs: out, attrs: attrs})
	c.nodes++
}

func (c *converter) init(t initializer) string {
	if !c.inits[t.name] {
		c.inits[t.name] = true
		c.g.inits = append(c.g.inits, t)
	}
	return t.name
}

func dims64(s []int32) []int64 {
	d := make([]int64, len(s))
	for i, v := range s {
		d[i] = int64(v)
	}
	return d
}

// constant returns tensor i's values as float32 (a folded DEQUANTIZE, or
// float32/float16 data), or ok false when it is not a constant.
func (c *converter) constant(i int32) ([]float32, bool) {
	if v, ok := c.consts[i]; ok {
		return v, true
	}
	t := c.m.Tensors[i]
	if t.Data == nil {
		return nil, false
	}
	n := 1
	for _, d := range t.Shape {
		n *= int(d)
	}
	switch t.Type {
	case Float32:
		if len(t.Data) != 4*n {
			return nil, false
		}
		v := make([]float32, n)
		for k := range v {
			v[k] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*k:]))
		}
		return v, true
	case Float16:
		if len(t.Data) != 2*n {
			return nil, false
		}
		v := make([]float32, n)
		for k := range v {
			v[k] = halfToFloat(binary.LittleEndian.Uint16(t.Data[2*k:]))
		}
		return v, true
	}
	return nil, false
}

// int32s returns an int32 constant's values.
func (c *converter) int32s(i int32) ([]int32, error) {
	t := c.m.Tensors[i]
	if t.Type != Int32 || t.Data == nil || len(t.Data)%4 != 0 {
		return nil, fmt.Errorf("%w: %s is not an int32 constant", ErrUnsupported, t.Name)
	}
	v := make([]int32, len(t.Data)/4)
	for k := range v {
		v[k] = int32(binary.LittleEndian.Uint32(t.Data[4*k:]))
	}
	return v, nil
}

// halfToFloat widens an IEEE 754 binary16 value exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalise.
	e := uint32(113)
	for frac&0x400 == 0 {
		frac <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
}

// operand returns the ONNX name of an input that is either an activation
// or a constant (then written as an initializer, NHWC -> NCHW when it
// broadcasts against a 4-D activation).
func (c *converter) operand(i int32, against4D bool) (string, error) {
	v, ok := c.constant(i)
	if !ok {
		if c.m.Tensors[i].Type != Float32 {
			return "", fmt.Errorf("%w: operand %s of type %d", ErrUnsupported, c.names[i], c.m.Tensors[i].Type)
		}
		return c.act(i), nil
	}
	shape := c.m.Tensors[i].Shape
	if !against4D || len(shape) > 4 {
		if against4D {
			return "", fmt.Errorf("%w: constant %s of rank %d", ErrUnsupported, c.names[i], len(shape))
		}
		return c.init(floatInit(c.names[i], dims64(shape), v)), nil
	}
	// Broadcast NHWC shape, left-padded to rank 4, permuted to NCHW.
	s := [4]int{1, 1, 1, 1}
	for k, d := range shape {
		s[4-len(shape)+k] = int(d)
	}
	out := make([]float32, len(v))
	for n := range s[0] {
		for h := range s[1] {
			for w := range s[2] {
				for ch := range s[3] {
					out[((n*s[3]+ch)*s[1]+h)*s[2]+w] = v[((n*s[1]+h)*s[2]+w)*s[3]+ch]
				}
			}
		}
	}
	return c.init(floatInit(c.names[i]+"/nchw", []int64{int64(s[0]), int64(s[3]), int64(s[1]), int64(s[2])}, out)), nil
}

// Fused activation functions (schema.fbs ActivationFunctionType).
const (
	actNone  = 0
	actRelu  = 1
	actRelu6 = 3
	actTanh  = 4
)

// emit writes op with its output to tensor out, followed by the fused
// activation when there is one.
func (c *converter) emit(op string, in []string, out int32, fused int8, attrs ...attr) error {
	name := c.act(out)
	if fused == actNone {
		c.node(op, in, []string{name}, attrs...)
		return nil
	}
	pre := name + "/pre"
	c.node(op, in, []string{pre}, attrs...)
	return c.activation(fused, pre, name)
}

func (c *converter) activation(fused int8, in, out string) error {
	switch fused {
	case actRelu:
		c.node("Relu", []string{in}, []string{out})
	case actRelu6:
		lo := c.init(floatInit("relu6/min", nil, []float32{0}))
		hi := c.init(floatInit("relu6/max", nil, []float32{6}))
		c.node("Clip", []string{in, lo, hi}, []string{out})
	case actTanh:
		c.node("Tanh", []string{in}, []string{out})
	default:
		return fmt.Errorf("%w: fused activation %d", ErrUnsupported, fused)
	}
	return nil
}

// samePads returns TFLite's SAME padding (the odd pixel at the end) for
// one spatial dimension, or zeros for VALID.
func samePads(valid bool, in, k, stride, dil int) (int64, int64) {
	if valid {
		return 0, 0
	}
	out := (in + stride - 1) / stride
	total := max((out-1)*stride+(k-1)*dil+1-in, 0)
	return int64(total / 2), int64(total - total/2)
}

type opts struct {
	t  table
	ok bool
}

func (o opts) i32(slot int, def int32) (int32, error) {
	if !o.ok {
		return def, nil
	}
	return o.t.i32(slot, def)
}

func (o opts) i8(slot int) (int8, error) {
	if !o.ok {
		return 0, nil
	}
	v, err := o.t.scalar(slot, 1, 0)
	return int8(v), err
}

func (c *converter) need(op Operator, nin int) error {
	if len(op.Inputs) < nin || len(op.Outputs) != 1 {
		return fmt.Errorf("%w: %d inputs, %d outputs", ErrFormat, len(op.Inputs), len(op.Outputs))
	}
	for _, i := range op.Inputs[:nin] {
		if i < 0 {
			return fmt.Errorf("%w: missing input", ErrFormat)
		}
	}
	return nil
}

func (c *converter) shape4(i int32) ([]int32, error) {
	s := c.m.Tensors[i].Shape
	if len(s) != 4 {
		return nil, fmt.Errorf("%w: %s has shape %v, want NHWC", ErrUnsupported, c.names[i], s)
	}
	return s, nil
}

func (c *converter) op(op Operator) error {
	o := opts{op.opts, op.hasOpts}
	switch op.Code {
	case opDequantize:
		if err := c.need(op, 1); err != nil {
			return err
		}
		v, ok := c.constant(op.Inputs[0])
		if !ok || c.m.Tensors[op.Inputs[0]].Type != Float16 {
			return fmt.Errorf("%w: DEQUANTIZE of a non-float16-constant %s", ErrUnsupported, c.names[op.Inputs[0]])
		}
		c.consts[op.Outputs[0]] = v
		return nil
	case opConv2D, opDepthwiseConv2D:
		return c.conv(op, o)
	case opMaxPool2D, opAveragePool2D:
		return c.pool(op, o)
	case opAdd, opMul:
		if err := c.need(op, 2); err != nil {
			return err
		}
		fused, err := o.i8(0)
		if err != nil {
			return err
		}
		is4 := len(c.m.Tensors[op.Outputs[0]].Shape) == 4
		a, err := c.operand(op.Inputs[0], is4)
		if err != nil {
			return err
		}
		b, err := c.operand(op.Inputs[1], is4)
		if err != nil {
			return err
		}
		name := map[int32]string{opAdd: "Add", opMul: "Mul"}[op.Code]
		return c.emit(name, []string{a, b}, op.Outputs[0], fused)
	case opPrelu:
		if err := c.need(op, 2); err != nil {
			return err
		}
		is4 := len(c.m.Tensors[op.Outputs[0]].Shape) == 4
		if _, ok := c.constant(op.Inputs[1]); !ok {
			return fmt.Errorf("%w: PRELU alpha is not constant", ErrUnsupported)
		}
		slope, err := c.operand(op.Inputs[1], is4)
		if err != nil {
			return err
		}
		return c.emit("PRelu", []string{c.act(op.Inputs[0]), slope}, op.Outputs[0], actNone)
	case opLogistic, opRelu, opRelu6:
		if err := c.need(op, 1); err != nil {
			return err
		}
		switch op.Code {
		case opLogistic:
			return c.emit("Sigmoid", []string{c.act(op.Inputs[0])}, op.Outputs[0], actNone)
		case opRelu:
			return c.emit("Relu", []string{c.act(op.Inputs[0])}, op.Outputs[0], actNone)
		}
		return c.activation(actRelu6, c.act(op.Inputs[0]), c.act(op.Outputs[0]))
	case opPad:
		return c.pad(op)
	case opReshape:
		return c.reshape(op)
	case opConcatenation:
		if len(op.Outputs) != 1 || len(op.Inputs) == 0 {
			return fmt.Errorf("%w: CONCATENATION arity", ErrFormat)
		}
		axis, err := o.i32(0, 0)
		if err != nil {
			return err
		}
		fused, err := o.i8(1)
		if err != nil {
			return err
		}
		rank := int32(len(c.m.Tensors[op.Outputs[0]].Shape))
		if axis < 0 {
			axis += rank
		}
		if rank == 4 {
			axis = [4]int32{0, 2, 3, 1}[axis&3]
		}
		in := make([]string, len(op.Inputs))
		for k, i := range op.Inputs {
			var err error
			if in[k], err = c.operand(i, rank == 4); err != nil {
				return err
			}
		}
		return c.emit("Concat", in, op.Outputs[0], fused, intAttr("axis", int64(axis)))
	}
	return fmt.Errorf("%w: operator %s", ErrUnsupported, OpName(op.Code))
}

func (c *converter) conv(op Operator, o opts) error {
	if err := c.need(op, 2); err != nil {
		return err
	}
	depthwise := op.Code == opDepthwiseConv2D
	in, err := c.shape4(op.Inputs[0])
	if err != nil {
		return err
	}
	ks, err := c.shape4(op.Inputs[1])
	if err != nil {
		return err
	}
	k, ok := c.constant(op.Inputs[1])
	if !ok {
		return fmt.Errorf("%w: non-constant kernel %s", ErrUnsupported, c.names[op.Inputs[1]])
	}
	// Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 activation,
	// 4 dilation_w, 5 dilation_h. DepthwiseConv2DOptions: 0 padding,
	// 1 stride_w, 2 stride_h, 3 depth_multiplier, 4 activation,
	// 5 dilation_w, 6 dilation_h.
	actSlot, dilSlot := 3, 4
	if depthwise {
		actSlot, dilSlot = 4, 5
	}
	padding, err := o.i8(0)
	if err != nil {
		return err
	}
	sw32, err := o.i32(1, 1)
	if err != nil {
		return err
	}
	sh32, err := o.i32(2, 1)
	if err != nil {
		return err
	}
	sw, sh := int(sw32), int(sh32)
	dw, err := o.i32(dilSlot, 1)
	if err != nil {
		return err
	}
	dh, err := o.i32(dilSlot+1, 1)
	if err != nil {
		return err
	}
	fused, err := o.i8(actSlot)
	if err != nil {
		return err
	}
	if sw < 1 || sh < 1 || dw < 1 || dh < 1 {
		return fmt.Errorf("%w: stride %dx%d dilation %dx%d", ErrFormat, sw, sh, dw, dh)
	}
	O, H, W, I := int(ks[0]), int(ks[1]), int(ks[2]), int(ks[3])
	var wdims []int64
	w := make([]float32, len(k))
	group := int64(1)
	if depthwise {
		// [1, H, W, C*M] -> [C*M, 1, H, W], one group per input channel.
		if O != 1 {
			return fmt.Errorf("%w: depthwise kernel %v", ErrUnsupported, ks)
		}
		for y := range H {
			for x := range W {
				for ch := range I {
					w[(ch*H+y)*W+x] = k[(y*W+x)*I+ch]
				}
			}
		}
		wdims = []int64{int64(I), 1, int64(H), int64(W)}
		group = int64(in[3])
	} else {
		// [O, H, W, I] -> [O, I, H, W].
		for oc := range O {
			for y := range H {
				for x := range W {
					for ic := range I {
						w[((oc*I+ic)*H+y)*W+x] = k[((oc*H+y)*W+x)*I+ic]
					}
				}
			}
		}
		wdims = []int64{int64(O), int64(I), int64(H), int64(W)}
	}
	inputs := []string{c.act(op.Inputs[0]), c.init(floatInit(c.names[op.Inputs[1]]+"/oihw", wdims, w))}
	if len(op.Inputs) > 2 && op.Inputs[2] >= 0 {
		b, ok := c.constant(op.Inputs[2])
		if !ok {
			return fmt.Errorf("%w: non-constant bias", ErrUnsupported)
		}
		inputs = append(inputs, c.init(floatInit(c.names[op.Inputs[2]], []int64{int64(len(b))}, b)))
	}
	valid := padding == 1
	t, b := samePads(valid, int(in[1]), H, sh, int(dh))
	l, r := samePads(valid, int(in[2]), W, sw, int(dw))
	return c.emit("Conv", inputs, op.Outputs[0], fused,
		intsAttr("dilations", int64(dh), int64(dw)),
		intAttr("group", group),
		intsAttr("kernel_shape", int64(H), int64(W)),
		intsAttr("pads", t, l, b, r),
		intsAttr("strides", int64(sh), int64(sw)))
}

func (c *converter) pool(op Operator, o opts) error {
	if err := c.need(op, 1); err != nil {
		return err
	}
	in, err := c.shape4(op.Inputs[0])
	if err != nil {
		return err
	}
	// Pool2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 filter_width,
	// 4 filter_height, 5 activation.
	var v [5]int32
	for slot := 1; slot <= 4; slot++ {
		if v[slot], err = o.i32(slot, 1); err != nil {
			return err
		}
	}
	padding, err := o.i8(0)
	if err != nil {
		return err
	}
	fused, err := o.i8(5)
	if err != nil {
		return err
	}
	sw, sh, fw, fh := int(v[1]), int(v[2]), int(v[3]), int(v[4])
	if sw < 1 || sh < 1 || fw < 1 || fh < 1 {
		return fmt.Errorf("%w: pool stride %dx%d filter %dx%d", ErrFormat, sw, sh, fw, fh)
	}
	t, b := samePads(padding == 1, int(in[1]), fh, sh, 1)
	l, r := samePads(padding == 1, int(in[2]), fw, sw, 1)
	name := "MaxPool"
	if op.Code == opAveragePool2D {
		name = "AveragePool" // count_include_pad=0, as TFLite averages
	}
	return c.emit(name, []string{c.act(op.Inputs[0])}, op.Outputs[0], fused,
		intsAttr("kernel_shape", int64(fh), int64(fw)),
		intsAttr("pads", t, l, b, r),
		intsAttr("strides", int64(sh), int64(sw)))
}

func (c *converter) pad(op Operator) error {
	if err := c.need(op, 2); err != nil {
		return err
	}
	p, err := c.int32s(op.Inputs[1])
	if err != nil {
		return err
	}
	rank := len(c.m.Tensors[op.Inputs[0]].Shape)
	if len(p) != 2*rank {
		return fmt.Errorf("%w: PAD paddings %v for rank %d", ErrFormat, p, rank)
	}
	order := []int{}
	for k := range rank {
		order = append(order, k)
	}
	if rank == 4 {
		order = []int{0, 3, 1, 2} // NCHW axis k is NHWC axis order[k]
	}
	pads := make([]int64, 2*rank)
	for k, a := range order {
		pads[k], pads[rank+k] = int64(p[2*a]), int64(p[2*a+1])
	}
	pn := c.init(int64Init(c.names[op.Inputs[1]]+"/onnx", pads))
	return c.emit("Pad", []string{c.act(op.Inputs[0]), pn}, op.Outputs[0], actNone)
}

func (c *converter) reshape(op Operator) error {
	if err := c.need(op, 1); err != nil {
		return err
	}
	x := c.act(op.Inputs[0])
	inRank := len(c.m.Tensors[op.Inputs[0]].Shape)
	outShape := c.m.Tensors[op.Outputs[0]].Shape
	if inRank == 4 {
		// Reshape works on memory order: bring the data back to NHWC.
		c.node("Transpose", []string{x}, []string{x + "/nhwc"}, intsAttr("perm", 0, 2, 3, 1))
		x += "/nhwc"
	}
	shape := c.init(int64Init(c.names[op.Outputs[0]]+"/shape", dims64(outShape)))
	if len(outShape) != 4 {
		return c.emit("Reshape", []string{x, shape}, op.Outputs[0], actNone)
	}
	out := c.act(op.Outputs[0])
	c.node("Reshape", []string{x, shape}, []string{out + "/nhwc"})
	c.node("Transpose", []string{out + "/nhwc"}, []string{out}, intsAttr("perm", 0, 3, 1, 2))
	return nil
}
