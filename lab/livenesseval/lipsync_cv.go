package livenesseval

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// The lip-sync cross-validation of eval-liveness (-parts lipsync-cv). The
// GRID set has only ten clips, so the choice of mouth measure, audio band,
// lag range and threshold is itself checked by leaving one clip out: for
// each clip, the configuration with the best AUC on the pairs of the other
// nine is picked, its threshold set by lvRuleThreshold on those pairs, and
// the held-out clip's genuine pair and its 18 swapped pairs (its video with
// the others' audio and the reverse) are decided with them.

// lvCVConfig is one candidate configuration.
type lvCVConfig struct {
	Name string
	Cfg  lvSyncConfig
}

// lvCVGrid is the candidate set: the previous method (dark fraction and
// grey, whole-band energy) is in it. The first lvCVGridBase candidates are
// the grid of the 11:33 run (mouth measure x band x lags); the rest add,
// for the contrast measure and the three best bands of that run, the
// spectral tilt and the sync-peak (offset) contrast.
func lvCVGrid() []lvCVConfig {
	measures := []struct {
		name string
		m    []lvMeasure
	}{
		{"contrast", []lvMeasure{lvContrast}},
		{"dark+grey", []lvMeasure{lvDark, lvGrey}},
		{"dark", []lvMeasure{lvDark}},
		{"contrast+dark", []lvMeasure{lvContrast, lvDark}},
	}
	bands := [][2]float64{{0, -1}, {300, 1000}, {1000, 3000}, {1000, 4000}, {500, 3000}}
	lags := [][2]time.Duration{{0, 80 * time.Millisecond}, {-40 * time.Millisecond, 80 * time.Millisecond}}
	var out []lvCVConfig
	add := func(cfg lvSyncConfig) { out = append(out, lvCVConfig{lvConfigName(cfg), cfg}) }
	for _, m := range measures {
		for _, b := range bands {
			for _, l := range lags {
				cfg := lvSyncConfig{Config: lipsync.DefaultConfig}
				cfg.Measures, cfg.BandLow, cfg.BandHigh, cfg.MinLag, cfg.MaxLag = m.m, b[0], b[1], l[0], l[1]
				add(cfg)
			}
		}
	}
	ms := time.Millisecond
	offsets := []*lvOffset{nil,
		{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvMean, Weight: 1},
		{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvMedianStat, Weight: 1},
		{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvQ90, Weight: 1},
		{MinShift: 200 * ms, MaxShift: 1000 * ms, Step: 40 * ms, Stat: lvMax, Weight: 1},
		{MinShift: 200 * ms, MaxShift: 600 * ms, Step: 40 * ms, Stat: lvMean, Weight: 1},
		{MinShift: 200 * ms, MaxShift: 600 * ms, Step: 40 * ms, Stat: lvMax, Weight: 1},
	}
	for _, b := range [][2]float64{{1000, 3000}, {1000, 4000}, {500, 3000}} {
		for _, tilt := range []bool{false, true} {
			for _, o := range offsets {
				if !tilt && o == nil {
					continue // in the base grid
				}
				cfg := lvSyncConfig{Config: lipsync.DefaultConfig}
				cfg.Measures, cfg.BandLow, cfg.BandHigh, cfg.MinLag, cfg.MaxLag = []lvMeasure{lvContrast}, b[0], b[1], 0, 80*ms
				cfg.Tilt, cfg.Offset = tilt, o
				add(cfg)
			}
		}
	}
	return out
}

// lvCVGridBase is the size of the 11:33 run's part of lvCVGrid.
const lvCVGridBase = 40

type lvCVFold struct {
	HeldOut    string  `json:"held_out"`
	Config     string  `json:"config"`
	TrainAUC   float64 `json:"train_auc"`
	Threshold  float64 `json:"threshold"`
	Genuine    float64 `json:"genuine_score"`
	SwappedMax float64 `json:"swapped_max"`
	Rejected   bool    `json:"genuine_rejected"`
	Accepted   int     `json:"swapped_accepted"`
}

type lvCVSummary struct {
	Candidates      int        `json:"candidates"`
	Folds           []lvCVFold `json:"folds"`
	GenuineRejected int        `json:"genuine_rejected"`
	SwappedAccepted int        `json:"swapped_accepted"`
	SwappedTested   int        `json:"swapped_tested"`
	// MarginAUC is the AUC of the held-out scores minus their fold's
	// threshold (genuine vs swapped).
	MarginAUC float64 `json:"margin_auc"`
}

