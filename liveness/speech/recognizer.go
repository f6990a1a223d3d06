package speech

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Defaults of the accept rule and the sequence model, chosen from the
// measurements in RESULTS.md.
const (
	// DefaultMinFrames is the shortest a digit may last in the alignment
	// (80 ms frames).
	DefaultMinFrames = 2
	// DefaultMaxFrames and DefaultOverrun: a digit longer than 7 frames
	// (560 ms of window centres, a long FSDD digit plus the label reach)
	// pays 2 nats per extra frame (see ScoreSequenceDur; 7/2 beat 8/1 and
	// 9/1 on a 30-utterance run, RESULTS.md).
	DefaultMaxFrames = 7
	DefaultOverrun   = 2.0
	// DefaultThreshold is the accept rule: Match = Margin >= -40 nats,
	// i.e. the expected string's best alignment may fall short of the best
	// alignment of any other string by at most 40 nats. A genuine speaker
	// whose one or two digits the head mishears stays within it; a
	// recording of other digits (a replay made for another challenge)
	// falls far below. Chosen on a validation speaker, never on the test
	// speaker (RESULTS.md, "Accept rule"): with a head trained on george,
	// jackson and nicolas, theo held out, the loosest whole-nat threshold
	// whose false accept of uniformly random wrong strings is below 0.5 %
	// (half the 1 % limit, for speaker variation): 0.485 % of 13,200.
	DefaultThreshold = -40.0
	// minFarDigits is the shortest expected string FarMargin is computed
	// for (shorter strings get -Inf).
	minFarDigits = 4
	// DefaultPriorScale: how much of the class prior the sequence step
	// divides out of the posteriors.
	DefaultPriorScale = 0.0
	// DefaultSegmentWeight scales the segment head's log-likelihood ratio
	// (expected vs best other alignment) added to the frame margin; 0
	// turns the second stage off. 0.25 was chosen on seed 2 and the
	// rotated fold as the weight that raised genuine acceptance at
	// threshold 1 without the one-digit-changed false accept nearing 1 %
	// (larger weights reached it), and confirmed on seed 3 (RESULTS.md).
	DefaultSegmentWeight = 0.25
	// padSamples of silence go before and after the audio so that the
	// 775 ms embedding windows can centre on its first and last digits.
	padSamples = 6400
	// minSamples and maxSamples bound the recording (0.5 s to 12 s).
	minSamples = SampleRate / 2
	maxSamples = 12 * SampleRate
	// minVoiced is the least voice activity a recording must hold.
	minVoiced = 200 * time.Millisecond
	// VoiceThreshold is the voice activity probability at and above which
	// a chunk counts as voiced (Result.Voiced).
	VoiceThreshold = 0.5
)

// EmbeddingRecognizer is the English digit recogniser on the speech
// embedding and the trained head.
type EmbeddingRecognizer struct {
	front      *Frontend
	head       *Head
	minFrames  int
	maxFrames  int
	overrun    float64
	threshold  float64
	priorScale float64
	segWeight  float64
	modelDir   string
}

var _ Recognizer = (*EmbeddingRecognizer)(nil)

// Config configures NewEmbeddingRecognizer. Zero values take the defaults.
type Config struct {
	// ModelDir holds the ONNX models and libonnxruntime.so ($TRUSTID_MODELS).
	ModelDir string
	// Head is the digit classifier; nil loads the committed DefaultHead.
	Head *Head
	// MinFrames is the shortest digit in 80 ms frames (DefaultMinFrames).
	MinFrames int
	// MaxFrames (DefaultMaxFrames) and Overrun (nil: DefaultOverrun) are
	// the duration model of ScoreSequenceDur.
	MaxFrames int
	Overrun   *float64
	// Threshold is the accept margin in nats; nil means DefaultThreshold.
	Threshold *float64
	// PriorScale; nil means DefaultPriorScale.
	PriorScale *float64
	// SegmentWeight; nil means DefaultSegmentWeight. It has no effect
	// with a head that has no segment classifier.
	SegmentWeight *float64
}

