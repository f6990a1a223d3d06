// Package viseme checks that the mouth in a clip says what its voice says,
// beyond the rhythm the energy lip sync (liveness/lipsync) compares. It
// reads the lip geometry of every frame (from the face mesh: the inner-lip
// opening over the mouth width, the width itself, tracked frame to frame)
// and two things about the audio: where there is voice, and where the
// recogniser placed each expected digit. It scores two inputs:
//
//   - Silent articulation: the share of the mouth's movement that happens
//     where the audio holds no voice. A citizen reading digits moves the
//     lips while speaking; a dub that lays a voice on a video of other words
//     leaves the words it did not cover mouthed in silence, and audio
//     shifted by a few hundred milliseconds leaves the edges of every word
//     mouthed in silence.
//   - Lip closures in the digit slots: no English digit holds a bilabial
//     (b, p, m), so while a digit is voiced the lips never shut; the words a
//     dub lays the digits over ("bin", "blue", "please", "by", "m") do shut
//     them. Closed frames (inner-lip gap under ClosedFraction of the clip's
//     voiced 90th percentile) inside the recogniser's digit slots, voiced,
//     are counted.
//   - Viseme margin (reported, does not vote by default): in each digit's
//     slot, whether the lips round or spread the way the expected digit's
//     vowel makes them ("two", "four", "one", "zero" round; "three", "six",
//     "seven", "eight" spread; "five" and "nine" neither), against the
//     opposite class. On the GRID clips it did not tell genuine slots from
//     dubbed ones (liveness/RESULTS.md).
//
// Both are measured on the GRID talking faces (liveness/RESULTS.md, #17);
// the thresholds were set leaving speakers out.
package viseme

import (
	"errors"
	"math"
	"sort"
	"time"
)

// Shape is the mouth in one frame.
type Shape struct {
	// Opening is the inner-lip gap over the mouth width (mesh points
	// 13/14 over 61/291).
	Opening float64
	// Width is the mouth-corner distance (any unit, constant over a clip).
	Width float64
	// OK is false when the frame has no mouth measure.
	OK bool
}

// Slot is the span of one expected digit in the audio.
type Slot struct{ Start, End time.Duration }

// Input is one clip.
type Input struct {
	// Times are the frame times from the start of the audio; Shapes are
	// aligned with them.
	Times  []time.Duration
	Shapes []Shape
	// Audio is mono PCM at Rate.
	Audio []int16
	Rate  int
	// Digits are the expected digits and Slots their spans (the
	// recogniser's best alignment; may be shorter than Digits or empty,
	// then the viseme margin does not vote).
	Digits string
	Slots  []Slot
}

// Config tunes Check; zero fields take DefaultConfig's values.
type Config struct {
	// MaxSilent is the largest share of mouth movement allowed where the
	// audio has no voice.
	MaxSilent float64
	// MinViseme is the least mean rounding margin over the voting slots;
	// set it to -1 or below to let the margin never fail (it is still
	// reported).
	MinViseme float64
	// Pad widens the voiced frames on each side: the lips move before the
	// sound they shape and close after it.
	Pad time.Duration
	// VoiceFraction places the voice threshold between the audio's noise
	// floor (10th percentile of frame energies) and its loud level (95th),
	// in dB.
	VoiceFraction float64
	// MinFrames is the least number of frames with a mouth measure.
	MinFrames int
	// ClosedFraction: a frame's lips are closed when its opening is under
	// this fraction of the 90th percentile of the voiced frames' openings.
	ClosedFraction float64
	// MaxClosed is the most closed, voiced frames allowed inside the digit
	// slots.
	MaxClosed int
}

// DefaultConfig holds the defaults (liveness/RESULTS.md, "Viseme-level
// sync", for how they were chosen).
var DefaultConfig = Config{
	MaxSilent:      0.30,
	MinViseme:      -1,
	Pad:            120 * time.Millisecond,
	VoiceFraction:  0.4,
	MinFrames:      20,
	ClosedFraction: 0.15,
	MaxClosed:      2,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.MaxSilent > 0 {
		d.MaxSilent = c.MaxSilent
	}
	if c.MinViseme != 0 {
		d.MinViseme = c.MinViseme
	}
	if c.Pad > 0 {
		d.Pad = c.Pad
	}
	if c.VoiceFraction > 0 {
		d.VoiceFraction = c.VoiceFraction
	}
	if c.MinFrames > 0 {
		d.MinFrames = c.MinFrames
	}
	if c.ClosedFraction > 0 {
		d.ClosedFraction = c.ClosedFraction
	}
	if c.MaxClosed > 0 {
		d.MaxClosed = c.MaxClosed
	}
	return d
}

