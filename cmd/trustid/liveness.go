package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
)

// livenessFaces adapts the OpenCV face engine to liveness.FaceAnalyzer.
type livenessFaces struct{ eng *face.Engine }

var _ liveness.FaceAnalyzer = livenessFaces{}

func (a livenessFaces) Analyze(ctx context.Context, f media.Frame, opts liveness.FaceOptions) (liveness.FaceResult, error) {
	r, err := a.eng.Analyze(ctx, face.Frame{Width: f.Width, Height: f.Height, BGR: f.BGR}, opts.Embedding, opts.AntiSpoof)
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

// livenessSpeech adapts a speech.Recognizer to liveness.SpeechChecker.
type livenessSpeech struct{ rec speech.Recognizer }

var _ liveness.SpeechChecker = livenessSpeech{}

func (a livenessSpeech) CheckDigits(ctx context.Context, pcm []int16, expected string) (liveness.SpeechResult, error) {
	r, err := a.rec.Score(ctx, pcm, expected)
	if errors.Is(err, speech.ErrNoSpeech) {
		return liveness.SpeechResult{}, fmt.Errorf("%w: %v", liveness.ErrNoSpeech, err)
	}
	if err != nil {
		return liveness.SpeechResult{}, err
	}
	return liveness.SpeechResult{Match: r.Match, Score: r.Margin}, nil
}

// livenessRefs is a ReferenceMatcher over reference embeddings held in
// memory (evaluation; the service plugs in the enrolment store).
type livenessRefs struct {
	refs      map[string][]float32
	threshold float64
}

func (m livenessRefs) MatchReference(ctx context.Context, subject string, emb []float32) (liveness.MatchResult, error) {
	ref, ok := m.refs[subject]
	if !ok {
		return liveness.MatchResult{}, nil
	}
	s := float64(face.Cosine(ref, emb))
	return liveness.MatchResult{Match: s >= m.threshold, Score: s}, nil
}