// NewEmbeddingRecognizer loads the front end and the head.
func NewEmbeddingRecognizer(c Config) (*EmbeddingRecognizer, error) {
	h := c.Head
	if h == nil {
		var err error
		if h, err = DefaultHead(); err != nil {
			return nil, err
		}
	}
	f, err := NewFrontend(c.ModelDir)
	if err != nil {
		return nil, err
	}
	r := &EmbeddingRecognizer{front: f, head: h, minFrames: DefaultMinFrames, threshold: DefaultThreshold, modelDir: c.ModelDir}
	if c.MinFrames > 0 {
		r.minFrames = c.MinFrames
	}
	r.maxFrames, r.overrun = DefaultMaxFrames, DefaultOverrun
	if c.MaxFrames > 0 {
		r.maxFrames = c.MaxFrames
	}
	if c.Overrun != nil {
		r.overrun = *c.Overrun
	}
	if c.Threshold != nil {
		r.threshold = *c.Threshold
	}
	r.priorScale = DefaultPriorScale
	if c.PriorScale != nil {
		r.priorScale = *c.PriorScale
	}
	r.segWeight = DefaultSegmentWeight
	if c.SegmentWeight != nil {
		r.segWeight = *c.SegmentWeight
	}
	return r, nil
}

// Close releases the ONNX Runtime sessions.
func (r *EmbeddingRecognizer) Close() error { return r.front.Close() }

// Lang implements Recognizer.
func (r *EmbeddingRecognizer) Lang() string { return "en" }

// Frontend returns the recogniser's front end (for evaluation and training).
func (r *EmbeddingRecognizer) Frontend() *Frontend { return r.front }

// Config returns the recogniser's configuration with every default filled
// in (for evaluation reports).
func (r *EmbeddingRecognizer) Config() Config {
	f := func(v float64) *float64 { return &v }
	return Config{ModelDir: r.modelDir, Head: r.head, MinFrames: r.minFrames, MaxFrames: r.maxFrames,
		Overrun: f(r.overrun), Threshold: f(r.threshold), PriorScale: f(r.priorScale), SegmentWeight: f(r.segWeight)}
}

// ParseDigits turns "4291" into []int{4,2,9,1}, or fails with ErrExpected.
func ParseDigits(s string) ([]int, error) {
	if len(s) == 0 || len(s) > 8 {
		return nil, ErrExpected
	}
	out := make([]int, len(s))
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return nil, ErrExpected
		}
		out[i] = int(s[i] - '0')
	}
	return out, nil
}

func digitString(d []int) string {
	b := make([]byte, len(d))
	for i, v := range d {
		b[i] = byte('0' + v)
	}
	return string(b)
}

// padded returns pcm with padSamples of silence on each side.
func padded(pcm []int16) []int16 {
	out := make([]int16, len(pcm)+2*padSamples)
	copy(out[padSamples:], pcm)
	return out
}

// Analysis is the expensive, expectation-free part of scoring one
// recording; it can be scored against many expected strings.
type Analysis struct {
	LogPost  [][NumClasses]float64 // log posteriors per frame
	Scores   [][NumClasses]float64 // what the sequence step aligns
	Activity []float32
	Voiced   time.Duration
	// z holds the standardised embeddings when the head has a segment
	// classifier.
	z [][EmbeddingDim]float32
}

// Analyze runs the front end and the head on pcm (16 kHz mono).
func (r *EmbeddingRecognizer) Analyze(ctx context.Context, pcm []int16) (Analysis, error) {
	return r.AnalyzeActivity(ctx, pcm, nil)
}

// AnalyzeActivity is Analyze with the recording's voice activity already
// found (one probability per ActivityChunk samples, as the front end's
// VoiceActivity gives it, on pcm or on a copy of it: the synthetic-voice
// check's, of the 0-4 kHz band). It only decides whether there is enough
// voice to score (ErrNoSpeech) and is returned in Analysis.Activity: the
// scores do not depend on it. nil: VoiceActivity(pcm) runs here.
func (r *EmbeddingRecognizer) AnalyzeActivity(ctx context.Context, pcm []int16, act []float32) (Analysis, error) {
	if len(pcm) < minSamples || len(pcm) > maxSamples {
		return Analysis{}, fmt.Errorf("%w: %v", ErrAudioLength, time.Duration(len(pcm))*time.Second/SampleRate)
	}
	if act == nil {
		var err error
		if act, err = r.front.VoiceActivity(pcm); err != nil {
			return Analysis{}, err
		}
	}
	var voiced time.Duration
	for _, p := range act {
		if p >= VoiceThreshold {
			voiced += ActivityHop
		}
	}
	if voiced < minVoiced {
		return Analysis{}, fmt.Errorf("%w: %v voiced", ErrNoSpeech, voiced)
	}
	if err := ctx.Err(); err != nil {
		return Analysis{}, err
	}
	emb, err := r.front.PaddedEmbeddings(pcm, r.head.step())
	if err != nil {
		return Analysis{}, err
	}
	// The head runs once: Scores are LogPosteriors with the prior divided
	// out (FrameScores), on a copy.
	z := r.head.Standardise(emb)
	lp := r.head.logPosteriors(z)
	a := Analysis{LogPost: lp, Scores: r.head.withPrior(slices.Clone(lp), r.priorScale), Activity: act, Voiced: voiced}
	if k := r.head.step(); k != EmbeddingStep {
		// Finer hops give more (and more correlated) frames per second:
		// scale the frame scores so that margins stay in nats per 80 ms.
		for t := range a.Scores {
			for c := range NumClasses {
				a.Scores[t][c] *= float64(k) / EmbeddingStep
			}
		}
	}
	if r.head.Segment != nil {
		// Kept even when the recogniser's segment weight is 0, so that
		// ScoreAnalysisWeighted can weigh the segment head in.
		a.z = z
	}
	return a, nil
}