// Errors reported as Result.Reason.
var (
	ErrTooFewFrames = errors.New("viseme: too few frames with a mouth measure")
	ErrNoVoice      = errors.New("viseme: no voice in the audio")
	ErrStillMouth   = errors.New("viseme: the mouth does not move")
	ErrSilentMouth  = errors.New("viseme: the mouth moves where there is no voice")
	ErrWrongVisemes = errors.New("viseme: the lips do not shape the expected digits")
	ErrLipsClosed   = errors.New("viseme: the lips close while a digit is voiced")
)

// Result is the outcome of Check. The scores are for trusted callers and
// logs only.
type Result struct {
	Pass bool
	// Reason is nil on a pass, else the first of Failed.
	Reason error
	// Failed lists every criterion the clip failed (ErrSilentMouth,
	// ErrLipsClosed, ErrWrongVisemes), or the one error that stopped the
	// scoring.
	Failed []error
	// Silent is the share of mouth movement outside the voice (0..1).
	Silent float64
	// Viseme is the mean rounding margin over the voting slots (NaN when
	// none voted) and Votes how many voted.
	Viseme float64
	Votes  int
	// Closed is the number of closed, voiced frames inside the digit slots.
	Closed int
	// Frames is the number of frames with a mouth measure.
	Frames int
}

// Rounding is the expected lip rounding of each digit's English vowel: +1
// rounded, -1 spread, 0 neither (does not vote).
var Rounding = [10]float64{
	0: +1, // zero: ends on a rounded "o"
	1: +1, // one: starts on a rounded "w"
	2: +1, // two: "oo"
	3: -1, // three: "ee"
	4: +1, // four: "or"
	5: 0,  // five: open "ai", lower lip to teeth
	6: -1, // six: "i"
	7: -1, // seven: "e"
	8: -1, // eight: "ei"
	9: 0,  // nine: open "ai"
}

// Check scores the clip.
func Check(in Input, cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Viseme: math.NaN()}
	n := min(len(in.Times), len(in.Shapes))
	var widths []float64
	for i := range n {
		if s := in.Shapes[i]; s.OK && s.Width > 0 && !math.IsNaN(s.Opening) {
			res.Frames++
			widths = append(widths, s.Width)
		}
	}
	if res.Frames < cfg.MinFrames {
		res.Reason, res.Failed = ErrTooFewFrames, []error{ErrTooFewFrames}
		return res
	}
	voiced, ok := Voiced(in.Audio, in.Rate, in.Times[:n], cfg.VoiceFraction, cfg.Pad)
	if !ok {
		res.Reason, res.Failed = ErrNoVoice, []error{ErrNoVoice}
		return res
	}
	w0 := quantile(widths, 0.5)
	var inside, outside float64
	for i := 1; i < n; i++ {
		a, b := in.Shapes[i-1], in.Shapes[i]
		if !a.OK || !b.OK || a.Width <= 0 || b.Width <= 0 {
			continue
		}
		m := math.Abs(b.Opening-a.Opening) + math.Abs(b.Width-a.Width)/w0
		if voiced[i] || voiced[i-1] {
			inside += m
		} else {
			outside += m
		}
	}
	if inside+outside == 0 {
		res.Reason, res.Failed = ErrStillMouth, []error{ErrStillMouth}
		return res
	}
	res.Silent = outside / (inside + outside)
	res.Viseme, res.Votes = visemeMargin(in, n, w0)
	res.Closed = closedInSlots(in, n, cfg.ClosedFraction, cfg.VoiceFraction)
	if res.Silent > cfg.MaxSilent {
		res.Failed = append(res.Failed, ErrSilentMouth)
	}
	if res.Closed > cfg.MaxClosed {
		res.Failed = append(res.Failed, ErrLipsClosed)
	}
	if res.Votes > 0 && res.Viseme < cfg.MinViseme {
		res.Failed = append(res.Failed, ErrWrongVisemes)
	}
	if len(res.Failed) > 0 {
		res.Reason = res.Failed[0]
	} else {
		res.Pass = true
	}
	return res
}

