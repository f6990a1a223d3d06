package viseme

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const rate = 16000

// clip builds 3 s at 25 fps: voice (noise bursts) where voiced(t), and a
// mouth whose opening and width follow mouth(t).
func clip(voiced func(float64) bool, mouth func(float64) (open, width float64)) Input {
	rng := rand.New(rand.NewPCG(1, 2))
	in := Input{Rate: rate, Audio: make([]int16, 3*rate)}
	for i := range in.Audio {
		a := 30.0
		if voiced(float64(i) / rate) {
			a = 6000
		}
		in.Audio[i] = int16(max(-32767, min(32767, a*rng.NormFloat64())))
	}
	for i := range 75 {
		t := float64(i) / 25
		o, w := mouth(t)
		in.Times = append(in.Times, time.Duration(i)*40*time.Millisecond)
		in.Shapes = append(in.Shapes, Shape{Opening: o, Width: w, OK: true})
	}
	return in
}

func syllables(t float64) float64 { return 0.5 + 0.5*math.Sin(2*math.Pi*4*t) }

func TestCheck(t *testing.T) {
	speech := func(t float64) bool { return t > 0.6 && t < 2.4 }
	tests := []struct {
		name   string
		in     Input
		want   error
		voting bool
	}{
		{name: "lips move with the voice", in: clip(speech, func(t float64) (float64, float64) {
			if speech(t) {
				return 0.02 + 0.2*syllables(t), 40
			}
			return 0.02, 40
		})},
		{name: "lips move in silence too (a dub over other words)", in: clip(func(t float64) bool { return t > 1.2 && t < 2.0 }, func(t float64) (float64, float64) {
			return 0.02 + 0.2*syllables(t), 40
		}), want: ErrSilentMouth},
		{name: "still mouth", in: clip(speech, func(float64) (float64, float64) { return 0.05, 40 }), want: ErrStillMouth},
		{name: "no voice", in: clip(func(float64) bool { return false }, func(t float64) (float64, float64) { return 0.1 * syllables(t), 40 }), want: ErrNoVoice},
		{name: "too few frames", in: func() Input {
			in := clip(speech, func(t float64) (float64, float64) { return 0.1, 40 })
			for i := range in.Shapes[10:] {
				in.Shapes[10+i].OK = false
			}
			return in
		}(), want: ErrTooFewFrames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(tt.in, Config{})
			if !errors.Is(r.Reason, tt.want) || r.Pass != (tt.want == nil) {
				t.Fatalf("got %+v, want reason %v", r, tt.want)
			}
		})
	}
}

// TestVisemeMargin: a rounding digit in a slot where the mouth narrows
// votes for, a spreading one against; "five" does not vote.
func TestVisemeMargin(t *testing.T) {
	speech := func(t float64) bool { return t > 0.6 && t < 2.4 }
	in := clip(speech, func(t float64) (float64, float64) {
		w := 40.0
		if t > 1.0 && t < 1.4 {
			w = 34 // rounded
		}
		if speech(t) {
			return 0.02 + 0.2*syllables(t), w
		}
		return 0.02, w
	})
	in.Slots = []Slot{{Start: time.Second, End: 1400 * time.Millisecond}}
	for _, tc := range []struct {
		digits string
		sign   float64
		votes  int
	}{{"2", 1, 1}, {"3", -1, 1}, {"5", 0, 0}} {
		in.Digits = tc.digits
		r := Check(in, Config{MinViseme: -1})
		if r.Votes != tc.votes || (tc.votes > 0 && math.Signbit(r.Viseme) != (tc.sign < 0)) {
			t.Errorf("digit %s: viseme %.3f votes %d", tc.digits, r.Viseme, r.Votes)
		}
		if tc.sign < 0 {
			if r := Check(in, Config{MinViseme: 0.01}); r.Pass || !errors.Is(r.Reason, ErrWrongVisemes) {
				t.Errorf("digit %s with MinViseme 0.01: %+v", tc.digits, r)
			}
		}
	}
}
