package face

// Point is an image position in pixels.
type Point struct{ X, Y float32 }

// Box is a face rectangle in pixels (corners).
type Box struct{ X1, Y1, X2, Y2 float32 }

func (b Box) Width() float32  { return b.X2 - b.X1 }
func (b Box) Height() float32 { return b.Y2 - b.Y1 }
func (b Box) Area() float32   { return max(0, b.Width()) * max(0, b.Height()) }

// Square is the square box of side = height around the same centre, used
// for the landmark and anti-spoof crops.
func (b Box) Square() Box {
	cx, cy := (b.X1+b.X2)/2, (b.Y1+b.Y2)/2
	h := b.Height() / 2
	return Box{cx - h, cy - h, cx + h, cy + h}
}

// Pose is a rough head pose in degrees (see EstimatePose).
type Pose struct{ Yaw, Pitch, Roll float64 }

// Detection is one detected face.
type Detection struct {
	Box   Box // clamped to the frame
	Score float32
	// Raw is the box as detected, which may extend past the frame (a face
	// at the edge): the landmark crop is cut from it, padded, so that the
	// landmark net sees the face's true proportions.
	Raw Box
}

// Face is the chosen face of an image with its landmarks.
type Face struct {
	Box       Box
	Raw       Box // Detection.Raw: may extend past the frame
	Score     float32
	Landmarks [68]Point
	Five      [5]Point
	Pose      Pose
}

// Quality holds the measures the gates looked at.
type Quality struct {
	Sharpness  float64 // variance of the Laplacian of the aligned grey face
	Brightness float64 // mean grey level of the aligned face, 0..255
	FaceSize   float64 // box height in pixels
	// AlignResidual is the root-mean-square distance, in pixels of the
	// 112x112 aligned face, between the five landmarks after the
	// similarity fit and the template's five points: a face whose
	// landmarks were found in the wrong place (a half profile, a face
	// cut by the frame) cannot be fitted well (see AlignResidual).
	AlignResidual float64
	// EyeBoxRatio is the eye distance over the detector box's width
	// (about 0.5 for a frontal face): landmarks found on half a face (the
	// box of a face cut by the frame, or a half profile) crowd together.
	EyeBoxRatio float64
}

// Result is what the engine found in one image or frame. Embedding is nil
// and HasAntiSpoof false when the options skipped them.
type Result struct {
	Width, Height int
	Faces         int // faces detected (the chosen one included)
	Face          Face
	Quality       Quality
	Embedding     []float32 // 512-d, L2-normalised
	Real          float32   // anti-spoof probability of a real face, 0..1
	HasAntiSpoof  bool
	// Timings is where the call's time went, when Options.Timings asked.
	Timings *Timings
}

// Selection says which face to keep when there are several.
type Selection int

const (
	SelectLargest Selection = iota // largest box: the person at the camera
	SelectCentral                  // nearest the image centre: centred photo sets such as LFW
)

// Options choose the work done for one image. The zero value runs
// detection, landmarks and quality gates only.
type Options struct {
	Embedding bool // compute the aligned 512-d embedding
	AntiSpoof bool // run the passive anti-spoof model
	// AllowSeveral keeps the selected face when more than one is found
	// instead of failing with ErrSeveralFaces (Result.Faces says how many).
	AllowSeveral bool
	// SkipGates turns off the size, blur, pose and brightness gates (no-face
	// always fails). For evaluations and per-frame analysis.
	SkipGates bool
	Select    Selection
	// Flip adds the embedding of the mirrored aligned face (test-time
	// augmentation): slightly more accurate, one more network pass.
	Flip bool
	// Timings fills Result.Timings with the wall and thread CPU time of
	// each stage (benchmarks; the call stays on one OS thread meanwhile).
	Timings bool
}

// Frame is a raw 8-bit BGR image (rows top to bottom, no padding), as
// decoded video frames arrive.
type Frame struct {
	Width, Height int
	BGR           []byte
}
