// Package facemesh runs MediaPipe's face mesh ("facemesh-lite",
// face_landmark.tflite from @mediapipe/face_mesh@0.4.1657299874, converted
// to face_mesh.onnx at set-up by cmd/trustid-convert) on one video frame: 468
// 3-D points in frame coordinates, the face-presence score, and the lip
// measures the viseme-level sync check reads (DESIGN.md, Face mesh). It runs
// on ONNX Runtime through internal/onnx.
//
// The liveness decision runs it through the MouthTracker adapter
// authn/facelogin.Mouths (on every third frame, and on every frame where the
// lips may shut between two of those), for the viseme check
// (liveness/viseme).
package facemesh

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"github.com/trustid/trustid/internal/onnx"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

const (
	// NumPoints is the number of mesh points.
	NumPoints = 468
	// InputSize is the side of the square RGB crop the model takes.
	InputSize = 192
	// ModelFile is the converted model's name in the models directory.
	ModelFile = "face_mesh.onnx"
	// CropScale is the side of the square crop over the larger side of the
	// face box (the mesh's extent, Mesh.Bounds): MediaPipe's own tracking
	// scale. Measured on the shared GRID clips: with it, re-cropping one frame
	// from its own mesh converges in three steps to a stable mesh on the
	// detector's lips; with 1.2 (DESIGN.md's "~1.2x the face box", a box
	// that already had some margin) the mesh filled only ~78 % of the crop
	// and tracking from it shrank frame after frame until the face was lost.
	CropScale = 1.5
)

// Mesh point indexes of the lips (MediaPipe's canonical face mesh).
const (
	UpperLipInner = 13
	LowerLipInner = 14
	MouthLeft     = 61
	MouthRight    = 291
)

// Tensor names of the converted model (TFLite's own).
const (
	inputName    = "input_1"
	pointsName   = "conv2d_21"
	presenceName = "conv2d_31"
)

// ErrBox reports a face box that cannot be cropped (empty, or outside the
// frame).
var ErrBox = errors.New("facemesh: unusable face box")

// ErrFrame reports a frame whose pixel buffer does not match its size.
var ErrFrame = errors.New("facemesh: malformed frame")

// Point is a mesh point: X and Y in frame pixels, Z depth in the same unit
// (relative to the face's centre; smaller is nearer the camera).
type Point struct{ X, Y, Z float32 }

// Box is an axis-aligned rectangle in frame pixels.
type Box struct{ X, Y, W, H float64 }

// Mesh is the model's answer for one frame.
type Mesh struct {
	Points [NumPoints]Point
	// Presence is the probability that the crop holds a face (the sigmoid
	// of the model's face-presence logit).
	Presence float64
	// Crop is the square the model looked at.
	Crop Box
}

// Lips are the mouth measures of one frame.
type Lips struct {
	// Gap is the inner-lip distance d(13,14) and Width the mouth-corner
	// distance d(61,291), in frame pixels (3-D distance, so a turned head
	// does not shorten them).
	Gap, Width float64
	// Opening is Gap/Width, independent of the face's size on screen.
	Opening float64
}

