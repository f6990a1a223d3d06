package facelogin

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
	"github.com/trustid/trustid/liveness/synthvoice"
)

// Faces adapts the OpenCV face engine to liveness.FaceAnalyzer.
type Faces struct{ Engine *face.Engine }

var _ liveness.FaceAnalyzer = Faces{}

// Analyze implements liveness.FaceAnalyzer.
func (a Faces) Analyze(ctx context.Context, f media.Frame, opts liveness.FaceOptions) (liveness.FaceResult, error) {
	r, err := a.Engine.Analyze(ctx, face.Frame{Width: f.Width, Height: f.Height, BGR: f.BGR}, opts.Embedding, opts.AntiSpoof)
	if errors.Is(err, face.ErrNoFace) {
		return liveness.FaceResult{}, fmt.Errorf("%w: %v", liveness.ErrNoFace, err)
	}
	if err != nil {
		return liveness.FaceResult{}, err
	}
	out := liveness.FaceResult{Faces: r.Faces, Real: float64(r.Real), Embedding: r.Embedding}
	for i, p := range r.Face.Landmarks {
		out.Landmarks[i] = lipsync.Point{X: p.X, Y: p.Y}
	}
	return out, nil
}

// Speech adapts a speech.Recognizer to liveness.SpeechChecker.
type Speech struct{ Recognizer speech.Recognizer }

var _ liveness.SpeechChecker = Speech{}

// activityScorer is a recogniser that can take the recording's voice
// activity instead of finding it (speech.EmbeddingRecognizer).
type activityScorer interface {
	ScoreActivity(ctx context.Context, pcm []int16, expected string, act []float32) (speech.Result, error)
}

// CheckDigits implements liveness.SpeechChecker; the activity reaches a
// recogniser that takes it (speech.EmbeddingRecognizer.ScoreActivity).
func (a Speech) CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (liveness.SpeechResult, error) {
	var r speech.Result
	var err error
	if s, ok := a.Recognizer.(activityScorer); ok && activity != nil {
		r, err = s.ScoreActivity(ctx, pcm, expected, activity)
	} else {
		r, err = a.Recognizer.Score(ctx, pcm, expected)
	}
	if errors.Is(err, speech.ErrNoSpeech) {
		return liveness.SpeechResult{}, fmt.Errorf("%w: %v", liveness.ErrNoSpeech, err)
	}
	if err != nil {
		return liveness.SpeechResult{}, err
	}
	out := liveness.SpeechResult{Match: r.Match, Score: r.Margin}
	for _, sg := range r.Segments {
		out.Segments = append(out.Segments, liveness.Segment{Start: sg.Start, End: sg.End})
	}
	return out, nil
}

// Voice adapts the synthetic-voice detector to liveness.VoiceCheck: a
// recording it cannot judge (no voiced frames, out of its range) is
// liveness.ErrNoSpeech, a property of the clip, not a fault.
type Voice struct{ Detector *synthvoice.Detector }

var _ liveness.VoiceCheck = Voice{}

// Synthetic implements liveness.VoiceCheck.
func (a Voice) Synthetic(pcm []float32, rate int) (float64, []float32, error) {
	score, act, err := a.Detector.SyntheticActivity(pcm, rate)
	if errors.Is(err, synthvoice.ErrNoSpeech) || errors.Is(err, synthvoice.ErrInput) {
		return 0, act, fmt.Errorf("%w: %v", liveness.ErrNoSpeech, err)
	}
	if err != nil {
		return 0, nil, err
	}
	return score, act, nil
}

// IdentityRefs adapts the identity service to liveness.ReferenceMatcher: the
// live face is compared with the citizen's register and enrolled templates
// at the configured operating point.
type IdentityRefs struct{ Service *identity.Service }

var _ liveness.ReferenceMatcher = IdentityRefs{}

// MatchReference implements liveness.ReferenceMatcher.
func (m IdentityRefs) MatchReference(ctx context.Context, subject string, emb []float32) (liveness.MatchResult, error) {
	ok, score, err := m.Service.MatchReference(ctx, subject, emb)
	if err != nil {
		return liveness.MatchResult{}, err
	}
	return liveness.MatchResult{Match: ok, Score: float64(score)}, nil
}

// MemoryRefs is a liveness.ReferenceMatcher over reference embeddings held
// in memory, compared by cosine similarity against Threshold. Evaluation and
// tests use it; the service plugs in IdentityRefs.
type MemoryRefs struct {
	Refs      map[string][]float32
	Threshold float64
}

var _ liveness.ReferenceMatcher = MemoryRefs{}

// MatchReference implements liveness.ReferenceMatcher; an unknown subject
// is no match.
func (m MemoryRefs) MatchReference(ctx context.Context, subject string, emb []float32) (liveness.MatchResult, error) {
	ref, ok := m.Refs[subject]
	if !ok {
		return liveness.MatchResult{}, nil
	}
	s := float64(face.Cosine(ref, emb))
	return liveness.MatchResult{Match: s >= m.Threshold, Score: s}, nil
}
