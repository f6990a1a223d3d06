package livenesseval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/trustid/trustid/lab/speechlab"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/synthvoice"
	"github.com/trustid/trustid/liveness/viseme"
)

// voiceRecorder is the synthetic-voice check exactly as the service runs it
// (synthvoice.Detector.Synthetic behind facelogin.Voice: the same
// preparation, features and model), which also keeps the features of the
// recording it scored last, so that the evaluation can score the same clip
// again with models retrained without some of the training data.
type voiceRecorder struct {
	front synthvoice.Frontend
	model *synthvoice.Model
	mu    sync.Mutex
	last  []float64
}

var _ liveness.VoiceCheck = (*voiceRecorder)(nil)

// Synthetic implements liveness.VoiceCheck.
func (r *voiceRecorder) Synthetic(pcm []float32, rate int) (float64, []float32, error) {
	x, err := synthvoice.Prepare(pcm, rate)
	var f []float64
	var act []float32
	if err == nil {
		f, act, err = synthvoice.FeaturesActivity(r.front, x)
	}
	if errors.Is(err, synthvoice.ErrNoSpeech) || errors.Is(err, synthvoice.ErrInput) {
		return 0, act, fmt.Errorf("%w: %v", liveness.ErrNoSpeech, err)
	}
	if err != nil {
		return 0, nil, err
	}
	r.mu.Lock()
	r.last = f
	r.mu.Unlock()
	return r.model.Prob(f), act, nil
}

// take returns the features of the last recording scored and forgets them
// (nil when none was scored since the last take).
func (r *voiceRecorder) take() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.last
	r.last = nil
	return f
}

// voiceRule re-decides the synthetic-voice check of a clip: pass, and
// whether it could (false: the check did not score the clip, its recorded
// outcome stands).
type voiceRule func(c mfClip) (pass, decided bool)

// verdict decides a clip from its recorded checks: every recorded reason
// must be absent except those re-decided here; the voice check by voice
// (nil: as recorded) and the two mouth checks by th = (MaxSilent,
// MaxClosed) (nil: as recorded).
func verdict(c mfClip, voice voiceRule, th *[2]float64) bool {
	if len(c.Checks) == 0 {
		return false
	}
	voicePass, voiceDecided := true, false
	if voice != nil {
		voicePass, voiceDecided = voice(c)
	}
	if !voiceDecided {
		// As recorded: a failed voice check is among the reasons.
		voicePass = true
	}
	for _, r := range c.Reasons {
		switch {
		case r == liveness.ReasonSynthetic && voiceDecided:
		case th != nil && (r == liveness.ReasonVisemes || r == liveness.ReasonSilentMouth):
		default:
			return false
		}
	}
	if th != nil && !(silentOf(c) <= th[0] && closedOf(c) <= th[1]) {
		return false
	}
	return voicePass
}

// modelRule decides the voice check with model m at its own threshold.
func modelRule(m *synthvoice.Model) voiceRule {
	return func(c mfClip) (bool, bool) {
		if c.voiceX == nil {
			return false, false
		}
		return m.Prob(c.voiceX) < m.Threshold, true
	}
}

// mfFoldInfo is one retrained voice model.
type mfFoldInfo struct {
	HeldOutSpeakers []string `json:"held_out_speakers,omitempty"`
	HeldOutSources  []string `json:"held_out_sources,omitempty"`
	Train           int      `json:"train_recordings"`
	Threshold       float64  `json:"threshold"`
}

// mfHeldOutRun is the decision with retrained voice models.
type mfHeldOutRun struct {
	Rule    string       `json:"rule"`
	Folds   []mfFoldInfo `json:"folds"`
	Summary mfSummary    `json:"summary"`
	// MouthThresholds: with the mouth checks also refitted, (MaxSilent,
	// MaxClosed) per held-out speaker.
	MouthThresholds map[string][2]float64 `json:"max_silent_max_closed_per_held_out_speaker,omitempty"`
}

