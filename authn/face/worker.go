package face

import (
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// severalFacesRatio: a second face at least this fraction of the chosen
// face's height makes an image "several faces".
const severalFacesRatio = 0.5

// spoofEnlarge is how much the anti-spoof crop enlarges the square box.
const spoofEnlarge = 2.7

// worker owns one set of network bindings and reusable buffers; it is used
// by one goroutine at a time (the Engine's pool guarantees it).
type worker struct {
	cfg  *Config
	nets networks
	clk  clock // stage timings of the current call (off unless asked)

	canvas   gocv.Mat // letterboxed 320x240 detector input
	crop64   gocv.Mat
	grey64   gocv.Mat
	aligned  gocv.Mat // 112x112 BGR
	grey112  gocv.Mat
	lap      gocv.Mat
	mean     gocv.Mat
	std      gocv.Mat
	affine   gocv.Mat // 2x3 float64
	spoof128 gocv.Mat // 128x128 BGR anti-spoof input
}

// newWorker makes a worker on ONNX Runtime bindings of the shared
// sessions, or on its own OpenCV networks when sess is nil.
func newWorker(cfg *Config, models map[string][]byte, sess *sessions) (*worker, error) {
	w := &worker{cfg: cfg}
	var err error
	if sess != nil {
		w.nets, err = newORTNets(sess)
	} else {
		w.nets, err = newCVNets(models)
	}
	if err != nil {
		return nil, err
	}
	w.canvas = gocv.NewMatWithSize(detH, detW, gocv.MatTypeCV8UC3)
	w.crop64 = gocv.NewMat()
	w.grey64 = gocv.NewMat()
	w.aligned = gocv.NewMat()
	w.grey112 = gocv.NewMat()
	w.lap = gocv.NewMat()
	w.mean = gocv.NewMat()
	w.std = gocv.NewMat()
	w.affine = gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	w.spoof128 = gocv.NewMat()
	return w, nil
}

func (w *worker) close() {
	w.nets.close()
	for _, m := range []*gocv.Mat{&w.canvas, &w.crop64, &w.grey64, &w.aligned, &w.grey112, &w.lap, &w.mean, &w.std, &w.affine, &w.spoof128} {
		m.Close()
	}
}

// run is the whole pipeline on a decoded BGR image. A network that fails
// to run is an ErrInference fault, never a quality verdict.
func (w *worker) run(img gocv.Mat, opts Options) (*Result, error) {
	res := &Result{Width: img.Cols(), Height: img.Rows(), Timings: w.clk.t}
	w.clk.start()
	dets, err := w.detect(img)
	w.clk.stop(stageDetect)
	if err != nil {
		return nil, err
	}
	res.Faces = len(dets)
	if len(dets) == 0 {
		return res, &QualityError{Reason: ErrNoFace}
	}
	best := choose(dets, opts.Select, res.Width, res.Height)
	if !opts.AllowSeveral {
		// Only faces of a size comparable to the chosen one count as another
		// person at the camera: small background detections (posters,
		// passers-by far behind, false positives on texture) do not.
		minH := math.Max(w.cfg.MinFaceSize, severalFacesRatio*float64(best.Box.Height()))
		n := 0
		for _, d := range dets {
			if float64(d.Box.Height()) >= minH {
				n++
			}
		}
		if n > 1 {
			return res, &QualityError{Reason: ErrSeveralFaces, Faces: len(dets)}
		}
	}
	f := &res.Face
	f.Box, f.Raw, f.Score = best.Box, best.Raw, best.Score
	lbox := best.Box
	if best.Raw.Area() > 0 && !w.cfg.ReferenceEdgeCrop {
		lbox = best.Raw
	}
	w.clk.start()
	f.Landmarks, err = w.landmarks(img, lbox)
	w.clk.stop(stageLandmarks)
	if err != nil {
		return nil, err
	}
	f.Five = FivePoints(&f.Landmarks)
	f.Pose = EstimatePose(f.Five)
	res.Quality.FaceSize = float64(best.Box.Height())
	res.Quality.AlignResidual = AlignResidual(f.Five, AlignTransform(f.Five))
	if bw := float64(lbox.Width()); bw > 0 {
		res.Quality.EyeBoxRatio = math.Hypot(float64(f.Five[1].X-f.Five[0].X), float64(f.Five[1].Y-f.Five[0].Y)) / bw
	}

	if !opts.SkipGates {
		c := w.cfg
		if res.Quality.FaceSize < c.MinFaceSize {
			return res, &QualityError{Reason: ErrFaceTooSmall, Faces: res.Faces, Value: res.Quality.FaceSize, Limit: c.MinFaceSize}
		}
		for _, a := range []struct{ v, lim float64 }{{f.Pose.Yaw, c.MaxYaw}, {f.Pose.Pitch, c.MaxPitch}, {f.Pose.Roll, c.MaxRoll}} {
			if math.Abs(a.v) > a.lim {
				return res, &QualityError{Reason: ErrPose, Faces: res.Faces, Value: a.v, Limit: a.lim}
			}
		}
		if res.Quality.AlignResidual > c.MaxAlignResidual {
			return res, &QualityError{Reason: ErrMisaligned, Faces: res.Faces, Value: res.Quality.AlignResidual, Limit: c.MaxAlignResidual}
		}
		if res.Quality.EyeBoxRatio < c.MinEyeBoxRatio {
			return res, &QualityError{Reason: ErrMisaligned, Faces: res.Faces, Value: res.Quality.EyeBoxRatio, Limit: c.MinEyeBoxRatio}
		}
	}
	if opts.Embedding || !opts.SkipGates {
		w.clk.start()
		w.align(img, f.Five)
		w.clk.stop(stageAlign)
	}
	if !opts.SkipGates {
		c := w.cfg
		w.clk.start()
		res.Quality.Sharpness, res.Quality.Brightness = w.measure()
		w.clk.stop(stageQuality)
		if res.Quality.Brightness < c.MinBrightness {
			return res, &QualityError{Reason: ErrTooDark, Faces: res.Faces, Value: res.Quality.Brightness, Limit: c.MinBrightness}
		}
		if res.Quality.Sharpness < c.MinSharpness {
			return res, &QualityError{Reason: ErrBlurred, Faces: res.Faces, Value: res.Quality.Sharpness, Limit: c.MinSharpness}
		}
	}
	if opts.Embedding {
		w.clk.start()
		res.Embedding, err = w.embed()
		if err == nil && opts.Flip {
			gocv.Flip(w.aligned, &w.aligned, 1)
			var m []float32
			if m, err = w.embed(); err == nil {
				for i := range m {
					res.Embedding[i] += m[i]
				}
				l2normalize(res.Embedding)
			}
		}
		w.clk.stop(stageEmbed)
		if err != nil {
			return nil, err
		}
	}
	if opts.AntiSpoof {
		w.clk.start()
		res.Real, err = w.antiSpoof(img, best.Box)
		w.clk.stop(stageAntiSpoof)
		if err != nil {
			return nil, err
		}
		res.HasAntiSpoof = true
	}
	return res, nil
}

// timed is run with its stages timed into t (the caller has locked the
// OS thread).
func (w *worker) timed(t *Timings, img gocv.Mat, opts Options) (*Result, error) {
	w.clk.t = t
	defer func() { w.clk.t = nil }()
	return w.run(img, opts)
}

func choose(d []Detection, sel Selection, width, height int) Detection {
	best, bestV := d[0], math.Inf(-1)
	cx, cy := float64(width)/2, float64(height)/2
	for _, x := range d {
		var v float64
		if sel == SelectCentral {
			bx, by := float64(x.Box.X1+x.Box.X2)/2, float64(x.Box.Y1+x.Box.Y2)/2
			v = -math.Hypot(bx-cx, by-cy)
		} else {
			v = float64(x.Box.Area())
		}
		if v > bestV {
			best, bestV = x, v
		}
	}
	return best
}

// detect finds faces. Images from square to 4:3 (and 4:3 to 16:9) are
// first stretched to the detector's 320x240 input, as the reference
// pipeline does on LFW's square images: its boxes are what the landmark net
// expects, and with them the port reproduces the reference embeddings
// exactly. Stretching further distorts faces (portrait ID photos, ORL's
// 92x112 faces lose rank-1 accuracy), so other shapes are letterboxed to
// 4:3. RFB-320 misses faces that fill the frame, so when a pass finds none
// the image is letterboxed, and then letterboxed inside a wider margin.
func (w *worker) detect(img gocv.Mat) ([]Detection, error) {
	iw, ih := img.Cols(), img.Rows()
	first := 0.0
	if d := float64(iw*detH) / float64(ih*detW); d >= 0.75-1e-9 && d <= 4.0/3+1e-9 {
		first = stretch
	}
	if r, err := w.detectAt(img, first); err != nil || len(r) > 0 {
		return r, err
	}
	if first == stretch && iw*detH != ih*detW { // letterboxing differs from stretching
		if r, err := w.detectAt(img, 0); err != nil || len(r) > 0 {
			return r, err
		}
	}
	return w.detectAt(img, retryMargin)
}

// retryMargin is the margin, as a fraction of the image size on each side,
// of the last detection attempt; stretch asks for no letterboxing.
const (
	retryMargin = 0.25
	stretch     = -1
)

// detectAt resizes the image to 320x240, either stretched (margin ==
// stretch) or letterboxed to 4:3 (centred, black padding on both sides) with
// an extra margin on every side as a fraction of the image size, runs
// RFB-320 and keeps boxes with score >= the threshold after score-ordered
// NMS. The model's outputs are already softmaxed scores and decoded corner
// boxes in [0,1] of its input.
func (w *worker) detectAt(img gocv.Mat, margin float64) ([]Detection, error) {
	iw, ih := img.Cols(), img.Rows()
	sx, sy := float64(detW)/float64(iw), float64(detH)/float64(ih)
	nw, nh := detW, detH
	if margin != stretch {
		k := 1 + 2*margin
		s := math.Min(float64(detW)/(float64(iw)*k), float64(detH)/(float64(ih)*k))
		sx, sy = s, s
		nw = min(detW, max(1, int(math.Round(float64(iw)*s))))
		nh = min(detH, max(1, int(math.Round(float64(ih)*s))))
	}
	ox, oy := (detW-nw)/2, (detH-nh)/2
	if nw != detW || nh != detH {
		w.canvas.SetTo(gocv.NewScalar(0, 0, 0, 0))
	}
	roi := w.canvas.Region(image.Rect(ox, oy, ox+nw, oy+nh))
	gocv.Resize(img, &roi, image.Pt(nw, nh), 0, 0, gocv.InterpolationLinear)
	roi.Close()
	scores, boxes, err := w.nets.detect(w.canvas)
	if err != nil {
		return nil, err
	}
	// Box coordinates are fractions of the 320x240 canvas; the image sits at
	// (ox, oy) in it, scaled by (sx, sy).
	kx, ky := float32(float64(detW)/sx), float32(float64(detH)/sy)
	dx, dy := float32(float64(ox)/sx), float32(float64(oy)/sy)
	fw, fh := float32(iw), float32(ih)
	var cands []candidate
	for i := 0; i < len(scores)/2; i++ {
		sc := scores[2*i+1]
		if sc < w.cfg.ScoreThreshold {
			continue
		}
		b := boxes[4*i : 4*i+4]
		raw := Box{X1: b[0]*kx - dx, Y1: b[1]*ky - dy, X2: b[2]*kx - dx, Y2: b[3]*ky - dy}
		box := Box{
			X1: clampf(raw.X1, 0, fw), Y1: clampf(raw.Y1, 0, fh),
			X2: clampf(raw.X2, 0, fw), Y2: clampf(raw.Y2, 0, fh),
		}
		if box.Width() <= 1 || box.Height() <= 1 {
			continue
		}
		cands = append(cands, candidate{box, raw, sc})
	}
	kept := nms(cands, w.cfg.NMSThreshold)
	out := make([]Detection, len(kept))
	for i, c := range kept {
		out[i] = Detection{Box: c.box, Score: c.score, Raw: c.raw}
	}
	return out, nil
}

func clampf(v, lo, hi float32) float32 { return max(lo, min(hi, v)) }

func (w *worker) setAffine(m Similarity) {
	for r := 0; r < 2; r++ {
		for c := 0; c < 3; c++ {
			w.affine.SetDoubleAt(r, c, m[r][c])
		}
	}
}

// landmarks: square crop -> 64x64 grey / 256 -> 68 (x, y) in [0,1] of the
// crop. The crop is the square box truncated to whole pixels, resized to
// 64x64, exactly as the reference pipeline cuts it when the square lies in
// the image: sub-pixel or padded crops move the points by ~0.3 px and cost
// end-to-end agreement. Where the square leaves the image (a face at the
// frame's edge; box is then the detector's unclamped box) the reference
// clamps the crop, which squeezes the face into a square and misplaces
// every landmark; here the missing part is padded black instead, so the
// face keeps its proportions.
func (w *worker) landmarks(img gocv.Mat, box Box) ([68]Point, error) {
	var pts [68]Point
	sq := box.Square()
	x1, y1 := int(math.Floor(float64(sq.X1))), int(math.Floor(float64(sq.Y1)))
	x2, y2 := int(sq.X2), int(sq.Y2)
	if inside := x1 >= 0 && y1 >= 0 && x2 <= img.Cols() && y2 <= img.Rows(); inside || w.cfg.ReferenceEdgeCrop {
		x1, y1, x2, y2 = max(0, x1), max(0, y1), min(img.Cols(), x2), min(img.Rows(), y2)
		if x2-x1 < 2 || y2-y1 < 2 {
			return pts, nil
		}
		crop := img.Region(image.Rect(x1, y1, x2, y2))
		gocv.Resize(crop, &w.crop64, image.Pt(lmkSize, lmkSize), 0, 0, gocv.InterpolationLinear)
		crop.Close()
	} else if !w.paddedCrop(img, image.Rect(x1, y1, x2, y2)) {
		return pts, nil
	}
	gocv.CvtColor(w.crop64, &w.grey64, gocv.ColorBGRToGray)
	v, err := w.nets.landmarks(w.grey64)
	if err != nil {
		return pts, err
	}
	cw, ch := float32(x2-x1), float32(y2-y1)
	for i := range pts {
		pts[i] = Point{float32(x1) + v[2*i]*cw, float32(y1) + v[2*i+1]*ch}
	}
	return pts, nil
}

// paddedCrop resizes the square r of img into w.crop64, the part of r
// outside img black. It reports false when r holds too little of img.
func (w *worker) paddedCrop(img gocv.Mat, r image.Rectangle) bool {
	in := r.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() < 2 || r.Dy() < 2 || in.Dx()*in.Dy()*4 < r.Dx()*r.Dy() {
		return false // under a quarter of the square in view: not a usable face
	}
	sq := gocv.NewMatWithSize(r.Dy(), r.Dx(), img.Type())
	defer sq.Close()
	sq.SetTo(gocv.NewScalar(0, 0, 0, 0))
	src := img.Region(in)
	dst := sq.Region(in.Sub(r.Min))
	src.CopyTo(&dst)
	src.Close()
	dst.Close()
	gocv.Resize(sq, &w.crop64, image.Pt(lmkSize, lmkSize), 0, 0, gocv.InterpolationLinear)
	return true
}

// align warps the face onto the 112x112 ArcFace template.
func (w *worker) align(img gocv.Mat, five [5]Point) {
	w.setAffine(AlignTransform(five))
	gocv.WarpAffineWithParams(img, &w.aligned, w.affine, image.Pt(alignSize, alignSize),
		gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
}

// embed runs the recognition net on the aligned face (RGB, (x-127)/128)
// and returns the L2-normalised embedding.
func (w *worker) embed() ([]float32, error) {
	v, err := w.nets.embed(w.aligned)
	if err != nil {
		return nil, err
	}
	e := make([]float32, EmbeddingSize)
	copy(e, v)
	l2normalize(e)
	return e, nil
}

// measure returns the Laplacian variance and mean grey of the aligned face.
func (w *worker) measure() (sharp, bright float64) {
	gocv.CvtColor(w.aligned, &w.grey112, gocv.ColorBGRToGray)
	gocv.Laplacian(w.grey112, &w.lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderDefault)
	gocv.MeanStdDev(w.lap, &w.mean, &w.std)
	sd := w.std.GetDoubleAt(0, 0)
	return sd * sd, w.grey112.Mean().Val1
}

// antiSpoof: square box enlarged 2.7x (clamped to the image), 128x128 raw
// BGR 0..255, softmax over 3 classes; class 0 is a real face.
func (w *worker) antiSpoof(img gocv.Mat, box Box) (float32, error) {
	sq := box.Square()
	cx, cy := (sq.X1+sq.X2)/2, (sq.Y1+sq.Y2)/2
	h := sq.Width() * spoofEnlarge / 2
	r := image.Rect(
		int(math.Max(0, float64(cx-h))), int(math.Max(0, float64(cy-h))),
		int(math.Min(float64(img.Cols()), float64(cx+h))), int(math.Min(float64(img.Rows()), float64(cy+h))))
	if r.Dx() < 2 || r.Dy() < 2 {
		return 0, nil
	}
	crop := img.Region(r)
	// What blobFromImage did with the crop: a bilinear resize of the 8-bit
	// image to the network's input.
	gocv.Resize(crop, &w.spoof128, image.Pt(spoofSize, spoofSize), 0, 0, gocv.InterpolationLinear)
	crop.Close()
	v, err := w.nets.antiSpoof(w.spoof128)
	if err != nil {
		return 0, err
	}
	m := max(v[0], v[1], v[2])
	var sum float64
	for _, x := range v[:3] {
		sum += math.Exp(float64(x - m))
	}
	return float32(math.Exp(float64(v[0]-m)) / sum), nil
}
