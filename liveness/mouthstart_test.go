package liveness

import (
	"context"
	"errors"
	"slices"
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

// countingFaces records how many key frames are analysed at once; the
// first call waits (up to a second) for a second one to start.
type countingFaces struct {
	*fakeFaces
	mu         sync.Mutex
	now, most  int
	analysedAt []time.Duration
	pair       chan struct{} // closed when two run at once
	paired     bool
}

func (c *countingFaces) Analyze(ctx context.Context, fr media.Frame, opts FaceOptions) (FaceResult, error) {
	c.mu.Lock()
	c.now++
	c.most = max(c.most, c.now)
	c.analysedAt = append(c.analysedAt, fr.T)
	first := len(c.analysedAt) == 1
	if c.now == 2 && c.most == 2 && !c.paired {
		c.paired = true
		close(c.pair)
	}
	c.mu.Unlock()
	if first {
		select {
		case <-c.pair:
		case <-time.After(time.Second):
		}
	}
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	return c.fakeFaces.Analyze(ctx, fr, opts)
}

// TestKeyFramesOneAtATimeBesideMouths: with the mouth tracking the key
// frames go through the face engine one at a time, in order (the first, which
// the tracking needs, at full speed), whatever Parallel says; without it,
// Parallel at a time.
func TestKeyFramesOneAtATimeBesideMouths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mouths bool
		most   int
	}{
		{"with the mouth tracking", true, 1},
		{"without", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			clip := testClip(e.audio, e.faces.mouth)
			c := &countingFaces{fakeFaces: e.faces, pair: make(chan struct{})}
			e.reconfigure(t, func(cfg *Config) {
				cfg.Faces, cfg.Parallel, cfg.Mouths = c, 2, nil
				if tc.mouths {
					cfg.Mouths = &fakeMouths{mouth: e.faces.mouth}
				}
			})
			res, err := e.attempt(t, "alice", "same", clip)
			if err != nil || !res.Pass {
				t.Fatalf("want pass, got %+v, %v", res, err)
			}
			if c.most != tc.most {
				t.Errorf("%d key frames analysed at once, want %d", c.most, tc.most)
			}
			if tc.mouths && !slices.IsSorted(c.analysedAt) {
				t.Errorf("key frames analysed in the order %v", c.analysedAt)
			}
		})
	}
}

// TestOnStage: a digits decision tells Config.OnStage of each stage as it
// ends, the decision last; without OnStage nothing is recorded.
func TestOnStage(t *testing.T) {
	e := newEnv(t)
	clip := testClip(e.audio, e.faces.mouth)
	var mu sync.Mutex
	var got []string
	e.reconfigure(t, func(c *Config) {
		c.Mouths = &fakeMouths{mouth: e.faces.mouth}
		c.OnStage = func(stage string, since time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if since < 0 {
				t.Errorf("%s at %v", stage, since)
			}
			got = append(got, stage)
		}
	})
	res, err := e.attempt(t, "alice", "same", clip)
	if err != nil || !res.Pass {
		t.Fatalf("want pass, got %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{StageFrames, StageKeyFrame + "0", StageKeyFrame + "1", StageKeyFrame + "2", StageKeyFrame + "3", StageSpeech, StageMouth, StageDecision}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, slices.Sorted(slices.Values(want))) {
		t.Errorf("stages %v, want %v in some order", got, want)
	}
	if len(got) == 0 || got[len(got)-1] != StageDecision {
		t.Errorf("stages %v: the decision is not last", got)
	}
}
