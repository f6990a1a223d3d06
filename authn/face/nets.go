package face

// #cgo CXXFLAGS: -std=c++11
// #include "blob.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/trustid/trustid/internal/onnx"
)

// Runtime names what runs the four face networks. Image work (decoding,
// resizing, warping) is OpenCV's either way.
type Runtime string

const (
	// RuntimeONNX runs the networks on ONNX Runtime (internal/onnx), the
	// default: 1.3-7x less CPU per network than OpenCV's DNN module on
	// this machine (the recognition net 3x), the same outputs to within
	// 1e-5 (bench/face/RESULTS.md, TestRuntimesAgree).
	RuntimeONNX Runtime = "onnxruntime"
	// RuntimeOpenCV runs them on OpenCV 4.6 DNN: the reference the ONNX
	// Runtime path is checked against.
	RuntimeOpenCV Runtime = "opencv"
)

// ErrInference reports a network that failed to run: a fault of the
// engine, not a verdict on the image.
var ErrInference = errors.New("face: network run failed")

// Network input sizes and output lengths.
const (
	detW, detH = 320, 240
	detAnchors = 4420 // RFB-320 priors: scores [1,4420,2], boxes [1,4420,4]
	lmkSize    = 64
	lmkOut     = 136
	alignSize  = 112
	spoofSize  = 128
	spoofOut   = 3
)

// networks runs the four face networks on images already cut to their
// input size. The slices returned stay valid until the next call of the
// same method; a networks value is used by one goroutine at a time.
type networks interface {
	// detect: the 320x240 BGR canvas -> scores (4420x2) and boxes (4420x4).
	detect(canvas gocv.Mat) (scores, boxes []float32, err error)
	// landmarks: the 64x64 grey crop -> 68 (x, y) in [0,1] of the crop.
	landmarks(grey gocv.Mat) ([]float32, error)
	// embed: the aligned 112x112 BGR face -> 512 values (not normalised).
	embed(aligned gocv.Mat) ([]float32, error)
	// antiSpoof: the 128x128 BGR crop -> 3 logits (0 = real face).
	antiSpoof(crop gocv.Mat) ([]float32, error)
	close()
}

// The model files and, for ONNX Runtime, their graphs' tensor names.
var netSpecs = [...]struct {
	file    string
	input   []int64
	outputs []string
	shapes  [][]int64
}{
	{"fr_detect.onnx", []int64{1, 3, detH, detW}, []string{"scores", "boxes"}, [][]int64{{1, detAnchors, 2}, {1, detAnchors, 4}}},
	{"fr_landmark.onnx", []int64{1, 1, lmkSize, lmkSize}, []string{"output"}, [][]int64{{1, lmkOut}}},
	{"fr_feature.onnx", []int64{1, 3, alignSize, alignSize}, []string{"output"}, [][]int64{{1, EmbeddingSize}}},
	{"fr_liveness.onnx", []int64{1, 3, spoofSize, spoofSize}, []string{"output"}, [][]int64{{1, spoofOut}}},
}

const (
	netDetect = iota
	netLandmark
	netFeature
	netSpoof
)

// Input normalisation of each network (DESIGN.md "Face models").
const (
	detScale, detMean     = 1.0 / 128, 127
	lmkScale              = 1.0 / 256
	featScale, featMean   = 1.0 / 128, 127
	spoofScale, spoofMean = 1, 0
)

// sessions are the engine's ONNX Runtime sessions, one per network,
// shared by every worker (a session runs concurrent calls; each worker
// brings its own tensors).
type sessions [len(netSpecs)]*onnx.Session

