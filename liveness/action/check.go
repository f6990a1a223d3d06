package action

import (
	"errors"
	"math"
	"sort"
	"time"
)

// Config holds the detectors' thresholds. Zero fields take the defaults
// (DefaultConfig), chosen on the shared action clips and checked leaving
// people out (`trustid-lab eval-actions`, README "Action challenge").
type Config struct {
	// BlinkClose: a blink starts when the eye opening falls below
	// BlinkClose times its resting value; it ends when the opening is back
	// above BlinkOpen times it.
	BlinkClose, BlinkOpen float64
	// MaxBlink is the longest closure counted as a blink.
	MaxBlink time.Duration
	// MouthOpen: the inner-lip area over the reference triangle must
	// exceed its resting value by MouthOpen for at least MinMouthHold, and
	// fall back below half of that.
	MouthOpen    float64
	MinMouthHold time.Duration
	// Turn and NodDown: the nose tip's barycentric yaw (pitch) must leave
	// its resting value by this much and come back within half of it.
	Turn, NodDown float64
	// Dominance: at the peak of a turn the yaw change must be at least
	// Dominance times the pitch change, and the other way round for a nod,
	// so that one head movement is not counted as both.
	Dominance float64
	// MinHeadHold is the least time a turn or nod stays beyond its
	// threshold: the face outline flickers for a frame or two when the
	// cheeks move (a smile, a puff), a head does not turn that fast.
	MinHeadHold time.Duration
	// MaxHeadMove is the longest turn or nod (out and back).
	MaxHeadMove time.Duration
	// MinFace is the least fraction of frames where the face was followed.
	MinFace float64
}

// DefaultConfig are the thresholds used for zero fields.
var DefaultConfig = Config{
	BlinkClose: 0.70, BlinkOpen: 0.85, MaxBlink: 1200 * time.Millisecond,
	MouthOpen: 0.20, MinMouthHold: 300 * time.Millisecond,
	Turn: 0.15, NodDown: 0.12, Dominance: 1.0,
	MinHeadHold: 200 * time.Millisecond, MaxHeadMove: 4 * time.Second,
	MinFace: 0.8,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	set := func(dst *float64, v float64) {
		if v > 0 {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&d.BlinkClose, c.BlinkClose)
	set(&d.BlinkOpen, c.BlinkOpen)
	setD(&d.MaxBlink, c.MaxBlink)
	set(&d.MouthOpen, c.MouthOpen)
	setD(&d.MinMouthHold, c.MinMouthHold)
	set(&d.Turn, c.Turn)
	set(&d.NodDown, c.NodDown)
	set(&d.Dominance, c.Dominance)
	setD(&d.MinHeadHold, c.MinHeadHold)
	setD(&d.MaxHeadMove, c.MaxHeadMove)
	set(&d.MinFace, c.MinFace)
	return d
}

// Event is one completed action found in a clip.
type Event struct {
	Action Action
	// Start and End are when the signal left and came back; Peak is the
	// frame of the largest excursion.
	Start, Peak, End time.Duration
	// Size is the excursion at the peak in the signal's own unit.
	Size float64
}

// Failure reasons (stable: the liveness decision maps them to its codes).
var (
	ErrFaceLost = errors.New("action: face not followed through the clip")
	ErrMissing  = errors.New("action: an asked action was not completed")
	ErrOrder    = errors.New("action: the actions were not done in the asked order")
)

// Result is the check of one clip against one sequence.
type Result struct {
	Pass bool
	// Reason is nil when Pass, else ErrFaceLost, ErrMissing or ErrOrder.
	Reason error
	// Done is how many of the asked actions were completed in order (the
	// page's progress; trusted callers and logs only).
	Done int
	// Matched are the events that completed the asked actions, in order.
	Matched []Event
	// Events are all the completed actions found, by start time.
	Events []Event
	// FaceFraction is the fraction of frames with a followed face.
	FaceFraction float64
}

// Check decides whether the signals of a clip show the actions of seq, each
// completed, in that order. seq must be valid (Sequence.Validate).
func Check(seq Sequence, sig []Signal, cfg Config) Result {
	cfg = cfg.withDefaults()
	var res Result
	n := 0
	for _, s := range sig {
		if s.Face {
			n++
		}
	}
	if len(sig) > 0 {
		res.FaceFraction = float64(n) / float64(len(sig))
	}
	if len(sig) == 0 || res.FaceFraction < cfg.MinFace {
		res.Reason = ErrFaceLost
		return res
	}
	res.Events = Detect(sig, cfg)
	// Earliest event of each asked action that starts after the previous
	// one ended: greedy earliest matching finds an in-order match whenever
	// one exists.
	var after time.Duration = -1
	for _, a := range seq {
		found := false
		for _, e := range res.Events {
			if e.Action == a && e.Start > after {
				res.Matched = append(res.Matched, e)
				after = e.End
				found = true
				break
			}
		}
		if !found {
			break
		}
		res.Done++
	}
	if res.Done == len(seq) {
		res.Pass = true
		return res
	}
	res.Reason = ErrOrder
	for _, a := range seq {
		if !has(res.Events, a) {
			res.Reason = ErrMissing
		}
	}
	return res
}

func has(ev []Event, a Action) bool {
	for _, e := range ev {
		if e.Action == a {
			return true
		}
	}
	return false
}

// Detect finds every completed action in the signals, by start time.
func Detect(sig []Signal, cfg Config) []Event {
	cfg = cfg.withDefaults()
	var eye, mouth, yaw, pitch []float64
	for _, s := range sig {
		if s.Face {
			eye = append(eye, s.Eye)
			mouth = append(mouth, s.Mouth)
			yaw = append(yaw, s.Yaw)
			pitch = append(pitch, s.Pitch)
		}
	}
	if len(eye) == 0 {
		return nil
	}
	// Resting values: the median, since each action is brief against the
	// clip. The mouth rests closed, so its lower quartile is its rest.
	rest := Signal{Eye: median(eye), Mouth: quantile(mouth, 0.25), Yaw: median(yaw), Pitch: median(pitch)}
	var ev []Event
	ev = append(ev, excursions(sig, Blink, func(s Signal) float64 { return 1 - s.Eye/rest.Eye },
		1-cfg.BlinkClose, 1-cfg.BlinkOpen, 0, cfg.MaxBlink, nil)...)
	ev = append(ev, excursions(sig, OpenMouth, func(s Signal) float64 { return s.Mouth - rest.Mouth },
		cfg.MouthOpen, cfg.MouthOpen/2, cfg.MinMouthHold, cfg.MaxHeadMove, nil)...)
	dy := func(s Signal) float64 { return s.Yaw - rest.Yaw }
	dp := func(s Signal) float64 { return s.Pitch - rest.Pitch }
	turnOK := func(s Signal) bool { return math.Abs(dy(s)) >= cfg.Dominance*math.Abs(dp(s)) }
	nodOK := func(s Signal) bool { return math.Abs(dp(s)) >= cfg.Dominance*math.Abs(dy(s)) }
	ev = append(ev, excursions(sig, TurnLeft, dy, cfg.Turn, cfg.Turn/2, cfg.MinHeadHold, cfg.MaxHeadMove, turnOK)...)
	ev = append(ev, excursions(sig, TurnRight, func(s Signal) float64 { return -dy(s) }, cfg.Turn, cfg.Turn/2, cfg.MinHeadHold, cfg.MaxHeadMove, turnOK)...)
	// Head down moves the nose tip away from the forehead: pitch falls.
	ev = append(ev, excursions(sig, Nod, func(s Signal) float64 { return -dp(s) }, cfg.NodDown, cfg.NodDown/2, cfg.MinHeadHold, cfg.MaxHeadMove, nodOK)...)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Start < ev[j].Start })
	return ev
}