// lvCandidate is one candidate's separation on all ten clips (fitted, so
// optimistic; for comparing candidates only).
type lvCandidate struct {
	Config     string  `json:"config"`
	AUC        float64 `json:"auc"`
	GenuineMin float64 `json:"genuine_min"`
	SwappedMax float64 `json:"swapped_max"`
	// Threshold is lvRule's on all clips; FitRejected and FitAccepted are
	// its errors on the same clips (of 10 and 90).
	Threshold   float64 `json:"rule_threshold"`
	FitRejected int     `json:"fit_genuine_rejected"`
	FitAccepted int     `json:"fit_swapped_accepted"`
	// CVRejected and CVAccepted (of 10 and 180) are this candidate's
	// errors with the threshold chosen by leaving one clip out.
	CVRejected int `json:"cv_genuine_rejected"`
	CVAccepted int `json:"cv_swapped_accepted"`
}

type lvLipSyncCV struct {
	Rule string `json:"threshold_rule"`
	// Candidates: every candidate of the selection on all clips.
	Candidates []lvCandidate `json:"candidates_all_clips"`
	// Selection: configuration (of all candidates) and threshold chosen
	// inside each fold.
	Selection lvCVSummary `json:"selection_cv"`
	// SelectionBase: the same over the 11:33 run's 40 candidates only.
	SelectionBase lvCVSummary `json:"selection_cv_base_grid"`
	// Default: lipsync.DefaultConfig's measure, band and lags, threshold
	// chosen inside each fold.
	Default lvCVSummary `json:"default_config_threshold_cv"`
	// DefaultRuleThreshold is the rule applied to all ten clips.
	DefaultRuleThreshold float64 `json:"default_config_rule_threshold_all_clips"`
	// Previous: the previous method (dark fraction and grey, whole-band
	// energy, lags -40..80 ms), threshold chosen inside each fold.
	Previous lvCVSummary `json:"previous_method_threshold_cv"`
}

// lvScoreMatrix is lvCheck's score for every video (inputs) with every
// clip's audio: S[v][a].
func lvScoreMatrix(inputs []lvInput, audio []media.Audio, cfg lvSyncConfig) [][]float64 {
	S := make([][]float64, len(inputs))
	for v, in := range inputs {
		S[v] = make([]float64, len(audio))
		for a, au := range audio {
			in.Audio, in.Rate = au.Samples, au.Rate
			r := lvCheck(in, cfg)
			S[v][a] = r.Score
			if math.IsNaN(r.Score) {
				S[v][a] = math.Inf(-1)
			}
		}
	}
	return S
}

// lvSplit returns the genuine and swapped scores of S, leaving out every
// pair that involves clip skip (-1: none).
func lvSplit(S [][]float64, skip int) (gen, sw []float64) {
	for v := range S {
		for a := range S[v] {
			if v == skip || a == skip {
				continue
			}
			if v == a {
				gen = append(gen, S[v][a])
			} else {
				sw = append(sw, S[v][a])
			}
		}
	}
	return gen, sw
}

func lvAUC(gen, sw []float64) float64 {
	var w float64
	for _, g := range gen {
		for _, s := range sw {
			switch {
			case g > s:
				w++
			case g == s:
				w += 0.5
			}
		}
	}
	return w / float64(max(1, len(gen)*len(sw)))
}

// lvErrors counts genuine scores below t (rejected) and swapped scores at or
// above t (accepted).
func lvErrors(gen, sw []float64, t float64) (fr, fa int) {
	for _, g := range gen {
		if g < t {
			fr++
		}
	}
	for _, s := range sw {
		if s >= t {
			fa++
		}
	}
	return fr, fa
}

const lvRule = "threshold minimising (genuine rejection rate + swapped acceptance rate) on the training pairs, midway between the two neighbouring scores; ties go to the lowest such threshold"

// lvRuleThreshold applies lvRule to the pairs of S not involving skip.
func lvRuleThreshold(S [][]float64, skip int) float64 {
	return lvRuleThresholdOf(lvSplit(S, skip))
}

// lvRuleThresholdOf applies lvRule to genuine and swapped scores.
func lvRuleThresholdOf(gen, sw []float64) float64 {
	all := append(append([]float64{}, gen...), sw...)
	sort.Float64s(all)
	best, bt := math.Inf(1), 0.0
	for i := 0; i+1 < len(all); i++ {
		if all[i] == all[i+1] {
			continue
		}
		t := (all[i] + all[i+1]) / 2
		fr, fa := lvErrors(gen, sw, t)
		if c := float64(fr)/float64(len(gen)) + float64(fa)/float64(len(sw)); c < best {
			best, bt = c, t
		}
	}
	return bt
}

// lvCrossValidate runs the leave-one-clip-out folds over the candidates'
// score matrices (one per candidate).
func lvCrossValidate(names []string, cands []lvCVConfig, mats [][][]float64) lvCVSummary {
	tally := lvTally{sum: lvCVSummary{Candidates: len(cands)}}
	for k := range names {
		bi, ba := 0, -1.0
		for i, S := range mats {
			g, s := lvSplit(S, k)
			if a := lvAUC(g, s); a > ba {
				bi, ba = i, a
			}
		}
		S := mats[bi]
		var swapped []float64
		for o := range names {
			if o != k {
				swapped = append(swapped, S[k][o], S[o][k])
			}
		}
		tally.add(lvCVFold{HeldOut: names[k], Config: cands[bi].Name, TrainAUC: lvRound(ba)}, S[k][k], swapped, lvRuleThreshold(S, k))
	}
	return tally.summary()
}