func dist(a, b Point) float64 {
	dx, dy, dz := float64(a.X-b.X), float64(a.Y-b.Y), float64(a.Z-b.Z)
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

// Lips returns the frame's mouth measures.
func (m *Mesh) Lips() Lips {
	l := Lips{
		Gap:   dist(m.Points[UpperLipInner], m.Points[LowerLipInner]),
		Width: dist(m.Points[MouthLeft], m.Points[MouthRight]),
	}
	if l.Width > 0 {
		l.Opening = l.Gap / l.Width
	}
	return l
}

// Bounds is the bounding box of all the mesh points (forehead to chin):
// the face box to track the next frame from.
func (m *Mesh) Bounds() Box {
	x0, y0 := float64(m.Points[0].X), float64(m.Points[0].Y)
	x1, y1 := x0, y0
	for _, p := range m.Points[1:] {
		x0, x1 = min(x0, float64(p.X)), max(x1, float64(p.X))
		y0, y1 = min(y0, float64(p.Y)), max(y1, float64(p.Y))
	}
	return Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

// BoxFromLandmarks is the face box of the face detector's 68 landmarks
// (liveness.FaceResult.Landmarks), extended upward by foreheadFraction of
// their height: the landmarks stop at the brows, the mesh reaches the
// forehead, and the first crop should frame the face as the tracked ones
// (from Mesh.Bounds) do.
func BoxFromLandmarks(lm lipsync.Landmarks) Box {
	x0, y0 := float64(lm[0].X), float64(lm[0].Y)
	x1, y1 := x0, y0
	for _, p := range lm[1:] {
		x0, x1 = min(x0, float64(p.X)), max(x1, float64(p.X))
		y0, y1 = min(y0, float64(p.Y)), max(y1, float64(p.Y))
	}
	top := foreheadFraction * (y1 - y0)
	return Box{X: x0, Y: y0 - top, W: x1 - x0, H: y1 - y0 + top}
}

// foreheadFraction: on the shared GRID clips the converged mesh's top lies
// 0.22 of the brow-to-chin height above the brows.
const foreheadFraction = 0.22

// Config configures a Runner.
type Config struct {
	// ModelDir holds face_mesh.onnx and libonnxruntime.so ($TRUSTID_MODELS).
	ModelDir string
	// Threads is ONNX Runtime's intra-op thread count; default 1 (frames
	// and requests run in parallel instead).
	Threads int
	// Bindings caps the pre-allocated tensor sets kept for reuse; default
	// GOMAXPROCS. More concurrent calls still run, allocating their own.
	Bindings int
}

// Runner runs the face mesh. It is safe for concurrent use: the session is,
// and each call takes its own tensors from a pool.
type Runner struct {
	sess *onnx.Session
	free chan *onnx.Binding
}

// New loads the model.
func New(cfg Config) (*Runner, error) {
	model := filepath.Join(cfg.ModelDir, ModelFile)
	raw, err := os.ReadFile(model)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("facemesh: %w: %w", onnx.ErrNotFound, err)
		}
		return nil, fmt.Errorf("facemesh: %w", err)
	}
	// Rewritten for ONNX Runtime's blocked NCHWc layout (onnx.NCHWc: the
	// shortcuts' channel paddings as 1x1 convolutions, the PRelus as
	// operations it fuses): 1.04 against 1.23 ms a run with the PRelus
	// alone (liveness/RESULTS.md). TestRewritesAgree checks the mesh.
	data, err := onnx.NCHWc(raw)
	if err != nil {
		return nil, fmt.Errorf("facemesh: %s: %w", model, err)
	}
	s, err := onnx.Open(onnx.Config{
		Library:        filepath.Join(cfg.ModelDir, onnx.LibraryName),
		Model:          model,
		ModelData:      data,
		Inputs:         []string{inputName},
		Outputs:        []string{pointsName, presenceName},
		IntraOpThreads: max(cfg.Threads, 1),
		InterOpThreads: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("facemesh: %w", err)
	}
	n := cfg.Bindings
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Runner{sess: s, free: make(chan *onnx.Binding, n)}, nil
}

// Close releases the session and the pooled tensors. No call may be
// running.
func (r *Runner) Close() error {
	for {
		select {
		case b := <-r.free:
			b.Close()
		default:
			return r.sess.Close()
		}
	}
}

func (r *Runner) binding() (*onnx.Binding, error) {
	select {
	case b := <-r.free:
		return b, nil
	default:
	}
	return r.sess.Bind(
		[]onnx.Tensor{{Shape: []int64{1, InputSize, InputSize, 3}, Float: make([]float32, InputSize*InputSize*3)}},
		[][]int64{{1, 1, 1, 3 * NumPoints}, {1, 1, 1, 1}})
}

func (r *Runner) release(b *onnx.Binding) {
	select {
	case r.free <- b:
	default:
		b.Close()
	}
}

// Crop returns the square of CropScale times the larger side of box,
// centred on the box.
func Crop(box Box) Box {
	side := CropScale * max(box.W, box.H)
	return Box{X: box.X + box.W/2 - side/2, Y: box.Y + box.H/2 - side/2, W: side, H: side}
}

// Run finds the mesh of the face in box (from the face detector, or the
// previous frame's Mesh.Bounds): it crops Crop(box), resizes it to 192x192
// RGB scaled to 0..1 (bilinear; outside the frame is black) and maps the
// model's points back to frame pixels.
func (r *Runner) Run(f media.Frame, box Box) (*Mesh, error) {
	if f.Width <= 0 || f.Height <= 0 || len(f.BGR) != f.Width*f.Height*3 {
		return nil, fmt.Errorf("%w: %dx%d with %d bytes", ErrFrame, f.Width, f.Height, len(f.BGR))
	}
	crop := Crop(box)
	for _, v := range []float64{crop.X, crop.Y, crop.W} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: %+v", ErrBox, box)
		}
	}
	if !(crop.W >= 8) || crop.X+crop.W <= 0 || crop.Y+crop.H <= 0 ||
		crop.X >= float64(f.Width) || crop.Y >= float64(f.Height) || crop.W > 16*float64(max(f.Width, f.Height)) {
		return nil, fmt.Errorf("%w: %+v in %dx%d", ErrBox, box, f.Width, f.Height)
	}
	b, err := r.binding()
	if err != nil {
		return nil, fmt.Errorf("facemesh: %w", err)
	}
	defer r.release(b)
	sample(f, crop, b.Input(0))
	if err := b.Run(); err != nil {
		return nil, fmt.Errorf("facemesh: %w", err)
	}
	m := &Mesh{Crop: crop}
	out := b.Output(0)
	s := float32(crop.W / InputSize)
	x0, y0 := float32(crop.X), float32(crop.Y)
	for i := range m.Points {
		m.Points[i] = Point{X: x0 + out[3*i]*s, Y: y0 + out[3*i+1]*s, Z: out[3*i+2] * s}
	}
	m.Presence = 1 / (1 + math.Exp(-float64(b.Output(1)[0])))
	return m, nil
}