// Peaks is how far each signal of a clip went toward its action's
// threshold at the clip's most extreme frame: 1 reaches the threshold
// (whether or not it came back). For evaluation: how close a still or
// moved photo came to completing an action.
type Peaks struct {
	Blink, OpenMouth, TurnLeft, TurnRight, Nod float64
}

// Max is the largest of p's values.
func (p Peaks) Max() float64 {
	return max(p.Blink, p.OpenMouth, p.TurnLeft, p.TurnRight, p.Nod)
}

// PeakRatios measures sig's Peaks against cfg's thresholds, from the same
// resting values Detect uses.
func PeakRatios(sig []Signal, cfg Config) Peaks {
	cfg = cfg.withDefaults()
	var eye, mouth, yaw, pitch []float64
	for _, s := range sig {
		if s.Face {
			eye, mouth, yaw, pitch = append(eye, s.Eye), append(mouth, s.Mouth), append(yaw, s.Yaw), append(pitch, s.Pitch)
		}
	}
	var p Peaks
	if len(eye) == 0 {
		return p
	}
	rEye, rMouth, rYaw, rPitch := median(eye), quantile(mouth, 0.25), median(yaw), median(pitch)
	for i := range eye {
		p.Blink = max(p.Blink, (1-eye[i]/rEye)/(1-cfg.BlinkClose))
		p.OpenMouth = max(p.OpenMouth, (mouth[i]-rMouth)/cfg.MouthOpen)
		p.TurnLeft = max(p.TurnLeft, (yaw[i]-rYaw)/cfg.Turn)
		p.TurnRight = max(p.TurnRight, (rYaw-yaw[i])/cfg.Turn)
		p.Nod = max(p.Nod, (rPitch-pitch[i])/cfg.NodDown)
	}
	return p
}

// excursions finds the spans where v rises to enter or above and then falls
// back below exit, lasting between minHold (time at or above enter) and
// maxDur; frames without a face neither start nor end a span, and a span
// still open at the end of the clip is not completed. peakOK, when set,
// must hold at the peak.
func excursions(sig []Signal, a Action, v func(Signal) float64, enter, exit float64, minHold, maxDur time.Duration, peakOK func(Signal) bool) []Event {
	var out []Event
	in := false
	var e Event
	var peak Signal
	var held time.Duration
	var lastAbove time.Duration
	for i, s := range sig {
		if !s.Face {
			continue
		}
		x := v(s)
		if !in {
			if x >= enter {
				in, e, peak, held, lastAbove = true, Event{Action: a, Start: s.T, Peak: s.T, Size: x}, s, 0, s.T
			}
			continue
		}
		if x >= enter {
			held += s.T - lastAbove
			lastAbove = s.T
		}
		if x > e.Size {
			e.Size, e.Peak, peak = x, s.T, s
		}
		if x < exit {
			in = false
			e.End = s.T
			dur := e.End - e.Start
			// A single frame above enter still counts a frame's worth.
			if held == 0 && i > 0 {
				held = s.T - sig[i-1].T
			}
			if held >= minHold && dur <= maxDur && (peakOK == nil || peakOK(peak)) {
				out = append(out, e)
			}
		}
	}
	return out
}

func median(x []float64) float64 { return quantile(x, 0.5) }

func quantile(x []float64, q float64) float64 {
	c := append([]float64(nil), x...)
	sort.Float64s(c)
	if len(c) == 0 {
		return 0
	}
	pos := q * float64(len(c)-1)
	lo := int(pos)
	if lo+1 >= len(c) {
		return c[lo]
	}
	return c[lo] + (pos-float64(lo))*(c[lo+1]-c[lo])
}
