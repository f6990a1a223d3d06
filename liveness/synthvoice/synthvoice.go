// Package synthvoice owns the synthetic-voice check of liveness: it scores
// how likely the speech in a recording was produced by a text-to-speech
// engine or a vocoder (flite, espeak-ng, festival voices, and the
// re-filtered digit speech make-fake-clip lays on a real speaker's word
// slots) rather than spoken by a person into a microphone.
//
// The score is a small classifier (logistic regression, or one small hidden
// layer) over features of the voiced part of the recording: the mean and
// spread of Google's speech embedding (liveness/speech's front end on ONNX
// Runtime), how fast the embedding moves from frame to frame, and cheap
// signal measures that tell a synthesiser's excitation and prosody from a
// human voice (pitch jitter and micro-prosody, shimmer, harmonics-to-noise
// ratio, spectral flatness, flux and tilt, the modulation spectrum of the
// envelope). The committed weights (model.json) are produced by the lab
// (`trustid-lab train-synthvoice`, lab/speechlab); this package holds only
// what the service runs.
//
// Everything is measured on the 0-4 kHz band only: the real speech the
// model was trained on includes 8 kHz recordings (FSDD), and a check that
// looked above 4 kHz would learn the bandwidth of the corpora instead of
// the voice. Neural text-to-speech and voice cloning are not in the training
// set: see README.md for what the check can and cannot stand for.
package synthvoice

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/trustid/trustid/liveness/speech"
)

// Input bounds, checked before any work.
const (
	// MinDuration and MaxDuration bound the recording (a liveness clip is
	// 2-8 s; media refuses longer evidence before this runs).
	MinDuration = time.Second
	MaxDuration = 12 * time.Second
	// minVoicedFrames is the fewest voiced 80 ms embedding frames a
	// recording needs to be scored (about a quarter of a second of speech
	// at the window centres).
	minVoicedFrames = 3
)

// Rates are the sample rates Synthetic accepts: the usual capture rates.
// An odd rate (47998 Hz) would make the resampler build thousands of filter
// phases, so it is refused rather than paid for.
var Rates = []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}

// Errors callers may branch on.
var (
	// ErrInput: the recording is empty, too short or too long, at an
	// unsupported rate, or holds non-finite samples. A client error.
	ErrInput = errors.New("synthvoice: recording out of range")
	// ErrNoSpeech: the recording holds too little voice to be scored.
	ErrNoSpeech = errors.New("synthvoice: too little speech to score")
	// ErrModel: the model file is missing, malformed or does not match
	// this package's features.
	ErrModel = errors.New("synthvoice: model unavailable")
)

// Frontend is what the check needs from liveness/speech's front end;
// *speech.Frontend implements it.
type Frontend interface {
	// PaddedEmbeddingsMel returns PaddedEmbeddings(pcm, step) and
	// Mel(pcm), computed together.
	PaddedEmbeddingsMel(pcm []int16, step int) ([][speech.EmbeddingDim]float32, [][32]float32, error)
	VoiceActivity(pcm []int16) ([]float32, error)
}

var _ Frontend = (*speech.Frontend)(nil)

// Config builds a Detector.
type Config struct {
	// ModelDir holds the ONNX speech models and libonnxruntime.so
	// (normally $TRUSTID_MODELS). Ignored when Frontend is set.
	ModelDir string
	// Frontend, when set, is shared (for example the recogniser's,
	// speech.EmbeddingRecognizer.Frontend()); the Detector does not close it.
	Frontend Frontend
	// Model is the classifier; nil means the committed model.json.
	Model *Model
	// Threshold overrides the model's threshold when > 0.
	Threshold float64
}

// Detector scores recordings. It is safe for concurrent use.
type Detector struct {
	front     Frontend
	own       *speech.Frontend
	model     *Model
	threshold float64
}