// lvTally collects cross-validation folds into a summary, with the
// margins (score minus the fold's threshold) its AUC is computed from.
type lvTally struct {
	sum    lvCVSummary
	gm, sm []float64
}

// add records fold f: its held-out genuine score and the swapped scores
// it decides, against threshold t.
func (a *lvTally) add(f lvCVFold, genuine float64, swapped []float64, t float64) {
	f.Threshold, f.Genuine, f.SwappedMax, f.Rejected = lvRound(t), lvRound(genuine), math.Inf(-1), genuine < t
	a.gm = append(a.gm, genuine-t)
	if f.Rejected {
		a.sum.GenuineRejected++
	}
	for _, x := range swapped {
		a.sm = append(a.sm, x-t)
		a.sum.SwappedTested++
		f.SwappedMax = max(f.SwappedMax, x)
		if x >= t {
			f.Accepted++
			a.sum.SwappedAccepted++
		}
	}
	f.SwappedMax = lvRound(f.SwappedMax)
	a.sum.Folds = append(a.sum.Folds, f)
}

func (a *lvTally) summary() lvCVSummary {
	a.sum.MarginAUC = lvRound(lvAUC(a.gm, a.sm))
	return a.sum
}

// lvLipSyncCrossValidate scores the ten clips under every candidate and
// cross-validates the selection, the default configuration's threshold
// and the previous method's threshold.
func lvLipSyncCrossValidate(names []string, inputs []lvInput, audio []media.Audio) *lvLipSyncCV {
	grid := lvCVGrid()
	mats := make([][][]float64, len(grid))
	for i, c := range grid {
		mats[i] = lvScoreMatrix(inputs, audio, c.Cfg)
	}
	defCfg := lvSyncConfig{Config: lipsync.DefaultConfig}
	def := []lvCVConfig{{"default (" + lvConfigName(defCfg) + ")", defCfg}}
	defMat := [][][]float64{lvScoreMatrix(inputs, audio, defCfg)}
	prev := lvSyncConfig{Config: lipsync.DefaultConfig}
	prev.Measures, prev.BandLow, prev.BandHigh, prev.MinLag = []lvMeasure{lvDark, lvGrey}, 0, -1, -40*time.Millisecond
	prevMat := [][][]float64{lvScoreMatrix(inputs, audio, prev)}
	var all []lvCandidate
	for i, c := range grid {
		g, s := lvSplit(mats[i], -1)
		sort.Float64s(g)
		sort.Float64s(s)
		t := lvRuleThreshold(mats[i], -1)
		fr, fa := lvErrors(g, s, t)
		cv := lvCrossValidate(names, grid[i:i+1], mats[i:i+1])
		all = append(all, lvCandidate{Config: c.Name, AUC: lvRound(lvAUC(g, s)), GenuineMin: lvRound(g[0]), SwappedMax: lvRound(s[len(s)-1]),
			Threshold: lvRound(t), FitRejected: fr, FitAccepted: fa, CVRejected: cv.GenuineRejected, CVAccepted: cv.SwappedAccepted})
	}
	return &lvLipSyncCV{
		Rule:                 lvRule,
		Candidates:           all,
		Selection:            lvCrossValidate(names, grid, mats),
		SelectionBase:        lvCrossValidate(names, grid[:lvCVGridBase], mats[:lvCVGridBase]),
		Default:              lvCrossValidate(names, def, defMat),
		DefaultRuleThreshold: lvRound(lvRuleThreshold(defMat[0], -1)),
		Previous:             lvCrossValidate(names, []lvCVConfig{{"dark+grey / whole band / lags -40..80 ms", prev}}, prevMat),
	}
}

func lvConfigName(c lvSyncConfig) string {
	ms := c.Measures
	if len(ms) == 0 {
		ms = []lvMeasure{lvContrast}
	}
	var m []string
	for _, x := range ms {
		m = append(m, x.String())
	}
	band := "whole band"
	if c.BandHigh > 0 {
		band = fmt.Sprintf("%g-%g Hz", c.BandLow, c.BandHigh)
	}
	if c.Tilt {
		band += " + tilt"
	}
	name := fmt.Sprintf("%s / %s / lags %d..%d ms", strings.Join(m, "+"), band, c.MinLag.Milliseconds(), c.MaxLag.Milliseconds())
	if o := c.Offset; o != nil {
		w := ""
		if o.Weight != 1 {
			w = fmt.Sprintf("%g x ", o.Weight)
		}
		name += fmt.Sprintf(" - %s%s at +-%d..%d ms", w, o.Stat, o.MinShift.Milliseconds(), o.MaxShift.Milliseconds())
	}
	return name
}
