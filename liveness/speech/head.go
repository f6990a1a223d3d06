package speech

import (
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// Classes of the head: digits 0-9, and Other for silence, noise and
// anything that is not the core of a digit.
const (
	NumClasses = 11
	Other      = 10
)

// Head is the digit classifier: a one-hidden-layer MLP over the standardised
// embeddings of a frame and Context neighbours on each side, with a softmax
// over NumClasses. It is the project's own artifact, trained by the lab
// (`trustid-lab train-digits`, lab/speechlab).
type Head struct {
	Context int // neighbours each side
	// Stride is the distance in frames between the context neighbours
	// (0 or 1: adjacent frames).
	Stride int
	// Step is the embedding hop in 10 ms mel frames (0: 8, i.e. 80 ms).
	Step   int
	Hidden int
	Mean   []float32 // per embedding dimension
	Std    []float32
	W1     []float32 // Hidden x In, row-major
	B1     []float32
	W2     []float32 // NumClasses x Hidden
	B2     []float32
	// LogPrior is the log frequency of each class in the training frames;
	// the sequence step can divide it out (scaled likelihoods).
	LogPrior []float32
	// Segment is the optional second-stage segment classifier (nil in
	// heads trained before it existed).
	Segment *SegmentHead
	Meta    HeadMeta
}

// HeadMeta records how a head was made.
type HeadMeta struct {
	Command       string            `json:"command"`
	Seed          int64             `json:"seed"`
	TrainSpeakers []string          `json:"train_speakers"`
	HeldOut       []string          `json:"held_out_speakers"`
	Synthetic     int               `json:"synthetic_clips"`
	Examples      int               `json:"training_frames"`
	Epochs        int               `json:"epochs"`
	Evaluation    map[string]string `json:"evaluation,omitempty"`
}

// step returns the embedding hop in mel frames.
func (h *Head) step() int {
	if h.Step <= 0 {
		return EmbeddingStep
	}
	return h.Step
}

// stride returns the distance between context frames.
func (h *Head) stride() int { return max(h.Stride, 1) }

// In is the input width of the head.
func (h *Head) In() int { return (2*h.Context + 1) * EmbeddingDim }

type headJSON struct {
	Version int          `json:"version"`
	Context int          `json:"context"`
	Stride  int          `json:"context_stride,omitempty"`
	Step    int          `json:"step_mel_frames,omitempty"`
	Hidden  int          `json:"hidden"`
	Classes int          `json:"classes"`
	Mean    string       `json:"mean_f32le_b64"`
	Std     string       `json:"std_f32le_b64"`
	W1      string       `json:"w1_f32le_b64"`
	B1      string       `json:"b1_f32le_b64"`
	W2      string       `json:"w2_f32le_b64"`
	B2      string       `json:"b2_f32le_b64"`
	Prior   []float32    `json:"log_prior"`
	Segment *segmentJSON `json:"segment,omitempty"`
	Meta    HeadMeta     `json:"meta"`
}

func encF32(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decF32(s string, n int) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), 4*n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(v[i])) || math.IsInf(float64(v[i]), 0) {
			return nil, fmt.Errorf("value %d is not finite", i)
		}
	}
	return v, nil
}

// MarshalJSON stores the weights as base64 little-endian float32 (compact
// and exact) next to readable metadata.
func (h *Head) MarshalJSON() ([]byte, error) {
	return json.MarshalIndent(headJSON{
		Version: 1, Context: h.Context, Stride: h.Stride, Step: h.Step, Hidden: h.Hidden, Classes: NumClasses,
		Mean: encF32(h.Mean), Std: encF32(h.Std),
		W1: encF32(h.W1), B1: encF32(h.B1), W2: encF32(h.W2), B2: encF32(h.B2),
		Prior: h.LogPrior, Segment: h.Segment.toJSON(), Meta: h.Meta,
	}, "", " ")
}

