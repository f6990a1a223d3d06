package liveness

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media"
)

// fakeTracker plays a face doing the actions that do returns for the
// challenge asked (so a test can do them in order, reversed, or others).
type fakeTracker struct {
	do      func(asked action.Sequence) action.Sequence
	asked   action.Sequence
	lost    bool
	anchors int
}

func (f *fakeTracker) Track(ctx context.Context, frames []media.Frame, anchors []Anchor) ([]action.Signal, error) {
	f.anchors = len(anchors)
	out := make([]action.Signal, len(frames))
	acts := f.do(f.asked)
	for i, fr := range frames {
		t := fr.T.Seconds()
		s := action.Signal{T: fr.T, Face: !f.lost, Eye: 0.13, Mouth: 0.02, Yaw: 0.6, Pitch: -0.3}
		if k := int(t / 1.2); k < len(acts) && t-float64(k)*1.2 > 0.3 && t-float64(k)*1.2 < 0.9 {
			switch acts[k] {
			case action.Blink:
				if p := t - float64(k)*1.2; p > 0.5 && p < 0.7 {
					s.Eye = 0.03
				}
			case action.OpenMouth:
				s.Mouth = 0.5
			case action.TurnLeft:
				s.Yaw = 0.9
			case action.TurnRight:
				s.Yaw = 0.3
			case action.Nod:
				s.Pitch = -0.6
			}
		}
		out[i] = s
	}
	return out, nil
}

// silentClip is n seconds of 25 fps frames and no audio.
func silentClip(n float64) *media.Clip {
	c := testClip(nil, func(float64) float64 { return 0 })
	c.Audio = media.Audio{}
	for len(c.Frames) < int(n*25) {
		f := c.Frames[len(c.Frames)-1]
		f.T += 40 * time.Millisecond
		c.Frames = append(c.Frames, f)
	}
	return c
}

func TestVerifyActions(t *testing.T) {
	inOrder := func(a action.Sequence) action.Sequence { return a }
	reversed := func(a action.Sequence) action.Sequence {
		r := append(action.Sequence(nil), a...)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return r
	}
	others := func(a action.Sequence) action.Sequence {
		var r action.Sequence
		for _, x := range action.All {
			if !strings.Contains(a.String(), string(x)) {
				r = append(r, x)
			}
		}
		return r
	}
	tests := []struct {
		name    string
		do      func(action.Sequence) action.Sequence
		lost    bool
		real    float64
		person  int
		subject string
		want    []Reason
	}{
		{name: "actions in order", do: inOrder, real: 0.9, subject: "alice"},
		{name: "wrong order", do: reversed, real: 0.9, subject: "alice", want: []Reason{ReasonActionOrder}},
		{name: "other actions", do: others, real: 0.9, subject: "alice", want: []Reason{ReasonActionMissing}},
		{name: "face not followed", do: inOrder, lost: true, real: 0.9, subject: "alice", want: []Reason{ReasonFaceLost}},
		{name: "spoof", do: inOrder, real: 0.2, subject: "alice", want: []Reason{ReasonSpoof}},
		{name: "someone else", do: inOrder, real: 0.9, person: 3, subject: "alice", want: []Reason{ReasonFaceMismatch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := memory.New(memory.Options{})
			t.Cleanup(func() { st.Close() })
			mgr, err := challenge.New(challenge.Config{Store: st, Secret: bytes.Repeat([]byte{1}, 32), Rand: rand.NewChaCha8([32]byte{5})})
			if err != nil {
				t.Fatal(err)
			}
			tr := &fakeTracker{do: tt.do, lost: tt.lost}
			faces := &fakeFaces{mouth: func(float64) float64 { return 0 }, real: tt.real, person: func(float64) int { return tt.person }}
			v, err := New(Config{Challenges: mgr, Faces: faces, Speech: fakeSpeech{}, References: fakeRefs{"alice": 0},
				Video: media.NewDecoder(), Actions: tr, ActionVideo: media.NewDecoder()})
			if err != nil {
				t.Fatal(err)
			}
			iss, err := mgr.IssueKind(context.Background(), challenge.KindActions, "s", tt.subject, challenge.Client{Addr: "10.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			tr.asked = iss.Actions
			clip := silentClip(1.2*float64(len(iss.Actions)) + 0.5)
			res, err := v.Verify(context.Background(), Request{ChallengeID: iss.ID, SessionID: "s", Subject: tt.subject, ClientAddr: "10.0.0.1", Clip: clip})
			if err != nil {
				t.Fatal(err)
			}
			if res.Pass != (len(tt.want) == 0) || len(res.Reasons) != len(tt.want) || (len(tt.want) > 0 && res.Reasons[0] != tt.want[0]) {
				t.Fatalf("pass %v reasons %v, want %v (checks %+v)", res.Pass, res.Reasons, tt.want, res.Checks)
			}
			if res.Kind != challenge.KindActions {
				t.Errorf("kind %q", res.Kind)
			}
			for _, c := range res.Checks {
				if c.Name == CheckSpeech || c.Name == CheckLipSync {
					t.Errorf("the action path ran %s", c.Name)
				}
			}
			if tr.anchors != 6 {
				t.Errorf("%d anchors, want the 6 key frames", tr.anchors)
			}
		})
	}
}

func TestVerifyActionsWithoutTrackerIsAFault(t *testing.T) {
	e := newEnv(t)
	iss, err := e.mgr.IssueKind(context.Background(), challenge.KindActions, "s", "alice", challenge.Client{Addr: "a"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.v.Verify(context.Background(), Request{ChallengeID: iss.ID, SessionID: "s", Subject: "alice", ClientAddr: "a", Clip: silentClip(3)})
	if err == nil || res.Pass || !res.Has(ReasonInternal) {
		t.Fatalf("res %+v err %v, want an internal error", res, err)
	}
}

func TestConfigNeedsActionVideo(t *testing.T) {
	c := Config{Challenges: &challenge.Manager{}, Faces: &fakeFaces{}, Speech: fakeSpeech{}, References: fakeRefs{}, Video: media.NewDecoder(), Actions: &fakeTracker{}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ActionVideo") {
		t.Fatalf("err = %v", err)
	}
}
