package livenesseval

import (
	"math"
	"sort"
	"time"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// The lab's variant of lipsync.Check, for the lip-sync cross-validation
// (-parts lipsync-cv). Besides the service's mouth measure (contrast) it can
// correlate the mouth region's dark fraction and grey level, add the
// spectral tilt, and turn the score into a sync-peak contrast (lvOffset).
// None of these was chosen (liveness/RESULTS.md), so the service's Check
// has none of them; with none of them set, lvCheck computes exactly
// Check's result (TestLvCheckMatchesCheck).

// lvMeasure names a mouth-region measure.
type lvMeasure int

const (
	// lvContrast is lipsync.FrameSeries's contrast, the service's measure.
	lvContrast lvMeasure = iota
	// lvDark is the fraction of pixels darker than 0.6 times the region's
	// median grey (the open mouth's cavity).
	lvDark
	// lvGrey is the negated mean grey (darker when open).
	lvGrey
)

func (m lvMeasure) String() string {
	switch m {
	case lvContrast:
		return "contrast"
	case lvDark:
		return "dark"
	case lvGrey:
		return "grey"
	}
	return "measure?"
}

// lvInput is a lipsync.Input with the experiment-only mouth measures.
type lvInput struct {
	lipsync.Input
	// Dark and Grey are aligned with Times (lvMouthMeasures).
	Dark, Grey []float64
}

func (in *lvInput) series(m lvMeasure) []float64 {
	switch m {
	case lvContrast:
		return in.Contrast
	case lvDark:
		return in.Dark
	case lvGrey:
		return in.Grey
	}
	return nil
}

// lvLipSyncInput is liveness.LipSyncInput with the dark and grey measures
// of the same mouth regions.
func lvLipSyncInput(clip *media.Clip, keys []int, lms []*lipsync.Landmarks) lvInput {
	in := lvInput{Input: liveness.LipSyncInput(clip, keys, lms)}
	if len(keys) > 0 {
		in.Dark, in.Grey = lvMouthMeasures(clip.Frames, liveness.MouthRegions(len(clip.Frames), keys, lms))
	}
	return in
}

// lvMouthMeasures measures the mouth region roi[i] of each BGR frame as
// lipsync.FrameSeries does (regions clipped to the frame; an empty region
// gives NaN), returning the dark fraction and the negated mean grey.
func lvMouthMeasures(frames []media.Frame, rois []lipsync.Rect) (dark, grey []float64) {
	dark = make([]float64, len(frames))
	grey = make([]float64, len(frames))
	var cur []float64
	for i, f := range frames {
		r := rois[i]
		r.X0, r.Y0 = max(0, r.X0), max(0, r.Y0)
		r.X1, r.Y1 = min(f.Width, r.X1), min(f.Height, r.Y1)
		if r.X1 <= r.X0 || r.Y1 <= r.Y0 || len(f.BGR) < f.Width*f.Height*3 {
			dark[i], grey[i] = math.NaN(), math.NaN()
			continue
		}
		cur = cur[:0]
		var sum float64
		for y := r.Y0; y < r.Y1; y++ {
			o := (y*f.Width + r.X0) * 3
			for x := r.X0; x < r.X1; x, o = x+1, o+3 {
				g := 0.114*float64(f.BGR[o]) + 0.587*float64(f.BGR[o+1]) + 0.299*float64(f.BGR[o+2])
				cur = append(cur, g)
				sum += g
			}
		}
		n := float64(len(cur))
		sort.Float64s(cur)
		med := cur[len(cur)/2]
		dark[i] = float64(sort.SearchFloat64s(cur, 0.6*med)) / n
		grey[i] = -sum / n
	}
	return dark, grey
}

// lvStat is a statistic of a set of correlations.
type lvStat int

const (
	lvMean lvStat = iota
	lvMedianStat
	lvQ90
	lvMax
)

func (s lvStat) String() string {
	switch s {
	case lvMean:
		return "mean"
	case lvMedianStat:
		return "median"
	case lvQ90:
		return "q90"
	case lvMax:
		return "max"
	}
	return "stat?"
}

// lvOffset is SyncNet's offset confidence (Chung and Zisserman, "Out of
// time: automated lip sync in the wild", 2016): the correlation at the
// capture's own small lags is compared with the correlations at audio
// offsets far from any capture skew. Audio taken from another sentence with
// the same rhythm may correlate with the mouth at a small lag by chance,
// but then about as well at other offsets; the audio of the clip itself
// should peak at its true lag. The score becomes the best small-lag
// correlation minus Weight times Stat of the far correlations.
type lvOffset struct {
	// MinShift and MaxShift bound the far offsets' magnitude (both signs
	// are used); the audio is shifted circularly (its ends are silence
	// in a capture, so the wrap joins silence to silence) in Step steps.
	MinShift, MaxShift, Step time.Duration
	Stat                     lvStat
	Weight                   float64
}

// lvSyncConfig is a lipsync.Config (zero fields take lipsync.DefaultConfig's,
// as Check's do) with the experiment options.
type lvSyncConfig struct {
	lipsync.Config
	// Measures are the mouth measures correlated with the audio; their
	// correlations are averaged. Empty: contrast only.
	Measures []lvMeasure
	// Tilt also correlates the mouth with the band's level relative to the
	// whole band (the spectral balance, which an opening mouth tips towards
	// the formants); the correlations are averaged with the band's.
	Tilt bool
	// Offset, when not nil, turns the score into a sync-peak contrast.
	Offset *lvOffset
}

// lvSyncResult is lvCheck's outcome: Score is the best correlation over the
// searched lags, less the far-offset statistic when Offset is set; Peak is
// the best correlation.
type lvSyncResult struct {
	lipsync.Result
	Peak float64
}

// lvWithDefaults is lipsync's Config.withDefaults: zero fields (but MinLag)
// take lipsync.DefaultConfig's.
func lvWithDefaults(c lipsync.Config) lipsync.Config {
	d := lipsync.DefaultConfig
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

// lvCheck is lipsync.Check with the experiment options of cfg.
func lvCheck(in lvInput, x lvSyncConfig) lvSyncResult {
	cfg := lvWithDefaults(x.Config)
	measures := x.Measures
	if len(measures) == 0 {
		measures = []lvMeasure{lvContrast}
	}
	var series [][]float64
	for _, m := range measures {
		if s := in.series(m); s != nil {
			series = append(series, s)
		}
	}
	var times []time.Duration
	feats := make([][]float64, len(series))
	for i, t := range in.Times {
		ok := len(series) > 0
		for _, s := range series {
			if i >= len(s) || math.IsNaN(s[i]) || math.IsInf(s[i], 0) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		times = append(times, t)
		for k, s := range series {
			feats[k] = append(feats[k], s[i])
		}
	}
	res := lvSyncResult{Result: lipsync.Result{Frames: len(times), Score: math.NaN()}, Peak: math.NaN()}
	if len(times) < cfg.MinFrames {
		res.Reason = lipsync.ErrTooFewFrames
		return res
	}
	var motion []float64
	for _, m := range in.Motion {
		if !math.IsNaN(m) {
			motion = append(motion, m)
		}
	}
	if len(motion) > 0 {
		res.Motion, _ = lipsync.MeanStd(motion)
	}
	if res.Motion < cfg.MinMotion {
		res.Reason = lipsync.ErrStillMouth
		return res
	}
	full := lipsync.Envelope(in.Audio, in.Rate, times, 0, cfg.Window)
	if lvPercentile(full, 0.9)-lvPercentile(full, 0.1) < cfg.MinEnergyRange {
		res.Reason = lipsync.ErrSilentAudio
		return res
	}
	mouth := make([][]float64, len(feats))
	for k := range feats {
		mouth[k] = lipsync.ChangeSeries(feats[k])
	}
	band := lipsync.BandPass(in.Audio, in.Rate, cfg.BandLow, cfg.BandHigh)
	var whole []float64
	if x.Tilt {
		whole = lipsync.BandPass(in.Audio, in.Rate, 0, -1)
	}
	win := hann(int(cfg.Window.Seconds() * float64(in.Rate)))
	corr := func(lag time.Duration, wrap bool) float64 {
		e := energyDB(band, in.Rate, times, lag, win, wrap)
		audio := [][]float64{lipsync.ChangeSeries(e)}
		if whole != nil {
			w := energyDB(whole, in.Rate, times, lag, win, wrap)
			for i := range w {
				w[i] = e[i] - w[i]
			}
			audio = append(audio, lipsync.ChangeSeries(w))
		}
		var r float64
		for _, m := range mouth {
			for _, a := range audio {
				r += lipsync.Pearson(m, a)
			}
		}
		return r / float64(len(mouth)*len(audio))
	}
	best, bestLag := math.Inf(-1), time.Duration(0)
	for lag := cfg.MinLag; lag <= cfg.MaxLag; lag += cfg.LagStep {
		if r := corr(lag, false); r > best {
			best, bestLag = r, lag
		}
	}
	res.Peak, res.Score, res.Lag = best, best, bestLag
	if o := x.Offset; o != nil && o.Step > 0 && o.MaxShift >= o.MinShift {
		var far []float64
		for s := o.MinShift; s <= o.MaxShift; s += o.Step {
			far = append(far, corr(s, true), corr(-s, true))
		}
		res.Score = best - o.Weight*lvStatOf(far, o.Stat)
	}
	if res.Score < cfg.Threshold {
		res.Reason = lipsync.ErrNoCorrelation
		return res
	}
	res.Pass = true
	return res
}

// lvStatOf is s of x (not empty).
func lvStatOf(x []float64, s lvStat) float64 {
	switch s {
	case lvMedianStat:
		return lvPercentile(x, 0.5)
	case lvQ90:
		return lvPercentile(x, 0.9)
	case lvMax:
		return lvPercentile(x, 1)
	}
	m, _ := lipsync.MeanStd(x)
	return m
}

// lvPercentile is a copy of lipsync's percentile: nearest rank on a
// sorted copy.
func lvPercentile(x []float64, q float64) float64 {
	c := append([]float64(nil), x...)
	// insertion sort: the series are a few dozen values
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[int(q*float64(len(c)-1))]
}
