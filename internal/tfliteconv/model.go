package tfliteconv

import (
	"fmt"
)

// TensorType is TFLite's tensor element type (schema.fbs TensorType).
type TensorType uint8

// The tensor types the converter knows.
const (
	Float32 TensorType = 0
	Float16 TensorType = 1
	Int32   TensorType = 2
	UInt8   TensorType = 3
	Int64   TensorType = 4
)

// Tensor is one tensor of the graph; Data is the constant's bytes (little
// endian) when it has any.
type Tensor struct {
	Name  string
	Shape []int32
	Type  TensorType
	Data  []byte
}

// Operator is one node: its builtin code, its input and output tensor
// indexes (-1 for an omitted optional input) and its options table.
type Operator struct {
	Code    int32
	Inputs  []int32
	Outputs []int32
	opts    table
	hasOpts bool
}

// Model is the first subgraph of a TFLite model.
type Model struct {
	Tensors   []Tensor
	Operators []Operator
	Inputs    []int32
	Outputs   []int32
}

// Builtin operator codes (schema.fbs BuiltinOperator) this package names.
const (
	opAdd             = 0
	opAveragePool2D   = 1
	opConcatenation   = 2
	opConv2D          = 3
	opDepthwiseConv2D = 4
	opDequantize      = 6
	opLogistic        = 14
	opMaxPool2D       = 17
	opMul             = 18
	opRelu            = 19
	opRelu6           = 21
	opReshape         = 22
	opPad             = 34
	opPrelu           = 54
)

var opNames = map[int32]string{
	opAdd: "ADD", opAveragePool2D: "AVERAGE_POOL_2D", opConcatenation: "CONCATENATION",
	opConv2D: "CONV_2D", opDepthwiseConv2D: "DEPTHWISE_CONV_2D", opDequantize: "DEQUANTIZE",
	opLogistic: "LOGISTIC", opMaxPool2D: "MAX_POOL_2D", opMul: "MUL", opRelu: "RELU",
	opRelu6: "RELU6", opReshape: "RESHAPE", opPad: "PAD", opPrelu: "PRELU",
}

// OpName is the schema name of a builtin operator code.
func OpName(code int32) string {
	if n, ok := opNames[code]; ok {
		return n
	}
	return fmt.Sprintf("BUILTIN_%d", code)
}

// Parse reads a TFLite model's first subgraph.
func Parse(data []byte) (*Model, error) {
	if len(data) < 8 || string(data[4:8]) != "TFL3" {
		return nil, fmt.Errorf("%w: no TFL3 identifier", ErrFormat)
	}
	b := buf(data)
	root, err := b.root()
	if err != nil {
		return nil, err
	}
	// Model: 1 operator_codes, 2 subgraphs, 4 buffers.
	codeTabs, err := root.tables(1)
	if err != nil {
		return nil, err
	}
	codes := make([]int32, len(codeTabs))
	for i, c := range codeTabs {
		// OperatorCode: 0 deprecated_builtin_code (byte), 3 builtin_code
		// (int); the larger of the two is the code (schema.fbs).
		dep, err := c.scalar(0, 1, 0)
		if err != nil {
			return nil, err
		}
		bc, err := c.i32(3, 0)
		if err != nil {
			return nil, err
		}
		codes[i] = max(int32(dep), bc)
	}
	bufTabs, err := root.tables(4)
	if err != nil {
		return nil, err
	}
	subs, err := root.tables(2)
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("%w: no subgraph", ErrFormat)
	}
	sg := subs[0]
	m := &Model{}
	// SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators.
	tensTabs, err := sg.tables(0)
	if err != nil {
		return nil, err
	}
	for _, tt := range tensTabs {
		// Tensor: 0 shape, 1 type, 2 buffer, 3 name.
		var t Tensor
		if t.Shape, err = tt.ints(0); err != nil {
			return nil, err
		}
		ty, err := tt.ubyte(1, 0)
		if err != nil {
			return nil, err
		}
		t.Type = TensorType(ty)
		bi, err := tt.scalar(2, 4, 0)
		if err != nil {
			return nil, err
		}
		if bi = int64(uint32(bi)); bi >= int64(len(bufTabs)) {
			return nil, fmt.Errorf("%w: buffer %d of %d", ErrFormat, bi, len(bufTabs))
		}
		if bi > 0 {
			// Buffer: 0 data.
			if t.Data, err = bufTabs[bi].bytes(0); err != nil {
				return nil, err
			}
		}
		if t.Name, err = tt.str(3); err != nil {
			return nil, err
		}
		m.Tensors = append(m.Tensors, t)
	}
	if m.Inputs, err = sg.ints(1); err != nil {
		return nil, err
	}
	if m.Outputs, err = sg.ints(2); err != nil {
		return nil, err
	}
	opTabs, err := sg.tables(3)
	if err != nil {
		return nil, err
	}
	for _, ot := range opTabs {
		// Operator: 0 opcode_index, 1 inputs, 2 outputs, 3 builtin_options
		// type, 4 builtin_options.
		ci, err := ot.scalar(0, 4, 0)
		if err != nil {
			return nil, err
		}
		if ci = int64(uint32(ci)); ci >= int64(len(codes)) {
			return nil, fmt.Errorf("%w: opcode index %d of %d", ErrFormat, ci, len(codes))
		}
		op := Operator{Code: codes[ci]}
		if op.Inputs, err = ot.ints(1); err != nil {
			return nil, err
		}
		if op.Outputs, err = ot.ints(2); err != nil {
			return nil, err
		}
		for _, i := range append(append([]int32(nil), op.Inputs...), op.Outputs...) {
			if i < -1 || int(i) >= len(m.Tensors) {
				return nil, fmt.Errorf("%w: tensor index %d of %d", ErrFormat, i, len(m.Tensors))
			}
		}
		if op.opts, op.hasOpts, err = ot.sub(4); err != nil {
			return nil, err
		}
		m.Operators = append(m.Operators, op)
	}
	for _, i := range append(append([]int32(nil), m.Inputs...), m.Outputs...) {
		if i < 0 || int(i) >= len(m.Tensors) {
			return nil, fmt.Errorf("%w: graph tensor index %d of %d", ErrFormat, i, len(m.Tensors))
		}
	}
	return m, nil
}

// Histogram counts the operators by name.
func (m *Model) Histogram() map[string]int {
	h := map[string]int{}
	for _, op := range m.Operators {
		h[OpName(op.Code)]++
	}
	return h
}
