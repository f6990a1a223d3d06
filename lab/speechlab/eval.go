package speechlab

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/trustid/trustid/liveness/speech"
)

// EvalConfig configures Evaluate.
type EvalConfig struct {
	Rec      *speech.EmbeddingRecognizer
	FSDDDir  string
	Speakers []string // must not be speakers the head was trained on
	// Utterances per speaker and join mode (pauses, run together).
	Utterances int
	Seed       int64
	// Thresholds to sweep besides the recogniser's own.
	Thresholds []float64
	// SegmentWeights to sweep (overall only) besides the recogniser's own.
	SegmentWeights []float64
	// FarThresholds to sweep for the alternative rule FarMargin >= t.
	FarThresholds []float64
	// ExtraRandom more uniformly random wrong strings are scored per
	// utterance (drawn from their own generator, so the utterances stay
	// those of the seed); 0 means 20.
	ExtraRandom int
	// Trial, when set, is called with every scored trial (condition,
	// kind genuine / one_changed / random, and its result).
	Trial func(cond, kind string, res speech.Result)
}

// EvalReport is what Evaluate measured; it is printed as JSON.
type EvalReport struct {
	Speakers   []string          `json:"speakers"`
	Train      []string          `json:"head_train_speakers"`
	Seed       int64             `json:"seed"`
	Threshold  float64           `json:"threshold"`
	MinFrames  int               `json:"min_frames"`
	MaxFrames  int               `json:"max_frames"`
	Overrun    float64           `json:"overrun"`
	Conditions []ConditionReport `json:"conditions"`
	Overall    ConditionReport   `json:"overall"`
	CPU        LatencyReport     `json:"cpu_per_utterance_ms"`
	Wall       LatencyReport     `json:"wall_per_utterance_ms"`
	AudioSec   float64           `json:"mean_audio_seconds"`
	// SegmentWeight is the recogniser's; WeightSweep holds the overall
	// sweep over thresholds for each of EvalConfig.SegmentWeights.
	SegmentWeight float64       `json:"segment_weight"`
	WeightSweep   []WeightSweep `json:"segment_weight_sweep,omitempty"`
}

// WeightSweep is the overall threshold sweep at one segment weight.
type WeightSweep struct {
	Weight         float64      `json:"weight"`
	StringAccuracy float64      `json:"string_accuracy"`
	Sweep          []SweepPoint `json:"sweep"`
}

// ConditionReport holds the numbers of one join mode and noise condition.
type ConditionReport struct {
	Name           string  `json:"name"`
	Utterances     int     `json:"utterances"`
	StringAccuracy float64 `json:"string_accuracy"`
	DigitAccuracy  float64 `json:"digit_accuracy"`
	GenuineAccept  float64 `json:"genuine_accept"`
	FAOneChanged   float64 `json:"false_accept_one_digit_changed"`
	FARandom       float64 `json:"false_accept_random_string"`
	// Unscorable utterances (counted as genuine rejects), by error.
	Unscorable    int            `json:"unscorable"`
	UnscorableWhy map[string]int `json:"unscorable_errors,omitempty"`
	// RandomTrials is how many random wrong strings FARandom is over.
	RandomTrials int          `json:"random_string_trials"`
	Sweep        []SweepPoint `json:"sweep,omitempty"`
	// FarSweep is the alternative rule FarMargin >= threshold.
	FarSweep   []SweepPoint `json:"far_sweep,omitempty"`
	genuine    []float64
	oneChanged []float64
	random     []float64
	// The FarMargin of each of the trials above.
	genuineFar, oneChangedFar, randomFar []float64
	// accepted counts under the recogniser's rule.
	accGenuine, accOne, accRandom int
	correctStr                    int
	correctDig                    int
}

// SweepPoint is the accept rates at one threshold.
type SweepPoint struct {
	Threshold     float64 `json:"threshold"`
	GenuineAccept float64 `json:"genuine_accept"`
	FAOneChanged  float64 `json:"false_accept_one_digit_changed"`
	FARandom      float64 `json:"false_accept_random_string"`
}