// UnmarshalJSON reads what MarshalJSON wrote and checks every size.
func (h *Head) UnmarshalJSON(b []byte) error {
	var j headJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: head: %w", ErrModel, err)
	}
	if j.Version != 1 || j.Classes != NumClasses || j.Context < 0 || j.Context > 8 || j.Hidden < 1 || j.Hidden > 1024 {
		return fmt.Errorf("%w: head: version %d, %d classes, context %d, hidden %d", ErrModel, j.Version, j.Classes, j.Context, j.Hidden)
	}
	if j.Stride < 0 || j.Stride > 8 || j.Step < 0 || j.Step > EmbeddingStep {
		return fmt.Errorf("%w: head: context stride %d, step %d", ErrModel, j.Stride, j.Step)
	}
	if len(j.Prior) != 0 && len(j.Prior) != NumClasses {
		return fmt.Errorf("%w: head: %d log priors", ErrModel, len(j.Prior))
	}
	out := Head{Context: j.Context, Stride: j.Stride, Step: j.Step, Hidden: j.Hidden, Meta: j.Meta, LogPrior: j.Prior}
	in := out.In()
	for _, f := range []struct {
		dst *[]float32
		src string
		n   int
	}{
		{&out.Mean, j.Mean, EmbeddingDim}, {&out.Std, j.Std, EmbeddingDim},
		{&out.W1, j.W1, j.Hidden * in}, {&out.B1, j.B1, j.Hidden},
		{&out.W2, j.W2, NumClasses * j.Hidden}, {&out.B2, j.B2, NumClasses},
	} {
		v, err := decF32(f.src, f.n)
		if err != nil {
			return fmt.Errorf("%w: head weights: %w", ErrModel, err)
		}
		*f.dst = v
	}
	seg, err := j.Segment.decode()
	if err != nil {
		return fmt.Errorf("%w: segment head weights: %w", ErrModel, err)
	}
	out.Segment = seg
	*h = out
	return nil
}

//go:embed digits_head.json
var defaultHeadJSON []byte

// DefaultHead returns the committed head (digits_head.json).
func DefaultHead() (*Head, error) {
	var h Head
	if err := json.Unmarshal(defaultHeadJSON, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// The apply steps below are exported so that the lab trains the head
// through exactly the code the recogniser runs.

// Standardise returns the embeddings scaled by the head's Mean and Std.
func (h *Head) Standardise(emb [][EmbeddingDim]float32) [][EmbeddingDim]float32 {
	out := make([][EmbeddingDim]float32, len(emb))
	for i := range emb {
		for d := range EmbeddingDim {
			out[i][d] = (emb[i][d] - h.Mean[d]) / h.Std[d]
		}
	}
	return out
}

// FrameInput fills x (length In) with frame t's context window of the
// standardised embeddings z (neighbours Stride frames apart); frames beyond
// the ends repeat the edge frame.
func (h *Head) FrameInput(x []float32, z [][EmbeddingDim]float32, t int) {
	st := h.stride()
	for k := -h.Context; k <= h.Context; k++ {
		j := min(max(t+k*st, 0), len(z)-1)
		copy(x[(k+h.Context)*EmbeddingDim:], z[j][:])
	}
}

// Forward computes the hidden activations hid (ReLU, length Hidden) and the
// log-softmax outputs logp for the input x (FrameInput).
func (h *Head) Forward(x, hid []float32, logp *[NumClasses]float64) {
	in := len(x)
	for j := range h.Hidden {
		w := h.W1[j*in : (j+1)*in]
		s := h.B1[j]
		for i, v := range x {
			s += w[i] * v
		}
		hid[j] = max(s, 0)
	}
	for c := range NumClasses {
		w := h.W2[c*h.Hidden : (c+1)*h.Hidden]
		s := h.B2[c]
		for j, v := range hid {
			s += w[j] * v
		}
		logp[c] = float64(s)
	}
	logSoftmax(logp[:])
}

// logSoftmax turns scores into log probabilities in place.
func logSoftmax(v []float64) {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, x)
	}
	var z float64
	for _, x := range v {
		z += math.Exp(x - mx)
	}
	lz := mx + math.Log(z)
	for i := range v {
		v[i] -= lz
	}
}

// FrameScores returns LogPosteriors minus priorScale times the class log
// priors (0 = posteriors, 1 = scaled likelihoods).
func (h *Head) FrameScores(emb [][EmbeddingDim]float32, priorScale float64) [][NumClasses]float64 {
	return h.withPrior(h.LogPosteriors(emb), priorScale)
}

// withPrior divides priorScale of the class prior out of the log
// posteriors lp, in place, and returns lp.
func (h *Head) withPrior(lp [][NumClasses]float64, priorScale float64) [][NumClasses]float64 {
	if priorScale == 0 || len(h.LogPrior) != NumClasses {
		return lp
	}
	for t := range lp {
		for c := range NumClasses {
			lp[t][c] -= priorScale * float64(h.LogPrior[c])
		}
	}
	return lp
}

// LogPosteriors returns, per embedding frame, the log posterior of each class.
func (h *Head) LogPosteriors(emb [][EmbeddingDim]float32) [][NumClasses]float64 {
	return h.logPosteriors(h.Standardise(emb))
}

// logPosteriors is LogPosteriors on standardised embeddings.
func (h *Head) logPosteriors(z [][EmbeddingDim]float32) [][NumClasses]float64 {
	x := make([]float32, h.In())
	hid := make([]float32, h.Hidden)
	out := make([][NumClasses]float64, len(z))
	for t := range z {
		h.FrameInput(x, z, t)
		h.Forward(x, hid, &out[t])
	}
	return out
}
