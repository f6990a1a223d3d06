package liveness

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// gatedFaces analyses the key frames after the first only once the mouth
// tracking has started (or after a timeout, recorded as a failure): the
// tracking must not wait for the whole face analysis.
type gatedFaces struct {
	*fakeFaces
	first   time.Duration // the time of the first key frame
	started chan struct{}
	waited  bool
	mu      sync.Mutex
}

func (g *gatedFaces) Analyze(ctx context.Context, fr media.Frame, opts FaceOptions) (FaceResult, error) {
	if fr.T != g.first {
		select {
		case <-g.started:
		case <-time.After(5 * time.Second):
			g.mu.Lock()
			g.waited = true
			g.mu.Unlock()
		}
	}
	return g.fakeFaces.Analyze(ctx, fr, opts)
}

type startMouths struct {
	fakeMouths
	started chan struct{}
	once    sync.Once
}

func (m *startMouths) TrackMouth(ctx context.Context, frames []media.Frame, start int, lm lipsync.Landmarks) ([]viseme.Shape, error) {
	m.once.Do(func() { close(m.started) })
	return m.fakeMouths.TrackMouth(ctx, frames, start, lm)
}

// TestMouthTrackingStartsEarly: the face mesh starts from the first key
// frame with a face as soon as that frame is analysed, and the decision is
// the same as when everything ran in turn.
func TestMouthTrackingStartsEarly(t *testing.T) {
	e := newEnv(t)
	clip := testClip(e.audio, e.faces.mouth)
	keys := KeyFrames(len(clip.Frames), DefaultKeyFrames)
	started := make(chan struct{})
	g := &gatedFaces{fakeFaces: e.faces, first: clip.Frames[keys[0]].T, started: started}
	mt := &startMouths{fakeMouths: fakeMouths{mouth: e.faces.mouth}, started: started}
	e.reconfigure(t, func(c *Config) { c.Faces, c.Mouths, c.Parallel = g, mt, 1 })
	res, err := e.attempt(t, "alice", "same", clip)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("want pass, got %v (checks %+v)", res.Reasons, res.Checks)
	}
	if g.waited {
		t.Error("the other key frames waited for a mouth tracking that had not started")
	}
	if mt.start != keys[0] {
		t.Errorf("tracking started at frame %d, want the first key frame %d", mt.start, keys[0])
	}
}

// TestMouthTrackingFirstKeyWithFace: with no face in the first key frame
// the tracking starts from the next one; a face engine fault still makes
// the decision internal while the tracking runs.
func TestMouthTrackingFirstKeyWithFace(t *testing.T) {
	e := newEnv(t)
	clip := testClip(e.audio, e.faces.mouth)
	keys := KeyFrames(len(clip.Frames), DefaultKeyFrames)
	first := clip.Frames[keys[0]].T.Seconds()
	e.faces.noFace = func(t float64) bool { return t == first }
	mt := &fakeMouths{mouth: e.faces.mouth}
	e.reconfigure(t, func(c *Config) { c.Mouths = mt })
	if _, err := e.attempt(t, "alice", "same", clip); err != nil {
		t.Fatal(err)
	}
	if mt.start != keys[1] {
		t.Errorf("tracking started at frame %d, want the second key frame %d", mt.start, keys[1])
	}

	e.faces.noFace = nil
	e.faces.err = errors.New("engine down")
	res, err := e.attempt(t, "alice", "same", clip)
	if err == nil || !res.Has(ReasonInternal) || res.Pass {
		t.Fatalf("want an internal failure, got %+v, %v", res, err)
	}
}