// closedInSlots counts the voiced frames (without padding) inside the digit
// slots whose lips are closed: opening under frac of the 90th percentile of
// the voiced frames' openings.
func closedInSlots(in Input, n int, frac, voiceFrac float64) int {
	voiced, ok := Voiced(in.Audio, in.Rate, in.Times[:n], voiceFrac, 0)
	if !ok {
		return 0
	}
	var open []float64
	for i := range n {
		if s := in.Shapes[i]; voiced[i] && s.OK {
			open = append(open, s.Opening)
		}
	}
	if len(open) == 0 {
		return 0
	}
	shut := frac * quantile(open, 0.9)
	closed := 0
	for i := range n {
		s, t := in.Shapes[i], in.Times[i]
		if !voiced[i] || !s.OK || s.Opening >= shut {
			continue
		}
		for k, sl := range in.Slots {
			if k < len(in.Digits) && t >= sl.Start && t <= sl.End {
				closed++
				break
			}
		}
	}
	return closed
}

// visemeMargin is the mean over the voting slots of the expected rounding
// sign times the slot's rounding: how much narrower than usual the mouth
// gets in the slot, minus how much wider, relative to the clip's median
// width.
func visemeMargin(in Input, n int, w0 float64) (float64, int) {
	var sum float64
	votes := 0
	for k, sl := range in.Slots {
		if k >= len(in.Digits) {
			break
		}
		d := in.Digits[k]
		if d < '0' || d > '9' || Rounding[d-'0'] == 0 {
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range n {
			t := in.Times[i]
			if s := in.Shapes[i]; s.OK && s.Width > 0 && t >= sl.Start-40*time.Millisecond && t <= sl.End+40*time.Millisecond {
				lo, hi = min(lo, s.Width/w0), max(hi, s.Width/w0)
			}
		}
		if math.IsInf(lo, 0) {
			continue
		}
		round := (1 - lo) - (hi - 1)
		sum += Rounding[d-'0'] * round
		votes++
	}
	if votes == 0 {
		return math.NaN(), 0
	}
	return sum / float64(votes), votes
}

// Voiced marks the frame times with voice: whole-band energy in a 40 ms
// window above the noise floor by frac of the span between the floor (10th
// percentile) and the loud level (95th percentile), widened by pad on each
// side. ok is false when the span is under 6 dB (no voice at all).
func Voiced(audio []int16, rate int, times []time.Duration, frac float64, pad time.Duration) ([]bool, bool) {
	e := make([]float64, len(times))
	for i, t := range times {
		e[i] = LogEnergy(audio, rate, t)
	}
	if len(e) == 0 {
		return nil, false
	}
	floor, loud := quantile(e, 0.1), quantile(e, 0.95)
	if loud-floor < 6 {
		return make([]bool, len(e)), false
	}
	thr := floor + frac*(loud-floor)
	out := make([]bool, len(e))
	for i := range e {
		if e[i] < thr {
			continue
		}
		for j := i; j >= 0 && times[i]-times[j] <= pad; j-- {
			out[j] = true
		}
		for j := i; j < len(e) && times[j]-times[i] <= pad; j++ {
			out[j] = true
		}
	}
	return out, true
}

func quantile(x []float64, q float64) float64 {
	c := append([]float64(nil), x...)
	sort.Float64s(c)
	return c[int(q*float64(len(c)-1))]
}

// LogEnergy is the audio's energy in dB (full scale) in the 40 ms around t.
func LogEnergy(audio []int16, rate int, t time.Duration) float64 {
	half := rate / 50
	c := int(t.Seconds() * float64(rate))
	lo, hi := max(0, c-half), min(len(audio), c+half)
	var s float64
	for _, v := range audio[min(lo, hi):max(lo, hi)] {
		s += float64(v) * float64(v)
	}
	return 10 * math.Log10(s/float64(2*half)/(32768*32768)+1e-12)
}
