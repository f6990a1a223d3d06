package onnx

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// mulModel is an ONNX model y = x * k for x and y of shape [n] and the
// constant k (opset 13).
func mulModel(k []float32) []byte {
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	n := uint64(len(k))
	valueInfo := func(name string) []byte { // ValueInfoProto of a float [n]
		dim := varint(nil, 1, n)               // Dimension.dim_value
		shape := bytesField(nil, 1, dim)       // TensorShapeProto.dim
		tt := varint(nil, 1, 1)                // elem_type FLOAT
		tt = bytesField(tt, 2, shape)          // shape
		typ := bytesField(nil, 1, tt)          // TypeProto.tensor_type
		vi := bytesField(nil, 1, []byte(name)) // name
		return bytesField(vi, 2, typ)          // type
	}
	raw := make([]byte, 4*len(k))
	for i, v := range k {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	init := varint(nil, 1, n)               // dims
	init = varint(init, 2, 1)               // data_type FLOAT
	init = bytesField(init, 8, []byte("k")) // name
	init = bytesField(init, 9, raw)         // raw_data
	node := bytesField(nil, 1, []byte("x"))
	node = bytesField(node, 1, []byte("k"))
	node = bytesField(node, 2, []byte("y"))
	node = bytesField(node, 4, []byte("Mul"))
	g := bytesField(nil, 1, node)
	g = bytesField(g, 2, []byte("mul"))
	g = bytesField(g, 5, init)
	g = bytesField(g, 11, valueInfo("x"))
	g = bytesField(g, 12, valueInfo("y"))
	m := varint(nil, 1, 7)                   // ir_version
	m = bytesField(m, 8, varint(nil, 2, 13)) // opset_import: version 13
	return bytesField(m, 7, g)               // graph
}

// TestDenormalsAreZero: with Config.DenormalsAreZero a run reads
// subnormal inputs and weights as zero and flushes subnormal results,
// without it they stay; either way the thread's mode is back afterwards.
func TestDenormalsAreZero(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	lib := filepath.Join(dir, LibraryName)
	if _, err := os.Stat(lib); dir == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TRUSTID_MODELS (%q) has no %s", dir, LibraryName)
		}
		t.Skipf("TRUSTID_MODELS (%q) has no %s", dir, LibraryName)
	}
	const sub = 1e-40 // subnormal in float32
	k := []float32{1e-20, sub, 2, 3}
	x := []float32{1e-20, 1, sub, 0.5}
	tests := []struct {
		name string
		daz  bool
		want []float32
	}{
		{"subnormals kept", false, nil}, // x * k in Go
		{"subnormals zero", true, []float32{0, 0, 0, 1.5}},
	}
	runtime.LockOSThread() // denormalsFlushed reads this thread's mode
	defer runtime.UnlockOSThread()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(Config{Library: lib, Model: "mul", ModelData: mulModel(k),
				Inputs: []string{"x"}, Outputs: []string{"y"}, DenormalsAreZero: tt.daz})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Run(Tensor{Shape: []int64{int64(len(x))}, Float: x})
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Bind([]Tensor{{Shape: []int64{int64(len(x))}, Float: append([]float32(nil), x...)}}, [][]int64{{int64(len(x))}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Run(); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				for i := range x {
					want = append(want, x[i]*k[i])
				}
			}
			for name, got := range map[string][]float32{"Run": out[0].Float, "Binding.Run": b.Output(0)} {
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Errorf("%s: y[%d] = %g, want %g", name, i, got[i], want[i])
					}
				}
			}
			if denormalsFlushed() {
				t.Error("the thread still flushes subnormals after the run")
			}
		})
	}
}