// mfHeldOut holds the evaluation's held-out figures for the
// synthetic-voice check (whose shipped model was trained with dubs of the
// shared GRID clips).
type mfHeldOut struct {
	Corpus map[string]int `json:"voice_corpus"`
	Note   string         `json:"note"`
	// Refit: the voice model retrained on the whole corpus; when the
	// corpus is the one the shipped model was trained on, its decisions
	// are the in-sample ones (a check that the retraining is faithful).
	Refit           mfHeldOutRun `json:"voice_refit_whole_corpus"`
	RefitAsInSample bool         `json:"refit_decides_as_shipped"`
	SpeakerOut      mfHeldOutRun `json:"voice_leave_one_speaker_out"`
	EngineOut       mfHeldOutRun `json:"voice_leave_dub_engine_out"`
	BothOut         mfHeldOutRun `json:"voice_leave_speaker_and_dub_engine_out"`
	// Whole: the voice model and the mouth checks' two thresholds, both
	// refitted without the held-out speaker (the voice model also without
	// the dub's engine: BothOut's models).
	Whole mfHeldOutRun `json:"voice_and_mouth_leave_one_speaker_and_dub_engine_out"`
	// Rounding: the viseme rounding margin voting on top of BothOut's
	// decision, its threshold fitted leaving each speaker out.
	Rounding *mfRounding `json:"viseme_rounding_leave_one_speaker_out"`
}

// speakersOf lists the clips' speakers, sorted.
func speakersOf(clips []mfClip) []string {
	var s []string
	for _, c := range clips {
		if !slices.Contains(s, c.Speaker) {
			s = append(s, c.Speaker)
		}
	}
	sort.Strings(s)
	return s
}

// heldOut retrains the synthetic-voice model for each fold and re-decides
// the clips: leaving each speaker out (its GRID clip, its dubs, every
// recording laid on its contour), leaving the dub's engine out (flite and
// the dub), and both; the last also refits the mouth thresholds leaving
// the speaker out. The corpus is train-synthvoice's for the flags
// corpusArgs.
func heldOut(ctx context.Context, clips []mfClip, corpusArgs []string, logf func(string, ...any)) (*mfHeldOut, error) {
	cs, err := speechlab.SVCorpus(ctx, corpusArgs)
	if err != nil {
		return nil, fmt.Errorf("voice corpus: %w", err)
	}
	out := &mfHeldOut{Corpus: map[string]int{},
		Note: "each fold retrains the synthetic-voice model as train-synthvoice does (same corpus, seed, fit and threshold rule: at most " +
			fmt.Sprintf("%.1f %%", 100*cs.FRR) + " of out-of-fold real-speech scores of its own training data at or above the threshold) without the held-out data, and decides the held-out clips with it; every other check is as recorded"}
	for _, it := range cs.Items {
		out.Corpus[it.Source]++
	}
	train := func(speakers, sources []string) (*synthvoice.Model, mfFoldInfo, error) {
		if err := ctx.Err(); err != nil {
			return nil, mfFoldInfo{}, err
		}
		items := speechlab.SVWithout(cs.Items, speakers, sources)
		m, _ := speechlab.SVTrainWithThreshold(items, cs.Fit, cs.FRR)
		if err := m.Validate(); err != nil {
			return nil, mfFoldInfo{}, err
		}
		logf("voice fold", "held_out_speakers", speakers, "held_out_sources", sources, "train", len(items), "threshold", m.Threshold)
		return m, mfFoldInfo{HeldOutSpeakers: speakers, HeldOutSources: sources, Train: len(items), Threshold: lvRound(m.Threshold)}, nil
	}
	decide := func(rule func(c mfClip) voiceRule) mfSummary {
		held := make([]mfClip, len(clips))
		copy(held, clips)
		for i := range held {
			held[i].Pass = verdict(held[i], rule(held[i]), nil)
		}
		return summarise(held, func(c mfClip) bool { return c.Pass })
	}

	m, info, err := train(nil, nil)
	if err != nil {
		return nil, err
	}
	out.Refit = mfHeldOutRun{Rule: "one model on the whole corpus", Folds: []mfFoldInfo{info},
		Summary: decide(func(mfClip) voiceRule { return modelRule(m) })}
	out.RefitAsInSample = true
	for _, c := range clips {
		if verdict(c, modelRule(m), nil) != c.Pass {
			out.RefitAsInSample = false
		}
	}

	m, info, err = train(nil, speechlab.SVDubEngines)
	if err != nil {
		return nil, err
	}
	out.EngineOut = mfHeldOutRun{Rule: "one model without " + strings.Join(speechlab.SVDubEngines, " and ") + " (the dub's synthesiser); every speaker in", Folds: []mfFoldInfo{info},
		Summary: decide(func(mfClip) voiceRule { return modelRule(m) })}

	speakers := speakersOf(clips)
	bySpeaker := map[string]*synthvoice.Model{}
	bothBySpeaker := map[string]*synthvoice.Model{}
	out.SpeakerOut.Rule = "per held-out speaker: a model without that speaker's clip, its dubs and every recording laid on its contour"
	out.BothOut.Rule = out.SpeakerOut.Rule + ", and without " + strings.Join(speechlab.SVDubEngines, " and ")
	for _, s := range speakers {
		m, info, err := train([]string{s}, nil)
		if err != nil {
			return nil, err
		}
		bySpeaker[s] = m
		out.SpeakerOut.Folds = append(out.SpeakerOut.Folds, info)
		m, info, err = train([]string{s}, speechlab.SVDubEngines)
		if err != nil {
			return nil, err
		}
		bothBySpeaker[s] = m
		out.BothOut.Folds = append(out.BothOut.Folds, info)
	}
	for i := range clips {
		clips[i].HeldOutVoice = map[string]float64{}
		if x := clips[i].voiceX; x != nil {
			s := clips[i].Speaker
			clips[i].HeldOutVoice["speaker_out"] = lvRound(bySpeaker[s].Prob(x))
			clips[i].HeldOutVoice["speaker_out_threshold"] = lvRound(bySpeaker[s].Threshold)
			clips[i].HeldOutVoice["speaker_and_engine_out"] = lvRound(bothBySpeaker[s].Prob(x))
			clips[i].HeldOutVoice["speaker_and_engine_out_threshold"] = lvRound(bothBySpeaker[s].Threshold)
		}
	}
	out.SpeakerOut.Summary = decide(func(c mfClip) voiceRule { return modelRule(bySpeaker[c.Speaker]) })
	out.BothOut.Summary = decide(func(c mfClip) voiceRule { return modelRule(bothBySpeaker[c.Speaker]) })
	whole := losoWith(clips, func(s string) voiceRule { return modelRule(bothBySpeaker[s]) })
	out.Whole = mfHeldOutRun{Rule: out.BothOut.Rule + "; the mouth checks' (MaxSilent, MaxClosed) refitted per held-out speaker as mouth_thresholds_leave_one_speaker_out does",
		Folds: out.BothOut.Folds, Summary: whole.Summary, MouthThresholds: whole.Thresholds}
	out.Rounding = roundingLOSO(clips, func(c mfClip) bool { return verdict(c, modelRule(bothBySpeaker[c.Speaker]), nil) })
	return out, nil
}

