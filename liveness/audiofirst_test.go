package liveness

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

// fakeAudioFirst is an AudioFirstDecoder over a decoded clip: it hands the
// audio over, then "decodes the frames" until the speech check has started
// (at most wait), and returns the clip or err.
type fakeAudioFirst struct {
	clip    *media.Clip
	err     error
	wait    time.Duration
	started <-chan struct{}
	// overlapped: the speech check started while the frames decoded.
	overlapped bool
}

func (d *fakeAudioFirst) DecodeVideo(ctx context.Context, r io.Reader) (*media.Clip, error) {
	return d.DecodeAudioFirst(ctx, r, nil)
}

func (d *fakeAudioFirst) DecodeAudioFirst(ctx context.Context, r io.Reader, audio func(media.Audio)) (*media.Clip, error) {
	if audio != nil {
		audio(d.clip.Audio)
	}
	select {
	case <-d.started:
		d.overlapped = true
	case <-time.After(d.wait):
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.clip, nil
}

// signalSpeech is fakeSpeech that closes started at its first call and
// counts the calls that returned.
type signalSpeech struct {
	*fakeSpeech
	once     sync.Once
	started  chan struct{}
	returned atomic.Int32
}

func (s *signalSpeech) CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (SpeechResult, error) {
	s.once.Do(func() { close(s.started) })
	defer s.returned.Add(1)
	return s.fakeSpeech.CheckDigits(ctx, pcm, expected, activity)
}

// TestVerifyAudioFirst: with an AudioFirstDecoder the speech check runs
// while the frames decode and the decision is the one made on the decoded
// clip; refused evidence fails the intake as before, with the early checks
// awaited; audio the limits refuse starts nothing early.
func TestVerifyAudioFirst(t *testing.T) {
	tests := []struct {
		name    string
		audio   func(e *env) []int16
		err     error // the decoder's, after handing the audio over
		overlap bool
		want    Reason // "": the decision on the clip given as Request.Clip
	}{
		{name: "audio checks run while the frames decode", overlap: true},
		{name: "frames refused after the audio", err: media.ErrDimensions, overlap: true, want: ReasonBadFrames},
		{name: "silent audio starts nothing early", audio: func(*env) []int16 { return make([]int16, 3*rate) }, err: media.ErrSilent, want: ReasonSilent},
		{name: "too long audio starts nothing early", audio: func(e *env) []int16 { return slices.Concat(e.audio, e.audio, e.audio) },
			err: media.ErrTooLong, want: ReasonTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			audio := e.audio
			if tt.audio != nil {
				audio = tt.audio(e)
			}
			clip := testClip(audio, e.faces.mouth)
			var want Result
			if tt.want == "" {
				r, err := e.attempt(t, "alice", "same", testClip(audio, e.faces.mouth))
				if err != nil {
					t.Fatal(err)
				}
				want = r
			}

			sp := &signalSpeech{fakeSpeech: e.speech, started: make(chan struct{})}
			wait := 5 * time.Second
			if !tt.overlap {
				wait = 50 * time.Millisecond
			}
			dec := &fakeAudioFirst{clip: clip, err: tt.err, wait: wait, started: sp.started}
			v, err := New(Config{Challenges: e.mgr, Faces: e.faces, Speech: sp, References: fakeRefs{"alice": 0}, Video: dec, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			iss, err := e.mgr.Issue(context.Background(), "sess", "alice", "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			e.speech.heard = iss.Digits
			got, err := v.Verify(context.Background(), Request{ChallengeID: iss.ID, SessionID: "sess", Subject: "alice", ClientAddr: "10.0.0.1",
				Video: bytes.NewReader([]byte("video"))})
			if err != nil {
				t.Fatal(err)
			}
			if dec.overlapped != tt.overlap {
				t.Fatalf("speech started while the frames decoded: %v, want %v", dec.overlapped, tt.overlap)
			}
			select {
			case <-sp.started:
				if !tt.overlap {
					t.Fatal("speech checked")
				}
				if n := sp.returned.Load(); n != 1 {
					t.Fatalf("%d speech checks returned before Verify did, want 1", n)
				}
			default:
				if tt.overlap {
					t.Fatal("speech not checked")
				}
			}
			if tt.want != "" {
				if got.Pass || !got.Has(tt.want) || len(got.Reasons) != 1 || got.Checks[len(got.Checks)-1].Name != CheckIntake {
					t.Fatalf("got %+v, want only the intake failing with %s", got, tt.want)
				}
				return
			}
			if got.Pass != want.Pass || len(got.Checks) != len(want.Checks) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			for i, c := range got.Checks {
				if c != want.Checks[i] {
					t.Fatalf("check %d: %+v, want %+v", i, c, want.Checks[i])
				}
			}
		})
	}
}