func openSessions(cfg *Config, models map[string][]byte) (*sessions, error) {
	var s sessions
	for i, spec := range netSpecs {
		// The pinned bytes, in a form ONNX Runtime keeps in its NCHWc
		// layout (onnx.NCHWc: fr_liveness's 15 bottlenecks padded to
		// whole channel blocks, the PRelus of fr_feature and fr_liveness
		// rewritten). TestRuntimesAgree and TestGolden check the outputs
		// against OpenCV's on the pinned bytes.
		data, err := onnx.NCHWc(models[spec.file])
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %s: %v", ErrModel, spec.file, err)
		}
		s[i], err = onnx.Open(onnx.Config{
			Library:        cfg.onnxLibrary(),
			Model:          spec.file,
			ModelData:      data,
			Inputs:         []string{"input"},
			Outputs:        spec.outputs,
			IntraOpThreads: cfg.IntraOpThreads,
			InterOpThreads: 1,
			// Subnormal weights and activations (fr_feature, fr_landmark)
			// cost a microcode assist each on some Xeons: 62-66 ms of CPU
			// for one embedding instead of 5 (bench/face/RESULTS.md).
			DenormalsAreZero: true,
		})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %s on onnxruntime: %v", ErrModel, spec.file, err)
		}
	}
	return &s, nil
}

func (s *sessions) close() {
	for i, x := range s {
		if x != nil {
			x.Close()
			s[i] = nil
		}
	}
}

// ortNets runs the networks on the shared sessions through one worker's
// bindings: the input is written into the bound tensor and the outputs
// are read in place, with no allocation per call.
type ortNets [len(netSpecs)]*onnx.Binding

func newORTNets(s *sessions) (*ortNets, error) {
	var n ortNets
	for i, spec := range netSpecs {
		size := int64(1)
		for _, d := range spec.input {
			size *= d
		}
		b, err := s[i].Bind([]onnx.Tensor{{Shape: spec.input, Float: make([]float32, size)}}, spec.shapes)
		if err != nil {
			n.close()
			return nil, fmt.Errorf("%w: %s: %v", ErrModel, spec.file, err)
		}
		n[i] = b
	}
	return &n, nil
}

func (n *ortNets) close() {
	for i, b := range n {
		if b != nil {
			b.Close()
			n[i] = nil
		}
	}
}

// blob writes an 8-bit image as a planar float tensor, (x - mean) * scale,
// channels reversed when swapRB: blobFromImage's values (blob.cpp). dst
// must hold exactly the image's values.
func blob(img gocv.Mat, dst []float32, scale, mean float32, swapRB bool) error {
	if len(dst) == 0 || C.trustid_blob(unsafe.Pointer(img.Ptr()), (*C.float)(unsafe.Pointer(&dst[0])), C.long(len(dst)),
		C.float(scale), C.float(mean), C.int(btoi(swapRB))) != 0 {
		return fmt.Errorf("%w: a %dx%dx%d image for a tensor of %d values", ErrInference, img.Cols(), img.Rows(), img.Channels(), len(dst))
	}
	return nil
}

