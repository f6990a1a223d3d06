// Package lipsync checks that the lips in a clip move with its voice: the
// mouth region (placed from 68 facial landmarks on a few key frames) is
// measured in every frame, and its changes are correlated with the changes
// of the audio energy in the 1-3 kHz band (where the formants that the
// mouth's opening shapes lie) around each frame, over a search of small
// audio-video lags. A recording whose audio was taken from another clip
// correlates less; a still photo played with real speech does not move.
package lipsync

import (
	"errors"
	"math"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

// Point is a landmark position in pixels.
type Point struct{ X, Y float32 }

// Landmarks are the 68 points of the iBUG 300-W scheme (0-based indices).
type Landmarks [68]Point

// Errors explaining why a clip cannot pass; they are also reported as
// Result.Reason.
var (
	// ErrTooFewFrames: fewer mouth measurements than MinFrames.
	ErrTooFewFrames = errors.New("lipsync: too few frames with a face")
	// ErrStillMouth: the mouth region does not change (a photo, a frozen video).
	ErrStillMouth = errors.New("lipsync: mouth does not move")
	// ErrSilentAudio: no energy variation to correlate with.
	ErrSilentAudio = errors.New("lipsync: audio has no voice activity")
	// ErrNoCorrelation: lips and voice do not move together.
	ErrNoCorrelation = errors.New("lipsync: lips do not follow the voice")
)

// Mouth is the mouth shape in one frame, in units that do not depend on
// the face size or its distance from the camera.
type Mouth struct {
	// Inner is the gap between the inner lips (points 61-67, 62-66,
	// 63-65) over the eye-corner distance (36-45).
	Inner float64
	// Outer is the gap between the outer lips (50-58, 51-57, 52-56) over
	// the eye-corner distance.
	Outer float64
	// Aspect is the outer-lip gap over the mouth width (48-54).
	Aspect float64
}

// MouthOf measures the mouth from 68 landmarks. The eyes do not move with
// the jaw, so the eye-corner distance is a stable normaliser while the
// person speaks. ok is false for degenerate landmarks.
func MouthOf(lm *Landmarks) (m Mouth, ok bool) {
	eyes := dist(lm[36], lm[45])
	width := dist(lm[48], lm[54])
	if eyes <= 0 || width <= 0 {
		return Mouth{}, false
	}
	inner := (dist(lm[61], lm[67]) + dist(lm[62], lm[66]) + dist(lm[63], lm[65])) / 3
	outer := (dist(lm[50], lm[58]) + dist(lm[51], lm[57]) + dist(lm[52], lm[56])) / 3
	return Mouth{Inner: inner / eyes, Outer: outer / eyes, Aspect: outer / width}, true
}

func dist(a, b Point) float64 {
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}

// Rect is a pixel rectangle [X0,X1) x [Y0,Y1).
type Rect struct{ X0, Y0, X1, Y1 int }

// MouthROI is the mouth region of a face: a box 1.2 mouth widths wide and
// one mouth width high around the centre of the lip points (48-67). Its size
// follows the mouth width, not the opening, so that the opening shows up as
// a change inside a fixed box.
func MouthROI(lm *Landmarks) Rect {
	minX, minY := float32(math.MaxFloat32), float32(math.MaxFloat32)
	maxX, maxY := -minX, -minY
	for _, p := range lm[48:68] {
		minX, maxX = min(minX, p.X), max(maxX, p.X)
		minY, maxY = min(minY, p.Y), max(maxY, p.Y)
	}
	w := maxX - minX
	cx, cy := (minX+maxX)/2, (minY+maxY)/2
	return Rect{int(cx - 0.6*w), int(cy - 0.5*w), int(cx + 0.6*w), int(cy + 0.5*w)}
}

// Lerp interpolates between two regions (t in 0..1), for frames between
// two analysed key frames.
func Lerp(a, b Rect, t float64) Rect {
	l := func(x, y int) int { return int(math.Round(float64(x) + t*float64(y-x))) }
	return Rect{l(a.X0, b.X0), l(a.Y0, b.Y0), l(a.X1, b.X1), l(a.Y1, b.Y1)}
}

// FrameSeries measures the mouth region roi[i] of each BGR frame: its
// contrast, the standard deviation of the grey levels in the region (it
// rises as the lips part and show the dark cavity and the teeth), and its
// motion, the mean absolute grey change from the previous frame (0 for the
// first frame). Regions are clipped to the frame; an empty region gives
// NaN. Reading pixels is far cheaper than running a landmark model on every
// frame, so the mouth can be followed at the full frame rate with the face
// engine run on a few key frames only.
func FrameSeries(frames []media.Frame, rois []Rect) (contrast, motion []float64) {
	contrast = make([]float64, len(frames))
	motion = make([]float64, len(frames))
	var prev, cur []float64
	var prevRect Rect
	for i, f := range frames {
		r := rois[i]
		r.X0, r.Y0 = max(0, r.X0), max(0, r.Y0)
		r.X1, r.Y1 = min(f.Width, r.X1), min(f.Height, r.Y1)
		if r.X1 <= r.X0 || r.Y1 <= r.Y0 || len(f.BGR) < f.Width*f.Height*3 {
			contrast[i], motion[i] = math.NaN(), math.NaN()
			prev = nil
			continue
		}
		cur = cur[:0]
		var sum, sq float64
		for y := r.Y0; y < r.Y1; y++ {
			o := (y*f.Width + r.X0) * 3
			for x := r.X0; x < r.X1; x, o = x+1, o+3 {
				g := 0.114*float64(f.BGR[o]) + 0.587*float64(f.BGR[o+1]) + 0.299*float64(f.BGR[o+2])
				cur = append(cur, g)
				sum += g
				sq += g * g
			}
		}
		n := float64(len(cur))
		mean := sum / n
		contrast[i] = math.Sqrt(max(0, sq/n-mean*mean))
		if prev != nil && r == prevRect {
			var d float64
			for j := range cur {
				d += math.Abs(cur[j] - prev[j])
			}
			motion[i] = d / n
		} else if prev != nil {
			motion[i] = math.NaN() // the region moved: not comparable pixel by pixel
		}
		prev = append(prev[:0], cur...)
		prevRect = r
	}
	return contrast, motion
}

// Config tunes Check. Zero fields take the defaults in DefaultConfig.
type Config struct {
	// Threshold is the accept rule: pass when the best lagged correlation is
	// at least Threshold.
	Threshold float64
	// MinLag and MaxLag bound the audio delay searched (positive: the
	// audio comes later than the video). A wide search lets the syllable
	// rhythm (about 3-5 Hz) of any speech line up with any mouth by chance,
	// so it stays near a capture's own skew. The range leans towards audio
	// later than video: the mouth opens before the sound it makes.
	// MinLag's zero value is a valid bound, so it is taken as given.
	MinLag time.Duration
	MaxLag time.Duration
	// LagStep is the resolution of the lag search.
	LagStep time.Duration
	// Window is the audio window around each frame time for the energy.
	Window time.Duration
	// BandLow and BandHigh (Hz) bound the audio band whose energy is
	// correlated with the mouth. BandHigh < 0 uses the whole band.
	BandLow, BandHigh float64
	// MinFrames is the least number of frames with a mouth measurement.
	MinFrames int
	// MinMotion is the least mean grey-level change per frame in the mouth
	// region for a mouth that moves at all; a photo shown as a video stays
	// below it.
	MinMotion float64
	// MinEnergyRange is the least spread (dB, 90th minus 10th percentile)
	// of the whole-band audio energy for audio with voice activity.
	MinEnergyRange float64
}

// DefaultConfig holds the defaults. The mouth measure (contrast), band,
// lags and Threshold were chosen from the GRID genuine vs swapped-audio
// measurements in ../RESULTS.md (leave-one-clip-out), among candidates
// (other measures, spectral tilt, sync-peak contrast) that the lab's
// variant of Check tries (lab/livenesseval).
var DefaultConfig = Config{
	Threshold:      0.53,
	MinLag:         0,
	MaxLag:         80 * time.Millisecond,
	LagStep:        20 * time.Millisecond,
	Window:         60 * time.Millisecond,
	BandLow:        1000,
	BandHigh:       3000,
	MinFrames:      20,
	MinMotion:      0.3,
	MinEnergyRange: 6,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	d.MinLag = c.MinLag
	if c.Threshold != 0 {
		d.Threshold = c.Threshold
	}
	if c.MaxLag > 0 {
		d.MaxLag = c.MaxLag
	}
	if c.LagStep > 0 {
		d.LagStep = c.LagStep
	}
	if c.Window > 0 {
		d.Window = c.Window
	}
	if c.BandLow != 0 || c.BandHigh != 0 {
		d.BandLow, d.BandHigh = c.BandLow, c.BandHigh
	}
	if c.MinFrames > 0 {
		d.MinFrames = c.MinFrames
	}
	if c.MinMotion > 0 {
		d.MinMotion = c.MinMotion
	}
	if c.MinEnergyRange > 0 {
		d.MinEnergyRange = c.MinEnergyRange
	}
	return d
}

// Input is one clip: the mouth's contrast at frame times, and the audio.
type Input struct {
	// Times of the frames from the start of the audio.
	Times []time.Duration
	// Contrast is the mouth-region contrast (FrameSeries), aligned with
	// Times (NaN where the frame has no measure); it grows as the mouth
	// opens.
	Contrast []float64
	// Motion is the mouth region's change per frame (FrameSeries); NaN
	// entries are ignored.
	Motion []float64
	// Audio is mono PCM at Rate.
	Audio []int16
	Rate  int
}

// Result is the outcome of Check. Score and Lag are for trusted callers
// and logs only.
type Result struct {
	Pass bool
	// Reason is nil on a pass, else one of the package's errors.
	Reason error
	// Score is the best correlation over the searched lags.
	Score float64
	// Lag is the audio delay (positive: audio later than video) of Score.
	Lag time.Duration
	// Motion is the mean of Input.Motion.
	Motion float64
	// Frames is the number of frames with a contrast measure.
	Frames int
}

// Check correlates the mouth with the audio. The frame-to-frame change of
// the (3-tap smoothed) mouth contrast is correlated (Pearson) with the
// change of the 1-3 kHz band energy around the frame times. Changes rather than
// levels, because every utterance shares the slow shape "silence, speech,
// silence" with every other, which makes the levels of unrelated clips
// correlate; the onsets and closures of syllables are what is specific.
// The band rather than the whole-band energy, because the whole band is
// dominated by voicing (below 1 kHz), which any speech has whether the
// mouth is open or not, while the 1-3 kHz formant energy follows the
// opening of the mouth. The audio windows move with the lag, so the lag
// resolution is finer than the frame interval; the best lag in
// [MinLag, MaxLag] decides.
func Check(in Input, cfg Config) Result {
	cfg = cfg.withDefaults()
	var times []time.Duration
	var contrast []float64
	for i, t := range in.Times {
		if i >= len(in.Contrast) || math.IsNaN(in.Contrast[i]) || math.IsInf(in.Contrast[i], 0) {
			continue
		}
		times = append(times, t)
		contrast = append(contrast, in.Contrast[i])
	}
	res := Result{Frames: len(times), Score: math.NaN()}
	if len(times) < cfg.MinFrames {
		res.Reason = ErrTooFewFrames
		return res
	}
	var motion []float64
	for _, m := range in.Motion {
		if !math.IsNaN(m) {
			motion = append(motion, m)
		}
	}
	if len(motion) > 0 {
		res.Motion, _ = meanStd(motion)
	}
	if res.Motion < cfg.MinMotion {
		res.Reason = ErrStillMouth
		return res
	}
	full := Envelope(in.Audio, in.Rate, times, 0, cfg.Window)
	if percentile(full, 0.9)-percentile(full, 0.1) < cfg.MinEnergyRange {
		res.Reason = ErrSilentAudio
		return res
	}
	mouth := diff(smooth(contrast))
	band := BandPass(in.Audio, in.Rate, cfg.BandLow, cfg.BandHigh)
	win := hann(int(cfg.Window.Seconds() * float64(in.Rate)))
	best, bestLag := math.Inf(-1), time.Duration(0)
	for lag := cfg.MinLag; lag <= cfg.MaxLag; lag += cfg.LagStep {
		if r := pearson(mouth, diff(smooth(energyDB(band, in.Rate, times, lag, win)))); r > best {
			best, bestLag = r, lag
		}
	}
	res.Score, res.Lag = best, bestLag
	if res.Score < cfg.Threshold {
		res.Reason = ErrNoCorrelation
		return res
	}
	res.Pass = true
	return res
}

// BandPass returns audio (int16 PCM at rate) scaled to [-1, 1) and
// filtered to the band lo..hi Hz: two second-order Butterworth high-pass
// sections at lo and two low-pass sections at hi (24 dB per octave on each
// side). hi < 0, or hi at or above the Nyquist frequency, keeps the whole
// band above lo; lo <= 0 keeps everything below hi. Written here because
// four biquads are shorter than any filter library's set-up.
func BandPass(audio []int16, rate int, lo, hi float64) []float64 {
	x := make([]float64, len(audio))
	for i, v := range audio {
		x[i] = float64(v) / 32768
	}
	if rate <= 0 {
		return x
	}
	if lo > 0 && lo < float64(rate)/2 {
		hp := butterworth(lo, rate, true)
		hp.filter(x)
		hp.filter(x)
	}
	if hi > 0 && hi < float64(rate)/2 {
		lp := butterworth(hi, rate, false)
		lp.filter(x)
		lp.filter(x)
	}
	return x
}

// biquad is one second-order IIR section (normalised, a0 = 1).
type biquad struct{ b0, b1, b2, a1, a2 float64 }

// butterworth is the second-order Butterworth high- or low-pass section at
// f0 Hz (the Audio EQ Cookbook's formulas with Q = 1/sqrt 2).
func butterworth(f0 float64, rate int, high bool) biquad {
	w := 2 * math.Pi * f0 / float64(rate)
	alpha := math.Sin(w) / math.Sqrt2
	c := math.Cos(w)
	a0 := 1 + alpha
	q := biquad{a1: -2 * c / a0, a2: (1 - alpha) / a0}
	if high {
		q.b0, q.b1, q.b2 = (1+c)/2/a0, -(1+c)/a0, (1+c)/2/a0
	} else {
		q.b0, q.b1, q.b2 = (1-c)/2/a0, (1-c)/a0, (1-c)/2/a0
	}
	return q
}

// filter runs the section over x in place, from rest.
func (q biquad) filter(x []float64) {
	var x1, x2, y1, y2 float64
	for i, v := range x {
		y := q.b0*v + q.b1*x1 + q.b2*x2 - q.a1*y1 - q.a2*y2
		x2, x1 = x1, v
		y2, y1 = y1, y
		x[i] = y
	}
}

// hann is a Hann window of n points, squared (it weights energies), and
// normalised to sum to 1.
func hann(n int) []float64 {
	w := make([]float64, max(1, n))
	var sum float64
	for i := range w {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/float64(len(w)))
		w[i] = h * h
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// energyDB is the windowed energy of x in dB (floored at -90) centred on
// each time t+lag; samples outside x count as silence.
func energyDB(x []float64, rate int, times []time.Duration, lag time.Duration, win []float64) []float64 {
	out := make([]float64, len(times))
	for i, t := range times {
		start := int((t+lag).Seconds()*float64(rate)) - len(win)/2
		var e float64
		for j := max(0, -start); j < len(win) && start+j < len(x); j++ {
			v := x[start+j]
			e += win[j] * v * v
		}
		out[i] = max(-90, 10*math.Log10(e+1e-12))
	}
	return out
}

// Envelope is the audio energy in dB (relative to full scale, floored at
// -90) in a window of length win centred on each time t+lag.
func Envelope(audio []int16, rate int, times []time.Duration, lag, win time.Duration) []float64 {
	out := make([]float64, len(times))
	half := int(win.Seconds() * float64(rate) / 2)
	for i, t := range times {
		c := int((t + lag).Seconds() * float64(rate))
		lo, hi := min(len(audio), max(0, c-half)), max(0, min(len(audio), c+half))
		var sum float64
		for _, s := range audio[min(lo, hi):max(lo, hi)] {
			f := float64(s)
			sum += f * f
		}
		n := float64(2 * half)
		p := sum / n / (32768 * 32768)
		out[i] = max(-90, 10*math.Log10(p+1e-12))
	}
	return out
}

func smooth(x []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		a, b := x[max(0, i-1)], x[min(len(x)-1, i+1)]
		out[i] = 0.25*a + 0.5*x[i] + 0.25*b
	}
	return out
}

func diff(x []float64) []float64 {
	if len(x) < 2 {
		return nil
	}
	out := make([]float64, len(x)-1)
	for i := range out {
		out[i] = x[i+1] - x[i]
	}
	return out
}

// pearson is the correlation of a and b (0 when either is constant).
func pearson(a, b []float64) float64 {
	ma, sa := meanStd(a)
	mb, sb := meanStd(b)
	if sa == 0 || sb == 0 || len(a) == 0 {
		return 0
	}
	var s float64
	for i := range a {
		s += (a[i] - ma) * (b[i] - mb)
	}
	return s / float64(len(a)) / sa / sb
}

func meanStd(x []float64) (float64, float64) {
	var m float64
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return m, math.Sqrt(s / float64(len(x)))
}

// percentile of x by nearest rank on a sorted copy.
func percentile(x []float64, q float64) float64 {
	c := append([]float64(nil), x...)
	// insertion sort: the series are a few dozen values
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[int(q*float64(len(c)-1))]
}

// ChangeSeries, Pearson and MeanStd are Check's own primitives, exported
// so the lab's experiments (lab/livenesseval) measure with the same code.

// ChangeSeries is the frame-to-frame change of the 3-tap smoothed series
// x, as Check correlates (one shorter than x).
func ChangeSeries(x []float64) []float64 { return diff(smooth(x)) }

// Pearson is the correlation of a and b (0 when either is constant).
func Pearson(a, b []float64) float64 { return pearson(a, b) }

// MeanStd is the mean and the population standard deviation of x (0, 0
// when x is empty).
func MeanStd(x []float64) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	return meanStd(x)
}
