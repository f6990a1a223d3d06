// Package onnx owns ONNX Runtime: it loads libonnxruntime.so once per
// process and runs ONNX models (the speech front end, the face mesh, and the
// face networks when they move) through a small session API of named
// float32 (and int64) tensors. It is the only package that imports
// github.com/yalue/onnxruntime_go (internal/archtest enforces it), so the
// runtime's global state, its threading and its cgo tensors are handled in
// one place.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNotFound reports a missing model file or runtime library.
var ErrNotFound = errors.New("onnx: model or runtime library not found")

// LibraryName is the runtime library's file name in a models directory.
const LibraryName = "libonnxruntime.so"

var (
	initOnce sync.Once
	initLib  string
	initErr  error
)

// initRuntime loads the runtime library once per process. ONNX Runtime has
// one global environment, so every session shares it and it is never torn
// down; a later call naming another library is refused.
func initRuntime(lib string) error {
	initOnce.Do(func() {
		initLib = lib
		if _, err := os.Stat(lib); err != nil {
			initErr = fmt.Errorf("%w: runtime library: %w", ErrNotFound, err)
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			initErr = fmt.Errorf("onnx: initialise onnxruntime: %w", err)
		}
	})
	if initErr == nil && lib != initLib {
		return fmt.Errorf("onnx: runtime already loaded from %s, not %s", initLib, lib)
	}
	return initErr
}

// Config names a model and how to run it.
type Config struct {
	// Library is the path of libonnxruntime.so (LibraryName in a models
	// directory). The first session of the process loads it.
	Library string
	// Model is the path of the .onnx file.
	Model string
	// ModelData, when set, is the model itself (Model then only names it in
	// errors): a caller that checked the bytes against a pinned sum runs
	// exactly those bytes, not whatever the path holds by then.
	ModelData []byte
	// Inputs and Outputs are the graph's tensor names, in the order Run
	// takes and returns them.
	Inputs, Outputs []string
	// IntraOpThreads and InterOpThreads are ONNX Runtime's thread counts;
	// 0 means 1 (requests run in parallel instead of one request using
	// every core).
	//
	// The graph optimisation level is ONNX Runtime's default, ORT_ENABLE_ALL
	// (the Go binding has no setter; the C API's default is ALL): it adds the
	// NCHWc layout transforms on top of the extended fusions, which made the
	// face networks 1.5-3x faster than basic or extended (bench/face/RESULTS.md).
	IntraOpThreads, InterOpThreads int
	// NoMemPattern turns off ONNX Runtime's memory pattern (the buffer
	// plan it records on the first run and replays after). ONNX Runtime
	// 1.17.1 replayed a wrong plan for an inlined fixed-shape version of
	// speech's VAD graph (the second run returned an LSTM state output
	// with one layer's half overwritten), so speech keeps it off for the
	// VAD's halves.
	NoMemPattern bool
	// DenormalsAreZero runs the model with the CPU flushing subnormal
	// floats (below 1.2e-38 in magnitude) to zero, in its inputs, weights
	// and results (x86's FTZ and DAZ, set on the running thread for each
	// run and put back after). fr_feature holds 8938 subnormal weights and
	// fr_landmark 26567, and their products make more: on the Intel Xeon
	// vCPUs this machine moved to each costs a microcode assist, and
	// fr_feature took 62-66 ms of CPU instead of 5 (bench/face/RESULTS.md).
	// A subnormal is at least 2^-126 smaller than the normal values it is
	// summed with, so the outputs stay the same (bit for bit on the face
	// networks' test images). ONNX Runtime's own session.set_denormal_as_zero
	// only reaches its pool threads, and with one intra-op thread a run
	// stays on the caller's.
	DenormalsAreZero bool
}

// Session is a loaded model. It is safe for concurrent use: ONNX Runtime
// sessions may run concurrently and every Run uses its own tensors.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
	daz     bool // Config.DenormalsAreZero
}

