package liveness

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// fakeMouths "tracks" the lips with the opening mouth(t) at each frame.
type fakeMouths struct {
	mouth func(t float64) float64
	err   error
	start int
}

func (m *fakeMouths) TrackMouth(ctx context.Context, frames []media.Frame, start int, lm lipsync.Landmarks) ([]viseme.Shape, error) {
	m.start = start
	if m.err != nil {
		return nil, m.err
	}
	out := make([]viseme.Shape, len(frames))
	for i, f := range frames {
		out[i] = viseme.Shape{Opening: 0.02 + 0.2*m.mouth(f.T.Seconds()), Width: 40, OK: true}
	}
	return out, nil
}

// fakeVoice answers a fixed synthetic-voice score, with a voice activity
// of three values (none with err), and counts the samples it saw.
type fakeVoice struct {
	score float64
	err   error
	n     int
}

func (v *fakeVoice) Synthetic(pcm []float32, rate int) (float64, []float32, error) {
	v.n = len(pcm)
	if v.err != nil {
		return 0, nil, v.err
	}
	return v.score, []float32{0.1, 0.9, 0.8}, nil
}

func TestVerifyVisemeAndVoice(t *testing.T) {
	down := errors.New("mesh down")
	tests := []struct {
		name     string
		mouth    func(e *env) func(float64) float64 // the mesh's opening; nil: the faces' own
		mouthErr error
		voice    *fakeVoice // nil: no voice check
		segs     []Segment  // the digit slots the speech check reports
		want     []Reason
		wantErr  bool
	}{
		{name: "genuine with mesh and voice check", voice: &fakeVoice{score: 0.1}},
		{name: "synthetic voice", voice: &fakeVoice{score: 0.9}, want: []Reason{ReasonSynthetic}},
		{name: "mouth moving where there is no voice", mouth: func(e *env) func(float64) float64 {
			// The lips also talk before and after the voice (other words
			// a dub left uncovered).
			sp := e.faces.mouth
			extra := talk(rand.New(rand.NewPCG(5, 5)))
			return func(t float64) float64 {
				switch {
				case t < 0.55:
					return 3 * extra(t+1.2)
				case t > 2.55:
					return 3 * extra(t-1.2)
				}
				return sp(t)
			}
		}, want: []Reason{ReasonSilentMouth}},
		{name: "lips shut while a digit is voiced", segs: []Segment{{0, 3 * time.Second}}, mouth: func(e *env) func(float64) float64 {
			sp := e.faces.mouth
			return func(t float64) float64 {
				if t > 0.6 && t < 2.5 && int(t*10)%3 == 0 {
					return -0.1 // 0.02 + 0.2*-0.1: shut
				}
				return sp(t)
			}
		}, want: []Reason{ReasonVisemes}},
		{name: "mesh failure is internal", mouthErr: down, wantErr: true},
		{name: "voice check failure is internal", voice: &fakeVoice{err: down}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			mouth := e.faces.mouth
			if tt.mouth != nil {
				mouth = tt.mouth(e)
			}
			mt := &fakeMouths{mouth: mouth, err: tt.mouthErr}
			e.reconfigure(t, func(c *Config) {
				c.Mouths = mt
				if tt.voice != nil {
					c.Voice = tt.voice
				}
			})
			e.speech.segs = tt.segs
			var heard []float32
			e.speech.activity = &heard
			res, err := e.attempt(t, "alice", "same", testClip(e.audio, e.faces.mouth))
			if tt.wantErr {
				if err == nil || !res.Has(ReasonInternal) || res.Pass {
					t.Fatalf("want an internal failure, got %+v, %v", res, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ran bool
			for _, c := range res.Checks {
				ran = ran || c.Name == CheckViseme
			}
			if !ran {
				t.Fatalf("no viseme check in %+v", res.Checks)
			}
			if tt.voice != nil && tt.voice.n != len(e.audio) {
				t.Errorf("voice check saw %d samples, want %d", tt.voice.n, len(e.audio))
			}
			// The speech check gets the voice check's activity, and finds
			// its own without a voice check.
			if want := len(e.audio) > 0 && tt.voice != nil; want != (len(heard) == 3) {
				t.Errorf("speech check got activity %v (voice check %v)", heard, tt.voice != nil)
			}
			if tt.want == nil {
				if !res.Pass {
					t.Fatalf("want pass, got %v (checks %+v)", res.Reasons, res.Checks)
				}
				return
			}
			for _, r := range tt.want {
				if !res.Has(r) {
					t.Errorf("reasons %v lack %s (checks %+v)", res.Reasons, r, res.Checks)
				}
			}
		})
	}
}