// silentScores are the candidate MaxSilent thresholds: 0, 1 and the
// midpoints between the distinct silent-mouth scores of the clips.
func silentScores(clips []mfClip) []float64 {
	var scores []float64
	for _, c := range clips {
		if v := silentOf(c); !math.IsNaN(v) {
			scores = append(scores, v)
		}
	}
	sort.Float64s(scores)
	silent := []float64{0}
	for i := 1; i < len(scores); i++ {
		if scores[i] > scores[i-1] {
			silent = append(silent, (scores[i-1]+scores[i])/2)
		}
	}
	return append(silent, 1)
}

// mouthRecorder and speechRecorder pass the decision's mouth tracking and
// speech check through and keep what they returned last, so that the
// evaluation can compute the viseme rounding margin (viseme.Result.Viseme,
// reported by the viseme check but not voting) exactly as the decision's
// viseme check sees the clip, without a change to the decision.
type mouthRecorder struct {
	inner liveness.MouthTracker
	mu    sync.Mutex
	last  []viseme.Shape
}

// TrackMouth implements liveness.MouthTracker.
func (r *mouthRecorder) TrackMouth(ctx context.Context, frames []media.Frame, start int, lm lipsync.Landmarks) ([]viseme.Shape, error) {
	s, err := r.inner.TrackMouth(ctx, frames, start, lm)
	r.mu.Lock()
	r.last = s
	r.mu.Unlock()
	return s, err
}

type speechRecorder struct {
	inner liveness.SpeechChecker
	mu    sync.Mutex
	last  []liveness.Segment
}

// CheckDigits implements liveness.SpeechChecker.
func (r *speechRecorder) CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (liveness.SpeechResult, error) {
	res, err := r.inner.CheckDigits(ctx, pcm, expected, activity)
	r.mu.Lock()
	r.last = res.Segments
	r.mu.Unlock()
	return res, err
}