// Open loads cfg.Model, or cfg.ModelData when set (and the runtime library
// on first use).
func Open(cfg Config) (*Session, error) {
	if len(cfg.Inputs) == 0 || len(cfg.Outputs) == 0 {
		return nil, fmt.Errorf("onnx: %s: no input or output names", cfg.Model)
	}
	if err := initRuntime(cfg.Library); err != nil {
		return nil, err
	}
	if cfg.ModelData == nil {
		if _, err := os.Stat(cfg.Model); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(max(cfg.IntraOpThreads, 1)); err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	if err := opts.SetInterOpNumThreads(max(cfg.InterOpThreads, 1)); err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	if cfg.NoMemPattern {
		if err := opts.SetMemPattern(false); err != nil {
			return nil, fmt.Errorf("onnx: session options: %w", err)
		}
	}
	var s *ort.DynamicAdvancedSession
	if cfg.ModelData != nil {
		s, err = ort.NewDynamicAdvancedSessionWithONNXData(cfg.ModelData, cfg.Inputs, cfg.Outputs, opts)
	} else {
		s, err = ort.NewDynamicAdvancedSession(cfg.Model, cfg.Inputs, cfg.Outputs, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: load %s: %w", cfg.Model, err)
	}
	return &Session{s: s, inputs: cfg.Inputs, outputs: cfg.Outputs, daz: cfg.DenormalsAreZero}, nil
}

// Close releases the session.
func (s *Session) Close() error { return s.s.Destroy() }

// run runs the session on ONNX Runtime's tensors, with subnormals flushed
// on the running thread when the Config asks for it.
func (s *Session) run(in, out []ort.ArbitraryTensor) error {
	if !s.daz {
		return s.s.Run(in, out)
	}
	runtime.LockOSThread() // the mode is the thread's: keep it to this run
	defer runtime.UnlockOSThread()
	old := flushDenormals()
	defer restoreDenormals(old)
	return s.s.Run(in, out)
}

// Tensor is a dense tensor: Float for float32 data, or Int64 for int64 data
// (exactly one is set), row-major in Shape.
type Tensor struct {
	Shape []int64
	Float []float32
	Int64 []int64
}

func (t Tensor) ort() (ort.ArbitraryTensor, error) {
	sh := ort.NewShape(t.Shape...)
	// Typed nil pointers must not escape as non-nil interfaces.
	switch {
	case len(t.Float) > 0 && t.Int64 == nil:
		x, err := ort.NewTensor(sh, t.Float)
		if err != nil {
			return nil, err
		}
		return x, nil
	case len(t.Int64) > 0 && t.Float == nil:
		x, err := ort.NewTensor(sh, t.Int64)
		if err != nil {
			return nil, err
		}
		return x, nil
	}
	return nil, errors.New("onnx: a tensor needs exactly one of Float and Int64, not empty")
}

// Run runs the model on inputs (in Config.Inputs order) and returns the
// outputs (in Config.Outputs order) as float32 tensors, shaped as the model
// made them. The outputs are fresh Go memory.
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("onnx: %d inputs, the session takes %d", len(inputs), len(s.inputs))
	}
	in := make([]ort.ArbitraryTensor, len(inputs))
	defer destroy(in)
	for i, t := range inputs {
		var err error
		if in[i], err = t.ort(); err != nil {
			return nil, fmt.Errorf("onnx: input %s: %w", s.inputs[i], err)
		}
	}
	out := make([]ort.ArbitraryTensor, len(s.outputs))
	defer destroy(out)
	if err := s.run(in, out); err != nil {
		return nil, fmt.Errorf("onnx: run: %w", err)
	}
	res := make([]Tensor, len(out))
	for i, o := range out {
		f, ok := o.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnx: output %s has type %T, want float32", s.outputs[i], o)
		}
		res[i] = Tensor{Shape: append([]int64(nil), f.GetShape()...), Float: append([]float32(nil), f.GetData()...)}
	}
	return res, nil
}

func destroy(ts []ort.ArbitraryTensor) {
	for _, t := range ts {
		if t != nil {
			t.Destroy()
		}
	}
}

// Binding is a session with its input and output tensors allocated once,
// for many runs with fixed shapes: the caller writes the inputs' data in
// place, calls Run and reads the outputs in place, with no allocation per
// run. A Binding is not safe for concurrent use (one per goroutine, or a
// pool); the Session behind it is.
type Binding struct {
	s       *Session
	in, out []ort.ArbitraryTensor
	inputs  []Tensor
	outputs [][]float32
}

// Bind allocates the tensors: inputs as given (their slices become the
// binding's memory, so writing to them changes the next Run's input) and
// float32 outputs of the given shapes.
func (s *Session) Bind(inputs []Tensor, outputShapes [][]int64) (*Binding, error) {
	if len(inputs) != len(s.inputs) || len(outputShapes) != len(s.outputs) {
		return nil, fmt.Errorf("onnx: bind %d inputs and %d outputs, the session has %d and %d",
			len(inputs), len(outputShapes), len(s.inputs), len(s.outputs))
	}
	b := &Binding{s: s, inputs: inputs}
	for i, t := range inputs {
		ot, err := t.ort()
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("onnx: input %s: %w", s.inputs[i], err)
		}
		b.in = append(b.in, ot)
	}
	for i, sh := range outputShapes {
		ot, err := ort.NewEmptyTensor[float32](ort.NewShape(sh...))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("onnx: output %s: %w", s.outputs[i], err)
		}
		b.out = append(b.out, ot)
		b.outputs = append(b.outputs, ot.GetData())
	}
	return b, nil
}

// Input returns input i's float32 data, to be written before Run.
func (b *Binding) Input(i int) []float32 { return b.inputs[i].Float }

// Output returns output i's data as the last Run left it.
func (b *Binding) Output(i int) []float32 { return b.outputs[i] }

// Run runs the session on the bound tensors.
func (b *Binding) Run() error {
	if err := b.s.run(b.in, b.out); err != nil {
		return fmt.Errorf("onnx: run: %w", err)
	}
	return nil
}

// Close releases the tensors (not the session).
func (b *Binding) Close() error {
	destroy(b.in)
	destroy(b.out)
	b.in, b.out = nil, nil
	return nil
}