// ScoreAnalysis scores an Analysis against expected digits.
func (r *EmbeddingRecognizer) ScoreAnalysis(a Analysis, expected []int) Result {
	return r.ScoreAnalysisWeighted(a, expected, r.segWeight)
}

// ScoreAnalysisWeighted is ScoreAnalysis with segWeight in place of the
// recogniser's segment weight (for evaluations that sweep it).
func (r *EmbeddingRecognizer) ScoreAnalysisWeighted(a Analysis, expected []int, segWeight float64) Result {
	// The duration model is set in 80 ms frames; scale it to the head's hop.
	k := r.head.step()
	s := ScoreSequenceDur(a.Scores, expected, r.minFrames*EmbeddingStep/k, r.maxFrames*EmbeddingStep/k, r.overrun*float64(k)/EmbeddingStep)
	margin, far, best := s.Margin(), s.FarMargin(), s.Best()
	if a.z != nil && segWeight != 0 {
		// Second stage: the segment head's log-likelihood ratio of the
		// expected string's alignment against the best competing one.
		seg := func(other Path) float64 {
			v := r.head.Segment.pathLogLik(a.z, s.Expected) - r.head.Segment.pathLogLik(a.z, other)
			if math.IsNaN(v) {
				return 0
			}
			return segWeight * v
		}
		if !math.IsInf(margin, 0) {
			margin += seg(s.Other)
			if best = s.Expected; margin < 0 {
				best = s.Other
			}
		}
		if !math.IsInf(far, 0) {
			far += seg(s.Far)
		}
	}
	if len(expected) < minFarDigits {
		// Not meaningful when the string has so few digits.
		far = math.Inf(-1)
	}
	res := Result{
		Digits:    digitString(best.Digits),
		Margin:    margin,
		FarMargin: far,
		Voiced:    a.Voiced,
		Activity:  a.Activity,
		Frames:    len(a.LogPost),
	}
	res.Match = !math.IsInf(margin, 0) && margin >= r.threshold
	res.DigitConfidence = make([]float64, len(expected))
	res.Segments = make([]Segment, len(expected))
	for k, sp := range s.Expected.Spans {
		if sp[1] <= sp[0] {
			continue
		}
		var sum float64
		for t := sp[0]; t < sp[1]; t++ {
			sum += math.Exp(a.LogPost[t][expected[k]])
		}
		res.DigitConfidence[k] = sum / float64(sp[1]-sp[0])
		res.Segments[k] = Segment{Start: frameCentre(sp[0], r.head.step()), End: frameCentre(sp[1], r.head.step())}
	}
	return res
}

// frameCentre is the time in the unpadded recording at which embedding
// frame t's window (step mel frames apart) is centred.
func frameCentre(t, step int) time.Duration {
	ms := t*step*10 + embWindow*10/2 - padSamples*1000/SampleRate
	return time.Duration(max(ms, 0)) * time.Millisecond
}

// Score implements Recognizer.
func (r *EmbeddingRecognizer) Score(ctx context.Context, pcm []int16, expected string) (Result, error) {
	return r.ScoreActivity(ctx, pcm, expected, nil)
}

// ScoreActivity is Score with the recording's voice activity already
// found (see AnalyzeActivity; nil: found here).
func (r *EmbeddingRecognizer) ScoreActivity(ctx context.Context, pcm []int16, expected string, act []float32) (Result, error) {
	exp, err := ParseDigits(expected)
	if err != nil {
		return Result{}, err
	}
	a, err := r.AnalyzeActivity(ctx, pcm, act)
	if err != nil {
		return Result{}, err
	}
	return r.ScoreAnalysis(a, exp), nil
}