// LatencyReport summarises per-utterance times.
type LatencyReport struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
}

// Evaluate builds 4-digit utterances from FSDD clips of held-out speakers,
// joined with pauses (150-500 ms between voiced parts) or run together
// (-100..+30 ms: overlapping or touching), each clean and with white or pink
// noise at 20 and 10 dB SNR (relative to the voiced parts), and scores each
// against its own digits, two strings with one digit changed and two random
// other strings, plus ExtraRandom random other strings.
func Evaluate(ctx context.Context, c EvalConfig) (EvalReport, error) {
	if c.Utterances == 0 {
		c.Utterances = 100
	}
	if c.ExtraRandom == 0 {
		c.ExtraRandom = 20
	}
	rc := c.Rec.Config()
	rep := EvalReport{Speakers: c.Speakers, Train: rc.Head.Meta.TrainSpeakers, Seed: c.Seed,
		Threshold: *rc.Threshold, MinFrames: rc.MinFrames, MaxFrames: rc.MaxFrames, Overrun: *rc.Overrun,
		SegmentWeight: *rc.SegmentWeight}
	ws := make([]ConditionReport, len(c.SegmentWeights))
	for _, s := range c.Speakers {
		if slices.Contains(rc.Head.Meta.TrainSpeakers, s) {
			return rep, fmt.Errorf("speech: eval: the head was trained on %s", s)
		}
	}
	clips, err := LoadFSDD(c.Rec.Frontend(), c.FSDDDir, c.Speakers)
	if err != nil {
		return rep, err
	}
	rng := NewRand(c.Seed)
	rngAlt := NewRand(c.Seed + 1_000_003)
	trial := func(cr *ConditionReport, kind string, margins, fars *[]float64, acc *int, res speech.Result) {
		cr.add(margins, fars, acc, res)
		if c.Trial != nil {
			c.Trial(cr.Name, kind, res)
		}
	}
	modes := []struct {
		name       string
		gapLo, gap float64
	}{{"pauses", 0.15, 0.35}, {"run_together", -0.10, 0.13}}
	noises := []struct {
		name string
		snr  float64
	}{{"clean", math.Inf(1)}, {"snr20", 20}, {"snr10", 10}}
	conds := map[string]*ConditionReport{}
	var order []string
	var cpu, wall []float64
	var audio float64
	runtime.LockOSThread() // per-thread CPU time below
	defer runtime.UnlockOSThread()
	for _, g := range groupClips(clips) {
		byDigit := make([][]Clip, 10)
		for _, cl := range g {
			byDigit[cl.Digit] = append(byDigit[cl.Digit], cl)
		}
		for _, m := range modes {
			for u := range c.Utterances {
				exp := make([]int, 4)
				sel := make([]Clip, 4)
				for i := range exp {
					exp[i] = rng.IntN(10)
					sel[i] = byDigit[exp[i]][rng.IntN(len(byDigit[exp[i]]))]
				}
				gaps := make([]int, 3)
				for i := range gaps {
					gaps[i] = int((m.gapLo + m.gap*rng.Float64()) * speech.SampleRate)
				}
				lead := int((0.2 + 0.3*rng.Float64()) * speech.SampleRate)
				tail := int((0.2 + 0.3*rng.Float64()) * speech.SampleRate)
				clean, spans := Concat(sel, gaps, lead, tail)
				for _, nz := range noises {
					if err := ctx.Err(); err != nil {
						return rep, err
					}
					pcm := clean
					if !math.IsInf(nz.snr, 1) {
						pcm = AddNoise(rng, clean, spans, nz.snr, u%2 == 1)
					}
					audio += float64(len(pcm)) / speech.SampleRate
					c0, w0 := threadCPU(), time.Now()
					a, err := c.Rec.Analyze(ctx, pcm)
					res := speech.Result{}
					if err == nil {
						res = c.Rec.ScoreAnalysis(a, exp)
					}
					cpu = append(cpu, float64(threadCPU()-c0)/1e6)
					wall = append(wall, float64(time.Since(w0))/1e6)
					name := m.name + "/" + nz.name
					cr := conds[name]
					if cr == nil {
						cr = &ConditionReport{Name: name}
						conds[name] = cr
						order = append(order, name)
					}
					cr.Utterances++
					if err != nil {
						// Unscorable audio counts as a genuine reject.
						cr.Unscorable++
						if cr.UnscorableWhy == nil {
							cr.UnscorableWhy = map[string]int{}
						}
						cr.UnscorableWhy[err.Error()]++
						cr.genuine = append(cr.genuine, math.Inf(-1))
						cr.genuineFar = append(cr.genuineFar, math.Inf(-1))
						if c.Trial != nil {
							c.Trial(name, "genuine", speech.Result{Margin: math.Inf(-1), FarMargin: math.Inf(-1)})
						}
						for i := range ws {
							ws[i].Utterances++
							ws[i].genuine = append(ws[i].genuine, math.Inf(-1))
						}
						continue
					}
					trial(cr, "genuine", &cr.genuine, &cr.genuineFar, &cr.accGenuine, res)
					for i, w := range c.SegmentWeights {
						wr := c.Rec.ScoreAnalysisWeighted(a, exp, w)
						ws[i].Utterances++
						ws[i].genuine = append(ws[i].genuine, wr.Margin)
						if wr.Digits == digitString(exp) {
							ws[i].correctStr++
						}
					}
					if res.Digits == digitString(exp) {
						cr.correctStr++
					}
					for i := range exp {
						if i < len(res.Digits) && int(res.Digits[i]-'0') == exp[i] {
							cr.correctDig++
						}
					}
					for range 2 {
						alt := slices.Clone(exp)
						p := rng.IntN(4)
						alt[p] = (alt[p] + 1 + rng.IntN(9)) % 10
						trial(cr, "one_changed", &cr.oneChanged, &cr.oneChangedFar, &cr.accOne, c.Rec.ScoreAnalysis(a, alt))
						for i, w := range c.SegmentWeights {
							ws[i].oneChanged = append(ws[i].oneChanged, c.Rec.ScoreAnalysisWeighted(a, alt, w).Margin)
						}
						randomOther(rng, exp, alt)
						trial(cr, "random", &cr.random, &cr.randomFar, &cr.accRandom, c.Rec.ScoreAnalysis(a, alt))
						for i, w := range c.SegmentWeights {
							ws[i].random = append(ws[i].random, c.Rec.ScoreAnalysisWeighted(a, alt, w).Margin)
						}
					}
					alt := make([]int, len(exp))
					for range c.ExtraRandom {
						randomOther(rngAlt, exp, alt)
						trial(cr, "random", &cr.random, &cr.randomFar, &cr.accRandom, c.Rec.ScoreAnalysis(a, alt))
					}
				}
			}
		}
	}
	all := &ConditionReport{Name: "all"}
	for _, n := range order {
		cr := conds[n]
		all.Utterances += cr.Utterances
		all.genuine = append(all.genuine, cr.genuine...)
		all.oneChanged = append(all.oneChanged, cr.oneChanged...)
		all.random = append(all.random, cr.random...)
		all.genuineFar = append(all.genuineFar, cr.genuineFar...)
		all.oneChangedFar = append(all.oneChangedFar, cr.oneChangedFar...)
		all.randomFar = append(all.randomFar, cr.randomFar...)
		all.accGenuine += cr.accGenuine
		all.Unscorable += cr.Unscorable
		all.accOne += cr.accOne
		all.accRandom += cr.accRandom
		all.correctStr += cr.correctStr
		all.correctDig += cr.correctDig
		cr.finish(nil, nil)
		rep.Conditions = append(rep.Conditions, *cr)
	}
	ths := append([]float64{rep.Threshold}, c.Thresholds...)
	sort.Float64s(ths)
	fths := slices.Sorted(slices.Values(c.FarThresholds))
	all.finish(slices.Compact(ths), slices.Compact(fths))
	rep.Overall = *all
	for i, w := range c.SegmentWeights {
		ws[i].finish(slices.Compact(ths), nil)
		rep.WeightSweep = append(rep.WeightSweep, WeightSweep{Weight: w, StringAccuracy: ws[i].StringAccuracy, Sweep: ws[i].Sweep})
	}
	rep.CPU = summarise(cpu)
	rep.Wall = summarise(wall)
	if n := len(cpu); n > 0 {
		rep.AudioSec = audio / float64(n)
	}
	return rep, nil
}