// mouthMeasures are the viseme check's rounding margin (NaN and 0 votes
// when the mouth was not tracked or no slot voted), with the decision's
// default viseme configuration, and the slot sync (SlotSync) of the last
// decision: measures the evaluation reports that do not vote.
func mouthMeasures(clip *media.Clip, digits string, m *mouthRecorder, s *speechRecorder) (float64, int, SlotSyncResult) {
	m.mu.Lock()
	shapes := m.last
	m.last = nil
	m.mu.Unlock()
	s.mu.Lock()
	segs := s.last
	s.last = nil
	s.mu.Unlock()
	if len(shapes) == 0 {
		return math.NaN(), 0, SlotSyncResult{Score: math.NaN()}
	}
	in := viseme.Input{Shapes: shapes, Audio: clip.Audio.Samples, Rate: clip.Audio.Rate, Digits: digits}
	for _, f := range clip.Frames {
		in.Times = append(in.Times, f.T)
	}
	for _, sg := range segs {
		in.Slots = append(in.Slots, viseme.Slot{Start: sg.Start, End: sg.End})
	}
	r := viseme.Check(in, viseme.Config{})
	return r.Viseme, r.Votes, SlotSync(in)
}

// mfRounding is the rounding margin tried as a voting input: MinViseme
// fitted leaving each speaker out, on top of the whole held-out decision.
type mfRounding struct {
	Rule       string             `json:"rule"`
	Thresholds map[string]float64 `json:"min_viseme_per_held_out_speaker"`
	// Margins lists each label's margins (clips where a slot voted).
	Margins map[string][]float64 `json:"margins_per_label"`
	Summary mfSummary            `json:"summary"`
}

// roundingLOSO refits MinViseme for each speaker on the other speakers'
// clips (the value minimising BPCER + worst APCER of base with the margin
// voting; among ties the middle one) and decides the
// held-out speaker's clips with base and the margin.
func roundingLOSO(clips []mfClip, base func(c mfClip) bool) *mfRounding {
	out := &mfRounding{Rule: "per held-out speaker: MinViseme minimising BPCER + worst APCER on the other speakers' clips (ties: the middle one); a clip with no voting slot is decided without it",
		Thresholds: map[string]float64{}, Margins: map[string][]float64{}}
	for _, c := range clips {
		if c.Votes > 0 {
			out.Margins[c.Label] = append(out.Margins[c.Label], lvRound(c.Rounding))
		}
	}
	for _, v := range out.Margins {
		sort.Float64s(v)
	}
	// Candidates: off, and the midpoints between the training clips'
	// distinct margins.
	cands := func(train []mfClip) []float64 {
		var ms []float64
		for _, c := range train {
			if c.Votes > 0 {
				ms = append(ms, c.Rounding)
			}
		}
		sort.Float64s(ms)
		out := []float64{math.Inf(-1)}
		for i := 1; i < len(ms); i++ {
			if ms[i] > ms[i-1] {
				out = append(out, (ms[i-1]+ms[i])/2)
			}
		}
		return out
	}
	pass := func(c mfClip, th float64) bool {
		return base(c) && (c.Votes == 0 || c.Rounding >= th)
	}
	held := make([]mfClip, len(clips))
	copy(held, clips)
	for _, s := range speakersOf(clips) {
		var train []mfClip
		for _, c := range clips {
			if c.Speaker != s {
				train = append(train, c)
			}
		}
		bestLoss := math.Inf(1)
		var ties []float64
		for _, th := range cands(train) {
			sm := summarise(train, func(c mfClip) bool { return pass(c, th) })
			switch l := sm.BPCER.Rate + sm.Worst.Rate; {
			case l < bestLoss-1e-12:
				bestLoss, ties = l, []float64{th}
			case math.Abs(l-bestLoss) <= 1e-12:
				ties = append(ties, th)
			}
		}
		best := ties[len(ties)/2]
		out.Thresholds[s] = lvRound(best)
		if math.IsInf(best, -1) {
			out.Thresholds[s] = -1e9
		}
		for i, c := range clips {
			if c.Speaker == s {
				held[i].Pass = pass(c, best)
			}
		}
	}
	out.Summary = summarise(held, func(c mfClip) bool { return c.Pass })
	return out
}
