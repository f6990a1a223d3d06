package liveness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

const rate = media.SampleRate

// talk is a syllable-like mouth opening: bumps 150-350 ms apart.
func talk(rng *rand.Rand) func(t float64) float64 {
	var centres []float64
	for c := 0.6; c < 2.5; c += 0.15 + 0.2*rng.Float64() {
		centres = append(centres, c)
	}
	return func(t float64) float64 {
		var v float64
		for _, c := range centres {
			d := (t - c) / 0.06
			v += math.Exp(-d * d)
		}
		return min(v, 1.2)
	}
}

func landmarks(open float64) lipsync.Landmarks {
	var lm lipsync.Landmarks
	lm[36], lm[45] = lipsync.Point{X: 100, Y: 100}, lipsync.Point{X: 200, Y: 100}
	lm[48], lm[54] = lipsync.Point{X: 120, Y: 200}, lipsync.Point{X: 180, Y: 200}
	for i, p := range map[int][2]float32{49: {130, 195}, 53: {170, 195}, 59: {130, 205}, 55: {170, 205}, 60: {125, 200}, 64: {175, 200}} {
		lm[i] = lipsync.Point{X: p[0], Y: p[1]}
	}
	g := float32(open * 20)
	for _, i := range []int{50, 51, 52} {
		lm[i] = lipsync.Point{X: 150, Y: 192 - g}
	}
	for _, i := range []int{58, 57, 56} {
		lm[i] = lipsync.Point{X: 150, Y: 208 + g}
	}
	for _, i := range []int{61, 62, 63} {
		lm[i] = lipsync.Point{X: 150, Y: 199 - g}
	}
	for _, i := range []int{67, 66, 65} {
		lm[i] = lipsync.Point{X: 150, Y: 201 + g}
	}
	return lm
}

func voice(rng *rand.Rand, env func(float64) float64, dur float64) []int16 {
	out := make([]int16, int(dur*rate))
	for i := range out {
		a := 200 + 8000*env(float64(i)/rate)
		out[i] = int16(max(-32767, min(32767, a*rng.NormFloat64())))
	}
	return out
}

// testClip is 3 s at 25 fps of 320x240 grey frames with a dark mouth
// cavity opened by mouth(t) where landmarks() puts the lips.
func testClip(audio []int16, mouth func(float64) float64) *media.Clip {
	const w, h = 320, 240
	c := &media.Clip{FPS: 25, Audio: media.Audio{Rate: rate, Samples: audio}}
	for i := 0; i < 75; i++ {
		t := float64(i) / 25
		half := mouth(t) * 20
		f := media.Frame{T: time.Duration(i) * time.Second / 25, Width: w, Height: h, BGR: make([]byte, w*h*3)}
		for j := range f.BGR {
			f.BGR[j] = 150
		}
		for y := int(200 - half); float64(y) < 200+half; y++ {
			for x := 128; x < 172; x++ {
				o := (y*w + x) * 3
				f.BGR[o], f.BGR[o+1], f.BGR[o+2] = 30, 30, 30
			}
		}
		c.Frames = append(c.Frames, f)
	}
	return c
}

// fakeFaces scripts the face seen at each frame time.
type fakeFaces struct {
	mouth func(t float64) float64 // opening at time t
	real  float64
	// realAt, when set, gives the anti-spoof score at time t instead.
	realAt func(t float64) float64
	// spoofAsked records the times whose anti-spoof score was asked.
	mu         sync.Mutex
	spoofAsked []float64
	// person gives the identity at time t (embedding direction).
	person func(t float64) int
	noFace func(t float64) bool
	err    error
}

func (f *fakeFaces) Analyze(ctx context.Context, fr media.Frame, opts FaceOptions) (FaceResult, error) {
	if f.err != nil {
		return FaceResult{}, f.err
	}
	t := fr.T.Seconds()
	if f.noFace != nil && f.noFace(t) {
		return FaceResult{}, ErrNoFace
	}
	r := FaceResult{Faces: 1, Landmarks: landmarks(f.mouth(t))}
	if opts.AntiSpoof {
		r.Real = f.real
		if f.realAt != nil {
			r.Real = f.realAt(t)
		}
		f.mu.Lock()
		f.spoofAsked = append(f.spoofAsked, t)
		f.mu.Unlock()
	}
	if opts.Embedding {
		r.Embedding = make([]float32, 8)
		p := 0
		if f.person != nil {
			p = f.person(t)
		}
		r.Embedding[p] = 1
		r.Embedding[7] = 0.1 // a little shared noise
	}
	return r, nil
}

// fakeSpeech "hears" a fixed string; when activity is set, it keeps the
// voice activity it was given there.
type fakeSpeech struct {
	heard    string
	segs     []Segment
	activity *[]float32
}