// digitString turns []int{4,2,9,1} into "4291".
func digitString(d []int) string {
	b := make([]byte, len(d))
	for i, v := range d {
		b[i] = byte('0' + v)
	}
	return string(b)
}

// randomOther fills alt with uniformly random digits other than exp.
func randomOther(rng *rand.Rand, exp, alt []int) {
	for {
		for i := range alt {
			alt[i] = rng.IntN(10)
		}
		if !slices.Equal(alt, exp) {
			return
		}
	}
}

// add records one trial: its two margins and whether the rule accepts it.
func (cr *ConditionReport) add(margins, fars *[]float64, acc *int, res speech.Result) {
	*margins = append(*margins, res.Margin)
	*fars = append(*fars, res.FarMargin)
	if res.Match {
		*acc++
	}
}

// finish computes the rates; sweep holds Margin thresholds, farSweep
// FarMargin thresholds (the alternative rule).
func (cr *ConditionReport) finish(sweep, farSweep []float64) {
	n := float64(cr.Utterances)
	cr.StringAccuracy = float64(cr.correctStr) / n
	cr.DigitAccuracy = float64(cr.correctDig) / (4 * n)
	rate := func(k int, of []float64) float64 {
		if len(of) == 0 {
			return 0
		}
		return float64(k) / float64(len(of))
	}
	cr.GenuineAccept = rate(cr.accGenuine, cr.genuine)
	cr.FAOneChanged = rate(cr.accOne, cr.oneChanged)
	cr.FARandom = rate(cr.accRandom, cr.random)
	cr.RandomTrials = len(cr.random)
	for _, t := range sweep {
		cr.Sweep = append(cr.Sweep, SweepPoint{Threshold: t, GenuineAccept: rateAtLeast(cr.genuine, t),
			FAOneChanged: rateAtLeast(cr.oneChanged, t), FARandom: rateAtLeast(cr.random, t)})
	}
	for _, t := range farSweep {
		cr.FarSweep = append(cr.FarSweep, SweepPoint{Threshold: t, GenuineAccept: rateAtLeast(cr.genuineFar, t),
			FAOneChanged: rateAtLeast(cr.oneChangedFar, t), FARandom: rateAtLeast(cr.randomFar, t)})
	}
}

func rateAtLeast(v []float64, th float64) float64 {
	if len(v) == 0 {
		return 0
	}
	n := 0
	for _, x := range v {
		if x >= th {
			n++
		}
	}
	return float64(n) / float64(len(v))
}

func summarise(v []float64) LatencyReport {
	if len(v) == 0 {
		return LatencyReport{}
	}
	s := slices.Sorted(slices.Values(v))
	var sum float64
	for _, x := range s {
		sum += x
	}
	return LatencyReport{Mean: sum / float64(len(s)), P50: s[len(s)/2], P95: s[len(s)*95/100]}
}

// threadCPU returns the calling OS thread's CPU time in nanoseconds
// (RUSAGE_THREAD = 1 on Linux; ONNX Runtime runs on the calling thread with
// one intra-op thread).
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
