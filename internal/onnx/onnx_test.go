package onnx_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/trustid/trustid/internal/onnx"
)

// faceMesh opens the converted face mesh (deploy/setup.sh makes it), the
// one model in the models directory with fixed shapes and float32 outputs.
func faceMesh(t *testing.T) *onnx.Session {
	t.Helper()
	dir := os.Getenv("TRUSTID_MODELS")
	if _, err := os.Stat(filepath.Join(dir, "face_mesh.onnx")); dir == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TRUSTID_MODELS (%q) has no face_mesh.onnx", dir)
		}
		t.Skipf("TRUSTID_MODELS (%q) has no face_mesh.onnx", dir)
	}
	s, err := onnx.Open(onnx.Config{
		Library: filepath.Join(dir, onnx.LibraryName),
		Model:   filepath.Join(dir, "face_mesh.onnx"),
		Inputs:  []string{"input_1"}, Outputs: []string{"conv2d_21", "conv2d_31"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func input() []float32 {
	in := make([]float32, 192*192*3)
	for i := range in {
		in[i] = float32(i%251) / 251
	}
	return in
}

// TestRunAndBindingAgree: a Binding's in-place run answers what Run does,
// and concurrent Runs on one session answer the same.
func TestRunAndBindingAgree(t *testing.T) {
	s := faceMesh(t)
	shape := []int64{1, 192, 192, 3}
	outs, err := s.Run(onnx.Tensor{Shape: shape, Float: input()})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(outs[0].Shape, []int64{1, 1, 1, 1404}) || !slices.Equal(outs[1].Shape, []int64{1, 1, 1, 1}) {
		t.Fatalf("output shapes %v %v", outs[0].Shape, outs[1].Shape)
	}
	b, err := s.Bind([]onnx.Tensor{{Shape: shape, Float: make([]float32, 192*192*3)}}, [][]int64{{1, 1, 1, 1404}, {1, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	copy(b.Input(0), input())
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Output(0), outs[0].Float) || !slices.Equal(b.Output(1), outs[1].Float) {
		t.Error("binding and Run differ")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			o, err := s.Run(onnx.Tensor{Shape: shape, Float: input()})
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Equal(o[0].Float, outs[0].Float) {
				t.Error("concurrent run differs")
			}
		})
	}
	wg.Wait()
}

// TestModelData: a session opened from the model's bytes answers what one
// opened from its path does; bytes that are no model are refused.
func TestModelData(t *testing.T) {
	s := faceMesh(t)
	dir := os.Getenv("TRUSTID_MODELS")
	data, err := os.ReadFile(filepath.Join(dir, "face_mesh.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte) (*onnx.Session, error) {
		return onnx.Open(onnx.Config{
			Library: filepath.Join(dir, onnx.LibraryName),
			Model:   "face_mesh.onnx", ModelData: b, // no such path: the bytes are used
			Inputs: []string{"input_1"}, Outputs: []string{"conv2d_21", "conv2d_31"},
		})
	}
	d, err := open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	shape := []int64{1, 192, 192, 3}
	want, err := s.Run(onnx.Tensor{Shape: shape, Float: input()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Run(onnx.Tensor{Shape: shape, Float: input()})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0].Float, want[0].Float) || !slices.Equal(got[1].Float, want[1].Float) {
		t.Error("the session from bytes and the one from the path differ")
	}
	if _, err := open([]byte("not a model")); err == nil {
		t.Error("garbage bytes opened as a model")
	}
}

func TestErrors(t *testing.T) {
	s := faceMesh(t)
	dir := os.Getenv("TRUSTID_MODELS")
	_, err := onnx.Open(onnx.Config{
		Library: filepath.Join(dir, onnx.LibraryName),
		Model:   filepath.Join(dir, "no-such.onnx"),
		Inputs:  []string{"x"}, Outputs: []string{"y"},
	})
	if !errors.Is(err, onnx.ErrNotFound) {
		t.Errorf("missing model: err = %v, want ErrNotFound", err)
	}
	tests := []struct {
		name string
		in   []onnx.Tensor
	}{
		{"no inputs", nil},
		{"empty tensor", []onnx.Tensor{{Shape: []int64{1}}}},
		{"both types", []onnx.Tensor{{Shape: []int64{1}, Float: []float32{1}, Int64: []int64{1}}}},
		{"short data", []onnx.Tensor{{Shape: []int64{1, 192, 192, 3}, Float: []float32{1}}}},
		{"wrong shape", []onnx.Tensor{{Shape: []int64{1, 3}, Float: []float32{1, 2, 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Run(tt.in...); err == nil {
				t.Error("no error")
			}
		})
	}
}