func (s fakeSpeech) CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (SpeechResult, error) {
	if s.activity != nil {
		*s.activity = activity
	}
	if s.heard == "" {
		return SpeechResult{}, ErrNoSpeech
	}
	if s.heard == expected {
		return SpeechResult{Match: true, Score: 5, Segments: s.segs}, nil
	}
	return SpeechResult{Score: -3}, nil
}

// fakeRefs holds the enrolled person (embedding direction) per subject.
type fakeRefs map[string]int

func (r fakeRefs) MatchReference(ctx context.Context, subject string, emb []float32) (MatchResult, error) {
	p, ok := r[subject]
	if !ok {
		return MatchResult{}, nil
	}
	s := cosine(emb, func() []float32 { e := make([]float32, 8); e[p] = 1; return e }())
	return MatchResult{Match: s >= 0.8, Score: s}, nil
}

type env struct {
	v      *Verifier
	mgr    *challenge.Manager
	faces  *fakeFaces
	speech *fakeSpeech
	audio  []int16
	clock  *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	st := memory.New(memory.Options{Now: clk.Now})
	t.Cleanup(func() { st.Close() })
	mgr, err := challenge.New(challenge.Config{
		Store: st, Secret: bytes.Repeat([]byte{1}, 32), Now: clk.Now,
		Rand: rand.NewChaCha8([32]byte{3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	sp := talk(rng)
	e := &env{
		mgr:    mgr,
		faces:  &fakeFaces{mouth: sp, real: 0.9},
		speech: &fakeSpeech{},
		audio:  voice(rng, sp, 3),
		clock:  clk,
	}
	e.v, err = New(Config{
		Challenges: mgr, Faces: e.faces, Speech: e.speech,
		References: fakeRefs{"alice": 0}, Video: media.NewDecoder(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reconfigure rebuilds e's verifier with its configuration changed by
// change.
func (e *env) reconfigure(t *testing.T, change func(*Config)) {
	t.Helper()
	cfg := e.v.cfg
	change(&cfg)
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
}

// attempt issues a challenge, lets the fake speech hear heard (the
// challenge's digits when heard is "same") and verifies the clip.
func (e *env) attempt(t *testing.T, subject, heard string, clip *media.Clip) (Result, error) {
	t.Helper()
	iss, err := e.mgr.Issue(context.Background(), "sess", subject, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	e.speech.heard = heard
	if heard == "same" {
		e.speech.heard = iss.Digits
	}
	return e.v.Verify(context.Background(), Request{ChallengeID: iss.ID, SessionID: "sess", Subject: subject, ClientAddr: "10.0.0.1", Clip: clip})
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *env)
		subject string
		heard   string
		clip    func(e *env) *media.Clip
		want    []Reason // nil: pass
		extra   bool     // other reasons may come too
		hint    Hint
	}{
		{name: "genuine", heard: "same"},
		{name: "wrong digits", heard: "0000", want: []Reason{ReasonWrongDigits}, hint: HintRetry},
		{name: "no speech", heard: "", want: []Reason{ReasonNoSpeech}, hint: HintRetry},
		{name: "still photo", heard: "same", setup: func(e *env) { e.faces.mouth = func(float64) float64 { return 0.3 } }, want: []Reason{ReasonStillMouth}},
		{name: "other clip's audio", heard: "same", clip: func(e *env) *media.Clip {
			rng := rand.New(rand.NewPCG(99, 1))
			return testClip(voice(rng, talk(rng), 3), e.faces.mouth)
		}, want: []Reason{ReasonLipSync}},
		{name: "spoof", heard: "same", setup: func(e *env) { e.faces.real = 0.2 }, want: []Reason{ReasonSpoof}},
		{name: "face changes", heard: "same", setup: func(e *env) {
			e.faces.person = func(t float64) int {
				if t > 1.5 {
					return 3
				}
				return 0
			}
		}, want: []Reason{ReasonFaceChanged}, extra: true},
		{name: "someone else", heard: "same", subject: "bob", want: []Reason{ReasonFaceMismatch}},
		{name: "face mostly missing", heard: "same", setup: func(e *env) { e.faces.noFace = func(t float64) bool { return t > 0.5 } },
			want: []Reason{ReasonNoFace}},
		{name: "too few frames for the length", heard: "same", clip: func(e *env) *media.Clip {
			c := testClip(e.audio, e.faces.mouth)
			c.Frames = c.Frames[:50]
			return c
		}, want: []Reason{ReasonImplausible}, extra: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			clip := testClip(e.audio, e.faces.mouth)
			if tt.clip != nil {
				clip = tt.clip(e)
			}
			subject := tt.subject
			if subject == "" {
				subject = "alice"
			}
			res, err := e.attempt(t, subject, tt.heard, clip)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if !res.Pass || len(res.Reasons) != 0 {
					t.Fatalf("want pass, got %+v", res)
				}
				if p := res.Public(); !p.Pass || p.Hint != HintNone {
					t.Errorf("public %+v", p)
				}
				return
			}
			if res.Pass {
				t.Fatalf("passed; want %v (checks %+v)", tt.want, res.Checks)
			}
			for _, r := range tt.want {
				if !res.Has(r) {
					t.Errorf("reasons %v lack %s (checks %+v)", res.Reasons, r, res.Checks)
				}
			}
			if !tt.extra && len(res.Reasons) > len(tt.want) {
				t.Errorf("reasons %v, want only %v", res.Reasons, tt.want)
			}
			if tt.hint != "" && res.Public().Hint != tt.hint {
				t.Errorf("hint %q, want %q", res.Public().Hint, tt.hint)
			}
		})
	}
}

func TestVerifyChallengeRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// prepare returns the request to verify after issuing iss.
		prepare func(e *env, iss challenge.Issued) Request
	}{
		{"replayed", func(e *env, iss challenge.Issued) Request {
			req := Request{ChallengeID: iss.ID, SessionID: "sess", Subject: "alice", Clip: testClip(e.audio, e.faces.mouth)}
			if res, err := e.v.Verify(ctx, req); err != nil || !res.Pass {
				panic("first attempt should pass")
			}
			return req
		}},
		{"expired", func(e *env, iss challenge.Issued) Request {
			e.clock.Add(3 * time.Minute)
			return Request{ChallengeID: iss.ID, SessionID: "sess", Subject: "alice", Clip: testClip(e.audio, e.faces.mouth)}
		}},
		{"other session", func(e *env, iss challenge.Issued) Request {
			return Request{ChallengeID: iss.ID, SessionID: "sess-2", Subject: "alice", Clip: testClip(e.audio, e.faces.mouth)}
		}},
		{"other subject", func(e *env, iss challenge.Issued) Request {
			return Request{ChallengeID: iss.ID, SessionID: "sess", Subject: "bob", Clip: testClip(e.audio, e.faces.mouth)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			iss, err := e.mgr.Issue(ctx, "sess", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			e.speech.heard = iss.Digits
			req := tt.prepare(e, iss)
			res, err := e.v.Verify(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pass || len(res.Reasons) != 1 || res.Reasons[0] != ReasonChallenge {
				t.Fatalf("got %+v, want only %s", res, ReasonChallenge)
			}
			if p := res.Public(); p.Pass || p.Hint != HintRetry {
				t.Errorf("public %+v", p)
			}
		})
	}
}

func TestVerifyLockout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var ids []string
	for i := 0; i < 6; i++ {
		iss, err := e.mgr.Issue(ctx, "sess", "alice", "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, iss.ID)
	}
	e.speech.heard = "wrong"
	for i, id := range ids {
		res, err := e.v.Verify(ctx, Request{ChallengeID: id, SessionID: "sess", Subject: "alice", ClientAddr: "10.0.0.1", Clip: testClip(e.audio, e.faces.mouth)})
		if err != nil {
			t.Fatal(err)
		}
		if i < 5 && !res.Has(ReasonWrongDigits) {
			t.Fatalf("attempt %d: %v", i, res.Reasons)
		}
		if i == 5 {
			if !res.Has(ReasonLocked) || res.RetryAfter <= 0 {
				t.Fatalf("6th attempt: %+v, want locked with a retry hint", res)
			}
			if p := res.Public(); p.Hint != HintWait || p.RetryAfter != res.RetryAfter {
				t.Errorf("public %+v", p)
			}
		}
	}
}

func TestVerifyIntakeErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	iss, _ := e.mgr.Issue(ctx, "sess", "alice", "")
	silent := media.EncodeWAV(media.Audio{Rate: rate, Samples: make([]int16, 3*rate)})
	frames := []media.JPEGFrame{{T: 0, JPEG: []byte("x")}, {T: time.Second, JPEG: []byte("x")}}
	res, err := e.v.Verify(ctx, Request{ChallengeID: iss.ID, SessionID: "sess", Subject: "alice", Frames: frames, WAV: silent})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || !res.Has(ReasonUnreadable) || res.Public().Hint != HintRecapture {
		t.Fatalf("got %+v", res)
	}
}

func TestVerifyEngineError(t *testing.T) {
	e := newEnv(t)
	e.faces.err = errors.New("engine down")
	res, err := e.attempt(t, "alice", "same", testClip(e.audio, e.faces.mouth))
	if err == nil || res.Pass || !res.Has(ReasonInternal) {
		t.Fatalf("res %+v err %v", res, err)
	}
}

// TestAntiSpoofKeyFrames: the anti-spoof score is asked on two of the
// four key frames (the second and the fourth) and the check reads only
// those: a spoof-like score elsewhere changes nothing, on them it fails
// the attempt; SpoofKeyFrames 4 asks it on every key frame.
func TestAntiSpoofKeyFrames(t *testing.T) {
	if got := fmt.Sprint(SpoofKeys(4, 2)); got != "[false true false true]" {
		t.Errorf("SpoofKeys(4, 2) = %s", got)
	}
	if got := fmt.Sprint(SpoofKeys(6, 6)); got != "[true true true true true true]" {
		t.Errorf("SpoofKeys(6, 6) = %s", got)
	}
	for _, tc := range []struct {
		name       string
		spoofKeys  int
		lowAt      []int // key frame indices with a spoof-like score
		wantAsked  []int // key frame indices asked
		wantReason Reason
	}{
		{name: "default, low on unasked frames", lowAt: []int{0, 2}, wantAsked: []int{1, 3}},
		{name: "default, low on asked frames", lowAt: []int{1, 3}, wantAsked: []int{1, 3}, wantReason: ReasonSpoof},
		{name: "all four", spoofKeys: 4, lowAt: []int{0, 2}, wantAsked: []int{0, 1, 2, 3}},
		{name: "all four, three low", spoofKeys: 4, lowAt: []int{0, 1, 2}, wantAsked: []int{0, 1, 2, 3}, wantReason: ReasonSpoof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			clip := testClip(e.audio, e.faces.mouth)
			keys := KeyFrames(len(clip.Frames), DefaultKeyFrames)
			low := map[float64]bool{}
			for _, k := range tc.lowAt {
				low[clip.Frames[keys[k]].T.Seconds()] = true
			}
			e.faces.realAt = func(t float64) float64 {
				if low[t] {
					return 0.1
				}
				return 0.9
			}
			e.reconfigure(t, func(c *Config) { c.SpoofKeyFrames = tc.spoofKeys })
			res, err := e.attempt(t, "alice", "same", clip)
			if err != nil {
				t.Fatal(err)
			}
			var want []float64
			for _, k := range tc.wantAsked {
				want = append(want, clip.Frames[keys[k]].T.Seconds())
			}
			slices.Sort(e.faces.spoofAsked)
			if fmt.Sprint(e.faces.spoofAsked) != fmt.Sprint(want) {
				t.Errorf("anti-spoof asked at %v s, want %v", e.faces.spoofAsked, want)
			}
			if tc.wantReason == "" && !res.Pass {
				t.Errorf("want pass, got %v", res.Reasons)
			}
			if tc.wantReason != "" && !res.Has(tc.wantReason) {
				t.Errorf("want %s, got pass=%v %v", tc.wantReason, res.Pass, res.Reasons)
			}
		})
	}
}

func TestKeyFrames(t *testing.T) {
	got := KeyFrames(75, 5)
	if fmt.Sprint(got) != "[7 22 37 52 67]" {
		t.Errorf("key frames %v", got)
	}
	if len(KeyFrames(2, 4)) != 2 || len(KeyFrames(0, 4)) != 0 {
		t.Error("short clips")
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

func BenchmarkVerifyFakes(b *testing.B) {
	clk := &fakeClock{t: time.Now()}
	st := memory.New(memory.Options{Now: clk.Now})
	defer st.Close()
	mgr, _ := challenge.New(challenge.Config{Store: st, Secret: make([]byte, 32), Now: clk.Now, SubjectIssueLimit: 1 << 30, AddressIssueLimit: 1 << 30})
	rng := rand.New(rand.NewPCG(7, 8))
	sp := talk(rng)
	audio := voice(rng, sp, 3)
	sp2 := &fakeSpeech{}
	clip := testClip(audio, sp)
	v, _ := New(Config{Challenges: mgr, Faces: &fakeFaces{mouth: sp, real: 0.9}, Speech: sp2, References: fakeRefs{"a": 0}, Video: media.NewDecoder()})
	b.ReportAllocs()
	for b.Loop() {
		iss, _ := mgr.Issue(context.Background(), "s", "a", "x")
		sp2.heard = iss.Digits
		res, err := v.Verify(context.Background(), Request{ChallengeID: iss.ID, SessionID: "s", Subject: "a", ClientAddr: "x", Clip: clip})
		if err != nil || !res.Pass {
			b.Fatal(res, err)
		}
	}
}