// New loads the model and, unless one is given, a speech front end.
func New(c Config) (*Detector, error) {
	m := c.Model
	if m == nil {
		var err error
		if m, err = DefaultModel(); err != nil {
			return nil, err
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{front: c.Frontend, model: m, threshold: m.Threshold}
	if c.Threshold > 0 {
		d.threshold = c.Threshold
	}
	if d.threshold <= 0 || d.threshold >= 1 {
		return nil, fmt.Errorf("%w: threshold %v not in (0,1)", ErrModel, d.threshold)
	}
	if d.front == nil {
		f, err := speech.NewFrontend(c.ModelDir)
		if err != nil {
			return nil, fmt.Errorf("synthvoice: %w", err)
		}
		d.front, d.own = f, f
	}
	return d, nil
}

// Close releases the front end the Detector opened itself.
func (d *Detector) Close() error {
	if d.own != nil {
		return d.own.Close()
	}
	return nil
}

// Threshold is the score at and above which a recording is judged
// synthetic (chosen by the training command on its training folds; see
// Model.Threshold).
func (d *Detector) Threshold() float64 { return d.threshold }

// Model returns the classifier in use (read-only).
func (d *Detector) Model() *Model { return d.model }

// Synthetic returns the probability-like score (0..1) that the speech in pcm
// is synthetic or vocoded; compare it with Threshold. pcm is mono at rate Hz
// at any scale (±1 floats or int16-scale floats alike: the level is
// normalised first). It returns an error matching ErrInput for an empty, too
// short, too long or non-finite recording or a rate not in Rates,
// ErrNoSpeech when too little of it is voiced, and a
// wrapped runtime error when the models fail (a fault, not a verdict).
func (d *Detector) Synthetic(pcm []float32, rate int) (float64, error) {
	score, _, err := d.SyntheticActivity(pcm, rate)
	return score, err
}

// SyntheticActivity is Synthetic, also returning the voice activity the
// check found on the way (the front end's VoiceActivity of the recording
// as Prepare made it, one probability per speech.ActivityChunk samples;
// also with ErrNoSpeech, nil when it failed before): a caller that needs
// the recording's voice activity too (the speech recogniser's gate,
// speech.EmbeddingRecognizer.ScoreActivity) takes it instead of running
// the detector again.
func (d *Detector) SyntheticActivity(pcm []float32, rate int) (float64, []float32, error) {
	x, err := Prepare(pcm, rate)
	if err != nil {
		return 0, nil, err
	}
	f, act, err := FeaturesActivity(d.front, x)
	if err != nil {
		return 0, act, err
	}
	return d.model.Prob(f), act, nil
}

// bandRate is the rate recordings pass through: 0-4 kHz is what is judged.
const bandRate = 8000

// Prepare checks a recording and brings it to what Features takes: 16 kHz
// int16 holding only the 0-4 kHz band, with its loud end (99.9th percentile of |sample|) at half of full
// scale, so the score does not depend on the recording level.
func Prepare(pcm []float32, rate int) ([]int16, error) {
	if !slices.Contains(Rates, rate) {
		return nil, fmt.Errorf("%w: rate %d Hz not one of %v", ErrInput, rate, Rates)
	}
	n := len(pcm)
	if n < int(MinDuration.Seconds()*float64(rate)) || n > int(MaxDuration.Seconds()*float64(rate)) {
		return nil, fmt.Errorf("%w: %d samples at %d Hz (want %s-%s)", ErrInput, n, rate, MinDuration, MaxDuration)
	}
	var peak float64
	for _, v := range pcm {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, fmt.Errorf("%w: non-finite sample", ErrInput)
		}
		peak = max(peak, a)
	}
	if peak == 0 {
		return nil, fmt.Errorf("%w: silent recording", ErrNoSpeech)
	}
	x := make([]int16, n)
	for i, v := range pcm {
		x[i] = int16(math.Round(float64(v) / peak * 32000))
	}
	// Through 8 kHz and back: only the 0-4 kHz band is judged (see the
	// package comment).
	var err error
	if x, err = speech.Resample(x, rate, bandRate); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if x, err = speech.Resample(x, bandRate, speech.SampleRate); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return Normalise(x), nil
}

// Level normalisation: the loud end of the recording at half of full scale
// (as liveness/speech's VAD sees it), raised by at most normMaxGain so that
// a near-silent recording stays near-silent.
const (
	normTarget  = 0.5
	normMaxGain = 64.0
)

// Normalise returns pcm scaled so that its loud end (speech.PeakLevel, the
// 99.9th percentile of |sample|) sits at half of full scale (gain at most 64, never below 1/64).
func Normalise(pcm []int16) []int16 {
	level := speech.PeakLevel(pcm)
	out := make([]int16, len(pcm))
	if level == 0 {
		copy(out, pcm)
		return out
	}
	g := min(max(normTarget*32768/float64(level), 1/normMaxGain), normMaxGain)
	for i, v := range pcm {
		out[i] = int16(math.Max(-32768, math.Min(32767, math.Round(float64(v)*g))))
	}
	return out
}

//go:embed model.json
var defaultModelJSON []byte

// DefaultModel returns the committed model (model.json).
func DefaultModel() (*Model, error) {
	return ParseModel(defaultModelJSON)
}

// ParseModel decodes and validates a model file.
func ParseModel(b []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
