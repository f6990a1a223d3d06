package action

import (
	"errors"
	"math"
	"testing"
	"time"
)

// Perform returns 25 fps signals of a face at rest that does acts in
// order, each in its own 1.2 s slot after a 0.6 s lead-in; jitter adds a
// deterministic wobble of that size to every measure.
func perform(acts Sequence, jitter float64) []Signal {
	const fps = 25
	lead, slot := 0.6, 1.2
	n := int((lead + slot*float64(len(acts)) + 0.6) * fps)
	out := make([]Signal, n)
	for i := range out {
		t := float64(i) / fps
		w := jitter * math.Sin(float64(i)*1.7)
		s := Signal{T: time.Duration(t * float64(time.Second)), Face: true, Eye: 0.13 + w/10, Mouth: 0.02 + w/10, Yaw: 0.6 + w, Pitch: -0.3 + w}
		k := int((t - lead) / slot)
		if t >= lead && k < len(acts) {
			p := (t - lead - float64(k)*slot) / slot // 0..1 within the slot
			bump := math.Max(0, math.Sin(math.Pi*(p-0.15)/0.7))
			if p < 0.15 || p > 0.85 {
				bump = 0
			}
			switch acts[k] {
			case Blink:
				if p > 0.4 && p < 0.55 {
					s.Eye = 0.03
				}
			case OpenMouth:
				s.Mouth += 0.4 * bump
			case TurnLeft:
				s.Yaw += 0.3 * bump
			case TurnRight:
				s.Yaw -= 0.3 * bump
			case Nod:
				s.Pitch -= 0.3 * bump
			}
		}
		out[i] = s
	}
	return out
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		asked    Sequence
		done     Sequence
		jitter   float64
		lose     bool // the face is lost in most frames
		want     error
		progress int
	}{
		{name: "two in order", asked: Sequence{Blink, TurnLeft}, done: Sequence{Blink, TurnLeft}, progress: 2},
		{name: "three in order", asked: Sequence{Nod, OpenMouth, TurnRight}, done: Sequence{Nod, OpenMouth, TurnRight}, progress: 3},
		{name: "every action", asked: Sequence{TurnRight, Blink, Nod}, done: Sequence{OpenMouth, TurnRight, TurnLeft, Blink, Nod}, progress: 3},
		{name: "noisy face still passes", asked: Sequence{OpenMouth, Nod}, done: Sequence{OpenMouth, Nod}, jitter: 0.02, progress: 2},
		{name: "wrong order", asked: Sequence{TurnLeft, Blink}, done: Sequence{Blink, TurnLeft}, want: ErrOrder, progress: 1},
		{name: "other actions", asked: Sequence{Nod, TurnLeft}, done: Sequence{Blink, OpenMouth}, want: ErrMissing},
		{name: "one missing", asked: Sequence{OpenMouth, TurnLeft, Nod}, done: Sequence{OpenMouth, TurnLeft}, want: ErrMissing, progress: 2},
		{name: "left is not right", asked: Sequence{TurnRight, Blink}, done: Sequence{TurnLeft, Blink}, want: ErrMissing},
		{name: "still face", asked: Sequence{Blink, Nod}, want: ErrMissing},
		{name: "face lost", asked: Sequence{Blink, Nod}, done: Sequence{Blink, Nod}, lose: true, want: ErrFaceLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := perform(tt.done, tt.jitter)
			if tt.lose {
				for i := range sig {
					if i%3 != 0 {
						sig[i] = Signal{T: sig[i].T}
					}
				}
			}
			r := Check(tt.asked, sig, Config{})
			if !errors.Is(r.Reason, tt.want) || r.Pass != (tt.want == nil) {
				t.Fatalf("pass %v reason %v, want %v (events %+v)", r.Pass, r.Reason, tt.want, r.Events)
			}
			if r.Done != tt.progress {
				t.Errorf("done %d, want %d", r.Done, tt.progress)
			}
		})
	}
}

// An affine map of the picture leaves every signal unchanged: a still
// photo moved, rotated, scaled or sheared completes no action.
func TestMeasureIsAffineInvariant(t *testing.T) {
	pts := make([]Point, MeshPoints)
	for i := range pts {
		// A deterministic, face-like scatter (not degenerate).
		pts[i] = Point{X: 100 + 60*math.Sin(float64(i)*0.37), Y: 120 + 80*math.Cos(float64(i)*0.53)}
	}
	base := Measure(0, pts)
	if !base.Face {
		t.Fatal("no face measured")
	}
	for _, m := range []struct {
		name               string
		a, b, c, d, tx, ty float64
	}{
		{"rotate 15 degrees", math.Cos(0.26), -math.Sin(0.26), math.Sin(0.26), math.Cos(0.26), 30, -12},
		{"squeeze to 70 %", 0.7, 0, 0, 1, 50, 0},
		{"tilt and shear", 1, 0.2, 0, 0.8, -5, 40},
		{"mirror", -1, 0, 0, 1, 400, 0},
	} {
		t.Run(m.name, func(t *testing.T) {
			moved := make([]Point, len(pts))
			for i, p := range pts {
				moved[i] = Point{X: m.a*p.X + m.b*p.Y + m.tx, Y: m.c*p.X + m.d*p.Y + m.ty}
			}
			got := Measure(0, moved)
			for _, pair := range [][2]float64{{got.Eye, base.Eye}, {got.Mouth, base.Mouth}, {got.Yaw, base.Yaw}, {got.Pitch, base.Pitch}} {
				if math.Abs(pair[0]-pair[1]) > 1e-9*math.Max(1, math.Abs(pair[1])) {
					t.Fatalf("measures changed: %+v -> %+v", base, got)
				}
			}
		})
	}
}

func TestParseSequence(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"blink+nod", true}, {"open_mouth+turn_left+turn_right", true},
		{"blink", false}, {"blink+nod+turn_left+open_mouth", false}, {"nod+nod", false}, {"wave+nod", false}, {"", false},
	} {
		s, err := ParseSequence(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.in, err)
		}
		if tt.ok && s.String() != tt.in {
			t.Errorf("%q round trip: %q", tt.in, s.String())
		}
	}
}

func FuzzParseSequence(f *testing.F) {
	f.Add("blink+nod")
	f.Add("open_mouth+turn_left+turn_right")
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := ParseSequence(s)
		if err == nil && seq.Validate() != nil {
			t.Fatalf("accepted invalid %q", s)
		}
	})
}

func TestPeakRatios(t *testing.T) {
	still := PeakRatios(perform(nil, 0.001), Config{})
	if still.Max() > 0.1 {
		t.Errorf("a still face peaks at %+v", still)
	}
	moved := PeakRatios(perform(Sequence{TurnLeft}, 0), Config{})
	if moved.TurnLeft < 1 || moved.TurnRight > 0.1 || moved.Blink > 0.1 {
		t.Errorf("a left turn peaks at %+v", moved)
	}
}