// sample fills dst (192x192x3, NHWC, RGB 0..1) with the crop of f,
// bilinearly interpolated at pixel centres; pixels outside f are black.
// Bilinear interpolation is separable: each source row the crop reads is
// interpolated across once (the columns' positions and weights computed
// once per crop, the 1/255 scale folded in), and each output row blends
// two such rows. A crop larger than the 192-pixel input reads each row
// once, a smaller one (upsampled) reuses it for the next output rows:
// about a third of the CPU of four neighbours per output pixel, equal to
// that to within float rounding (TestSampleMatchesReference).
func sample(f media.Frame, crop Box, dst []float32) {
	step := crop.W / InputSize
	w, h := f.Width, f.Height
	const inv = 1.0 / 255
	var xs [InputSize]int
	var fxs [InputSize]float32
	// Columns lo..hi-1 read two pixels inside the frame (x >= 0 and
	// x+1 < w): the columns ascend, so they are one run, interpolated
	// without the edge tests.
	lo, hi := InputSize, 0
	for i := range InputSize {
		sx := crop.X + (float64(i)+0.5)*step - 0.5
		xs[i] = int(math.Floor(sx))
		fxs[i] = float32(sx - float64(xs[i]))
		if xs[i] >= 0 && xs[i]+1 < w {
			lo, hi = min(lo, i), i+1
		}
	}
	const n = 3 * InputSize
	var bufs [2][n]float32
	rows := [2]int{math.MinInt, math.MinInt} // the source row each buffer holds
	// edge interpolates column i, which reads at least one pixel outside
	// the frame (black).
	edge := func(row []byte, i int, out *[n]float32) {
		x, fx, o := xs[i], fxs[i], 3*i
		var r0, g0, b0, r1, g1, b1 float32
		if x >= 0 && x < w {
			b0, g0, r0 = float32(row[3*x]), float32(row[3*x+1]), float32(row[3*x+2])
		}
		if x+1 >= 0 && x+1 < w {
			b1, g1, r1 = float32(row[3*x+3]), float32(row[3*x+4]), float32(row[3*x+5])
		}
		out[o] = (r0 + fx*(r1-r0)) * inv
		out[o+1] = (g0 + fx*(g1-g0)) * inv
		out[o+2] = (b0 + fx*(b1-b0)) * inv
	}
	// across fills out with source row y interpolated at the columns.
	across := func(y int, out *[n]float32) {
		if y < 0 || y >= h {
			*out = [n]float32{}
			return
		}
		row := f.BGR[y*3*w : (y+1)*3*w]
		for i := 0; i < min(lo, InputSize); i++ {
			edge(row, i, out)
		}
		for i := lo; i < hi; i++ {
			fx := fxs[i]
			q := row[3*xs[i]:]
			q = q[:6:6]
			b0, g0, r0 := float32(q[0]), float32(q[1]), float32(q[2])
			o := out[3*i : 3*i+3 : 3*i+3]
			o[0] = (r0 + fx*(float32(q[5])-r0)) * inv
			o[1] = (g0 + fx*(float32(q[4])-g0)) * inv
			o[2] = (b0 + fx*(float32(q[3])-b0)) * inv
		}
		for i := max(hi, lo); i < InputSize; i++ {
			edge(row, i, out)
		}
	}
	for j := range InputSize {
		sy := crop.Y + (float64(j)+0.5)*step - 0.5
		y := int(math.Floor(sy))
		fy := float32(sy - float64(y))
		switch {
		case rows[0] == y && rows[1] == y+1:
		case rows[1] == y:
			bufs[0], rows[0] = bufs[1], y
			across(y+1, &bufs[1])
			rows[1] = y + 1
		default:
			across(y, &bufs[0])
			across(y+1, &bufs[1])
			rows = [2]int{y, y + 1}
		}
		a, b := &bufs[0], &bufs[1]
		d := dst[j*n : (j+1)*n : (j+1)*n]
		for k := range d {
			d[k] = a[k] + fy*(b[k]-a[k])
		}
	}
}