// run writes img into network i's input tensor and runs it.
func (n *ortNets) run(i int, img gocv.Mat, scale, mean float32, swapRB bool) error {
	b := n[i]
	if err := blob(img, b.Input(0), scale, mean, swapRB); err != nil {
		return fmt.Errorf("%s: input %v: %w", netSpecs[i].file, netSpecs[i].input, err)
	}
	if err := b.Run(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInference, netSpecs[i].file, err)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (n *ortNets) detect(canvas gocv.Mat) ([]float32, []float32, error) {
	if err := n.run(netDetect, canvas, detScale, detMean, true); err != nil {
		return nil, nil, err
	}
	return n[netDetect].Output(0), n[netDetect].Output(1), nil
}

func (n *ortNets) landmarks(grey gocv.Mat) ([]float32, error) {
	if err := n.run(netLandmark, grey, lmkScale, 0, false); err != nil {
		return nil, err
	}
	return n[netLandmark].Output(0), nil
}

func (n *ortNets) embed(aligned gocv.Mat) ([]float32, error) {
	if err := n.run(netFeature, aligned, featScale, featMean, true); err != nil {
		return nil, err
	}
	return n[netFeature].Output(0), nil
}

func (n *ortNets) antiSpoof(crop gocv.Mat) ([]float32, error) {
	if err := n.run(netSpoof, crop, spoofScale, spoofMean, false); err != nil {
		return nil, err
	}
	return n[netSpoof].Output(0), nil
}

// cvNets runs the networks on OpenCV DNN, one set of networks per worker
// (OpenCV networks are not safe for concurrent use).
type cvNets struct {
	net  [len(netSpecs)]gocv.Net
	outs [len(netSpecs)][][]float32 // copies of the last outputs
}

func newCVNets(models map[string][]byte) (*cvNets, error) {
	n := &cvNets{}
	for i, spec := range netSpecs {
		net, err := gocv.ReadNetFromONNXBytes(models[spec.file])
		if err != nil {
			n.close()
			return nil, fmt.Errorf("%w: load %s: %v", ErrModel, spec.file, err)
		}
		_ = net.SetPreferableBackend(gocv.NetBackendOpenCV)
		_ = net.SetPreferableTarget(gocv.NetTargetCPU)
		n.net[i] = net
		for _, sh := range spec.shapes {
			size := int64(1)
			for _, d := range sh {
				size *= d
			}
			n.outs[i] = append(n.outs[i], make([]float32, size))
		}
	}
	return n, nil
}

func (n *cvNets) close() {
	for i := range n.net {
		n.net[i].Close()
	}
}

// run feeds blobFromImage(img) to network i and copies its outputs.
func (n *cvNets) run(i int, img gocv.Mat, scale, mean float64, swapRB bool) ([][]float32, error) {
	spec := &netSpecs[i]
	sz := image.Pt(int(spec.input[3]), int(spec.input[2]))
	if img.Cols() != sz.X || img.Rows() != sz.Y || img.Channels() != int(spec.input[1]) {
		return nil, fmt.Errorf("%w: %s: a %dx%dx%d image for input %v", ErrInference, spec.file, img.Cols(), img.Rows(), img.Channels(), spec.input)
	}
	blob := gocv.BlobFromImage(img, scale, sz, gocv.NewScalar(mean, mean, mean, 0), swapRB, false)
	defer blob.Close()
	n.net[i].SetInput(blob, "")
	var outs []gocv.Mat
	if len(spec.outputs) == 1 {
		outs = []gocv.Mat{n.net[i].Forward("")} // the last layer
	} else {
		outs = n.net[i].ForwardLayers(spec.outputs)
	}
	defer func() {
		for _, o := range outs {
			o.Close()
		}
	}()
	if len(outs) != len(spec.outputs) {
		return nil, fmt.Errorf("%w: %s: %d outputs", ErrInference, spec.file, len(outs))
	}
	for k, o := range outs {
		v, err := o.DataPtrFloat32()
		if err != nil || len(v) != len(n.outs[i][k]) {
			return nil, fmt.Errorf("%w: %s: output %s has %d values, want %d (%v)", ErrInference, spec.file, spec.outputs[k], len(v), len(n.outs[i][k]), err)
		}
		copy(n.outs[i][k], v)
	}
	return n.outs[i], nil
}

func (n *cvNets) detect(canvas gocv.Mat) ([]float32, []float32, error) {
	o, err := n.run(netDetect, canvas, detScale, detMean, true)
	if err != nil {
		return nil, nil, err
	}
	return o[0], o[1], nil
}

func (n *cvNets) landmarks(grey gocv.Mat) ([]float32, error) {
	o, err := n.run(netLandmark, grey, lmkScale, 0, false)
	if err != nil {
		return nil, err
	}
	return o[0], nil
}

func (n *cvNets) embed(aligned gocv.Mat) ([]float32, error) {
	o, err := n.run(netFeature, aligned, featScale, featMean, true)
	if err != nil {
		return nil, err
	}
	return o[0], nil
}

func (n *cvNets) antiSpoof(crop gocv.Mat) ([]float32, error) {
	o, err := n.run(netSpoof, crop, spoofScale, spoofMean, false)
	if err != nil {
		return nil, err
	}
	return o[0], nil
}
