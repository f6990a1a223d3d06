package liveness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// Config holds the Verifier's live dependencies and thresholds.
type Config struct {
	Challenges Challenges       // required
	Faces      FaceAnalyzer     // required
	Speech     SpeechChecker    // required
	References ReferenceMatcher // required
	Video      VideoDecoder     // required for Request.Video
	Logger     *slog.Logger
	Now        func() time.Time

	// FPS is the sampling rate for JPEG-frame evidence; video evidence is
	// sampled by the VideoDecoder (its FPS). The mouth is followed in every
	// sampled frame by reading pixels, so this can stay at the capture
	// rate. Default 25.
	FPS    float64
	Limits media.Limits
	// KeyFrames is how many evenly spaced frames go through the face engine
	// (landmarks and embedding); the mouth region of the other frames is
	// taken from the nearest key frame. Default DefaultKeyFrames.
	KeyFrames int
	// SpoofKeyFrames is how many of the key frames, evenly spaced among
	// them, also get the anti-spoof score; default DefaultSpoofKeyFrames,
	// at most KeyFrames.
	SpoofKeyFrames int
	// OnStage, when set, is told as each stage of a decision ends (of the
	// digits: StageAudio, StageFrames, StageKeyFrame+"0".., StageVoice,
	// StageSpeech, StageMouth; of the actions: the key frames; of every
	// decision: StageDecision, last) with the time since Verify began (by
	// Now); it is called from several goroutines at once. The lab's
	// latency report prints these as the decision's timeline.
	OnStage func(stage string, since time.Duration)
	// Parallel is how many frames are analysed at once (the action
	// challenge's key frames; the digits' key frames too when Mouths is
	// nil, else one at a time beside the mouth tracking). Default 2.
	Parallel int
	LipSync  lipsync.Config

	// Mouths follows the lips in every frame for the viseme check (the face
	// mesh; authn/facelogin.Mouths). Nil skips that check: the service
	// always sets it.
	Mouths MouthTracker
	Viseme viseme.Config
	// Voice, when set, is the synthetic-voice check; the attempt fails when
	// its score reaches VoiceThreshold (default 0.5; the shipped detector's
	// own is synthvoice.Detector.Threshold). An error wrapping ErrNoSpeech
	// fails the check with ReasonNoSpeech; any other is a fault. Nil skips it.
	Voice          VoiceCheck
	VoiceThreshold float64

	// MinFacePresence is the least fraction of sampled frames with a face.
	MinFacePresence float64 // default 0.8
	// SpoofThreshold: the median anti-spoof "real" probability over the
	// key frames must reach it. Default 0.5.
	SpoofThreshold float64
	// SameFaceThreshold: every pair of key-frame embeddings must have at
	// least this cosine. Default 0.5 (on LFW, different people stay below
	// 0.41 at FAR 1e-4).
	SameFaceThreshold float64
	// MinSourceFPS rejects captures whose own frame rate (when known) is
	// implausibly low for talking video. Default 10.
	MinSourceFPS float64

	// Action challenges (actions.go); without Actions they are refused as
	// an internal error.
	Actions ActionTracker
	// ActionVideo decodes action evidence: no audio needed, frames at the
	// action sampling rate (Limits.VideoOnly). Required with Actions.
	ActionVideo VideoDecoder
	// ActionFPS samples JPEG-frame action evidence; default 25 (a blink
	// lasts 100-300 ms).
	ActionFPS float64
	// ActionLimits bound action evidence (VideoOnly is forced).
	ActionLimits media.Limits
	// ActionKeyFrames is how many evenly spaced frames of an action clip
	// go through the face engine (anchors for the tracker, anti-spoof,
	// same face, reference); default 6.
	ActionKeyFrames int
	// ActionCheck holds the action detectors' thresholds.
	ActionCheck action.Config
}

// DefaultKeyFrames is Config.KeyFrames' default.
const DefaultKeyFrames = 4

// DefaultSpoofKeyFrames is Config.SpoofKeyFrames' default: the passive
// anti-spoof network, the costliest of the face engine's (4-6.5 ms of CPU
// a frame against 3-4 for the embedding), runs on two of the four key
// frames (the second and the fourth); on all four it took 17-26 ms of a
// decision's 160-190. The median of the two moved by 0.00016 (0.013 at
// most) on the attack set, every clip far above the threshold. Fewer key
// frames were tried and not kept: three coarsen the mouth regions the
// lip-sync check reads and let an audio swap and a shift through
// (liveness/RESULTS.md, "Anti-spoof on two key frames").
const DefaultSpoofKeyFrames = 2

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FPS <= 0 {
		c.FPS = 25
	}
	if c.KeyFrames <= 0 {
		c.KeyFrames = DefaultKeyFrames
	}
	if c.SpoofKeyFrames <= 0 {
		c.SpoofKeyFrames = DefaultSpoofKeyFrames
	}
	c.SpoofKeyFrames = min(c.SpoofKeyFrames, c.KeyFrames)
	if c.Parallel <= 0 {
		c.Parallel = 2
	}
	if c.MinFacePresence <= 0 {
		c.MinFacePresence = 0.8
	}
	if c.SpoofThreshold <= 0 {
		c.SpoofThreshold = 0.5
	}
	if c.SameFaceThreshold <= 0 {
		c.SameFaceThreshold = 0.5
	}
	if c.MinSourceFPS <= 0 {
		c.MinSourceFPS = 10
	}
	if c.VoiceThreshold <= 0 {
		c.VoiceThreshold = 0.5
	}
	if c.ActionFPS <= 0 {
		c.ActionFPS = 25
	}
	if c.ActionKeyFrames <= 0 {
		c.ActionKeyFrames = 6
	}
	c.ActionLimits.VideoOnly = true
}

// Validate reports every missing dependency at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Challenges == nil {
		errs = append(errs, errors.New("liveness: Challenges is required"))
	}
	if c.Faces == nil {
		errs = append(errs, errors.New("liveness: Faces is required"))
	}
	if c.Speech == nil {
		errs = append(errs, errors.New("liveness: Speech is required"))
	}
	if c.References == nil {
		errs = append(errs, errors.New("liveness: References is required"))
	}
	if c.Video == nil {
		errs = append(errs, errors.New("liveness: Video is required"))
	}
	if c.Actions != nil && c.ActionVideo == nil {
		errs = append(errs, errors.New("liveness: ActionVideo is required with Actions"))
	}
	return errors.Join(errs...)
}

// Verifier makes liveness decisions. Safe for concurrent use.
type Verifier struct {
	cfg Config
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg}, nil
}

// Request is one verification attempt. Exactly one of Video, Frames (with
// WAV) or Clip carries the evidence.
type Request struct {
	ChallengeID string
	SessionID   string
	Subject     string // the claimed identity
	ClientAddr  string
	// Device is the client's opaque device id and KnownDevice whether it
	// proved an earlier success for Subject (see challenge.Client): the
	// lockout after failures is per subject and device.
	Device      string
	KnownDevice bool

	Video  io.Reader         // a video file (MP4, WebM, MPEG, ...)
	Frames []media.JPEGFrame // or timestamped JPEG frames ...
	WAV    []byte            // ... with a WAV file
	Clip   *media.Clip       // or evidence decoded by the caller
}

// Verify decides one attempt. The challenge is consumed whatever happens.
// The error is non-nil only for failures of the service itself (a store or
// an engine down); the Result then fails with ReasonInternal.
func (v *Verifier) Verify(ctx context.Context, req Request) (Result, error) {
	start := v.cfg.Now()
	if v.cfg.OnStage != nil {
		ctx = context.WithValue(ctx, stageStart{}, start)
	}
	res, err := v.verify(ctx, req)
	res.Elapsed = v.cfg.Now().Sub(start)
	v.stage(ctx, StageDecision)
	if err != nil {
		res.Pass = false
		res.Reasons = append(res.Reasons, ReasonInternal)
	}
	for _, c := range res.Checks {
		if !c.Pass && c.Reason != "" && !res.Has(c.Reason) {
			res.Reasons = append(res.Reasons, c.Reason)
		}
	}
	res.Pass = err == nil && len(res.Reasons) == 0
	client := challenge.Client{Addr: req.ClientAddr, Device: req.Device, Known: req.KnownDevice}
	switch {
	case res.Pass:
		if serr := v.cfg.Challenges.RecordSuccess(ctx, req.Subject, client); serr != nil {
			v.cfg.Logger.ErrorContext(ctx, "liveness: record success", "err", serr)
		}
	case res.judged():
		// Only an attempt whose evidence was judged is a guess: a refused
		// challenge or unreadable evidence tells the caller nothing about
		// the citizen and does not count toward the lockout.
		if locked, ferr := v.cfg.Challenges.RecordFailure(ctx, req.Subject, client); ferr != nil {
			v.cfg.Logger.ErrorContext(ctx, "liveness: record failure", "err", ferr)
		} else if locked {
			v.cfg.Logger.InfoContext(ctx, "liveness: lockout after repeated failures")
		}
	}
	attrs := []any{"pass", res.Pass, "reasons", res.Reasons, "elapsed_ms", res.Elapsed.Milliseconds()}
	for _, c := range res.Checks {
		attrs = append(attrs, slog.Group(c.Name, "pass", c.Pass, "score", c.Score))
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	v.cfg.Logger.InfoContext(ctx, "liveness decision", attrs...)
	return res, err
}

func (v *Verifier) verify(ctx context.Context, req Request) (Result, error) {
	var res Result
	ch, err := v.cfg.Challenges.Consume(ctx, req.ChallengeID, req.SessionID, req.Subject)
	var ref *challenge.Refusal
	switch {
	case errors.As(err, &ref):
		res.Checks = append(res.Checks, CheckResult{Name: CheckChallenge, Reason: ReasonChallenge})
		v.cfg.Logger.InfoContext(ctx, "liveness: challenge refused", "why", ref.Reason)
		return res, nil
	case err != nil:
		return res, fmt.Errorf("liveness: challenge: %w", err)
	}
	res.Checks = append(res.Checks, CheckResult{Name: CheckChallenge, Pass: true, Score: 1})
	res.Kind = ch.Kind
	if err := v.cfg.Challenges.Locked(ctx, req.Subject, challenge.Client{Addr: req.ClientAddr, Device: req.Device, Known: req.KnownDevice}); err != nil {
		var re *challenge.RetryError
		if errors.As(err, &re) && errors.Is(err, challenge.ErrLocked) {
			res.Reasons = append(res.Reasons, ReasonLocked)
			res.RetryAfter = re.RetryAfter
			return res, nil
		}
		return res, fmt.Errorf("liveness: lockout: %w", err)
	}

	// The audio checks may start during the intake, while the frames
	// decode (AudioFirstDecoder); refused evidence stops and awaits them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var early *audioChecks
	clip, err := v.intake(ctx, req, ch.Kind, func(a media.Audio) {
		v.stage(ctx, StageAudio)
		if v.cfg.Limits.Resolved().CheckAudio(a) == nil {
			early = v.startAudio(ctx, a, ch.Digits)
		}
	})
	if err != nil {
		if early != nil {
			cancel()
			early.wg.Wait()
		}
		reason, ok := intakeReason(err)
		if !ok {
			return res, fmt.Errorf("liveness: intake: %w", err)
		}
		v.cfg.Logger.InfoContext(ctx, "liveness: evidence refused", "err", err)
		res.Checks = append(res.Checks, CheckResult{Name: CheckIntake, Reason: reason})
		return res, nil
	}
	if req.Clip == nil {
		// The decoder's frame buffers go back to it for its next clips;
		// every reader of the frames has returned by then.
		defer clip.Release()
	}
	res.Checks = append(res.Checks, CheckResult{Name: CheckIntake, Pass: true, Score: clip.Duration().Seconds()})
	res.Checks = append(res.Checks, v.plausible(clip))

	var checks []CheckResult
	if ch.Kind == challenge.KindActions {
		checks, err = v.evaluateActions(ctx, clip, ch.Actions, req.Subject)
	} else {
		checks, err = v.evaluate(ctx, clip, ch.Digits, req.Subject, early)
	}
	res.Checks = append(res.Checks, checks...)
	return res, err
}

// intake decodes the evidence. A digits challenge's video goes to an
// AudioFirstDecoder when the decoder is one, which calls audio with the
// clip's audio before decoding the frames.
func (v *Verifier) intake(ctx context.Context, req Request, kind challenge.Kind, audio func(media.Audio)) (*media.Clip, error) {
	if kind == challenge.KindActions {
		return v.actionIntake(ctx, req)
	}
	switch {
	case req.Clip != nil:
		return req.Clip, nil
	case req.Video != nil:
		if d, ok := v.cfg.Video.(AudioFirstDecoder); ok {
			return d.DecodeAudioFirst(ctx, req.Video, audio)
		}
		return v.cfg.Video.DecodeVideo(ctx, req.Video)
	case len(req.Frames) > 0 || len(req.WAV) > 0:
		return media.DecodeFrames(req.Frames, req.WAV, v.cfg.FPS, v.cfg.Limits)
	}
	return nil, media.ErrNoVideo
}

func intakeReason(err error) (Reason, bool) {
	for _, m := range []struct {
		err    error
		reason Reason
	}{
		{media.ErrTooLarge, ReasonTooLarge},
		{media.ErrNoVideo, ReasonNoVideo},
		{media.ErrNoAudio, ReasonNoAudio},
		{media.ErrSilent, ReasonSilent},
		{media.ErrTooShort, ReasonTooShort},
		{media.ErrTooLong, ReasonTooLong},
		{media.ErrTooManyFrames, ReasonBadFrames},
		{media.ErrDimensions, ReasonBadFrames},
		{media.ErrTimestamps, ReasonBadFrames},
		{media.ErrUnreadable, ReasonUnreadable},
	} {
		if errors.Is(err, m.err) {
			return m.reason, true
		}
	}
	return "", false
}

// plausible checks what the limits do not: enough sampled frames for the
// clip's length and a capture frame rate fit for talking video.
func (v *Verifier) plausible(clip *media.Clip) CheckResult {
	c := CheckResult{Name: CheckCapture, Pass: true, Score: clip.SourceFPS}
	want := clip.Audio.Duration().Seconds() * clip.FPS
	if float64(len(clip.Frames)) < 0.8*want {
		c.Pass, c.Reason = false, ReasonImplausible
	}
	if clip.SourceFPS > 0 && clip.SourceFPS < v.cfg.MinSourceFPS {
		c.Pass, c.Reason = false, ReasonImplausible
	}
	return c
}

// evaluate runs speech, the synthetic-voice check and the frame
// analyses concurrently, then the checks that need the frames, then the
// viseme check, which needs both the mouth and the speech alignment. The
// audio checks are started already when audio is not nil (see intake).
func (v *Verifier) evaluate(ctx context.Context, clip *media.Clip, digits, subject string, audio *audioChecks) ([]CheckResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v.stage(ctx, StageFrames)

	if audio == nil {
		audio = v.startAudio(ctx, clip.Audio, digits)
	}

	// The mouth tracking (the face mesh on every frame, the longest path)
	// needs only the first key frame with a face: it starts as soon as
	// that one is analysed, while the face engine goes on with the others.
	keys := KeyFrames(len(clip.Frames), v.cfg.KeyFrames)
	frames := make([]frameResult, len(clip.Frames))
	ready := make([]chan struct{}, len(keys))
	for k := range ready {
		ready[k] = make(chan struct{})
	}
	var shapes []viseme.Shape
	var mouthErr error
	mouthDone := make(chan struct{})
	if v.cfg.Mouths != nil {
		go func() {
			defer close(mouthDone)
			shapes, mouthErr = v.trackMouth(ctx, clip, frames, keys, ready)
			v.stage(ctx, StageMouth)
		}()
	} else {
		close(mouthDone)
	}
	// With the mouth tracking, the face engine takes the key frames one at
	// a time: the first is then analysed at full speed and the tracking,
	// which needs it and is the longest path, starts sooner and shares the
	// cores with one face analysis instead of Parallel (paired on the 3 s
	// GRID clip, 2 cores: wall p50 109-110 against 115-117 ms, the same CPU;
	// liveness/RESULTS.md).
	workers := v.cfg.Parallel
	if v.cfg.Mouths != nil {
		workers = 1
	}
	if err := v.analyzeKeys(ctx, clip, frames, keys, SpoofKeys(len(keys), v.cfg.SpoofKeyFrames), workers, ready); err != nil {
		cancel()
		<-mouthDone
		audio.wg.Wait()
		return nil, err
	}
	checks := v.faceChecks(clip, frames)

	// The reference match needs the mean embedding; run it while the
	// speech check and the mouth tracking may still be going.
	ref, refErr := v.reference(ctx, frames, subject)
	<-mouthDone
	audio.wg.Wait()
	if audio.speechErr != nil {
		return nil, audio.speechErr
	}
	if audio.voiceErr != nil {
		return nil, audio.voiceErr
	}
	if refErr != nil {
		return nil, refErr
	}
	if mouthErr != nil {
		return nil, mouthErr
	}
	out := []CheckResult{audio.speech}
	if v.cfg.Voice != nil {
		out = append(out, audio.voice)
	}
	out = append(out, checks...)
	if v.cfg.Mouths != nil {
		out = append(out, v.visemes(clip, shapes, digits, audio.segs)...)
	}
	return append(out, ref), nil
}

// trackMouth follows the lips from the first key frame with a face (keys
// in order, each read once its ready channel is closed); nil shapes when
// no key frame has one (the face checks already fail).
func (v *Verifier) trackMouth(ctx context.Context, clip *media.Clip, frames []frameResult, keys []int, ready []chan struct{}) ([]viseme.Shape, error) {
	for k, i := range keys {
		select {
		case <-ready[k]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f := frames[i]; f.face != nil {
			s, err := v.cfg.Mouths.TrackMouth(ctx, clip.Frames, i, f.face.Landmarks)
			if err != nil {
				return nil, fmt.Errorf("liveness: mouth tracking: %w", err)
			}
			return s, nil
		}
	}
	return nil, nil
}

// visemes runs the checks of liveness/viseme on the tracked mouth: the
// mouth moving where there is no voice (CheckMouthVoice, score the share of
// movement outside the voice) and the lips closing inside the digit slots
// (CheckViseme, score the closed frames).
func (v *Verifier) visemes(clip *media.Clip, shapes []viseme.Shape, digits string, segs []Segment) []CheckResult {
	if len(shapes) == 0 {
		return []CheckResult{{Name: CheckMouthVoice, Reason: ReasonNoFace}, {Name: CheckViseme, Reason: ReasonNoFace}}
	}
	in := viseme.Input{Shapes: shapes, Audio: clip.Audio.Samples, Rate: clip.Audio.Rate, Digits: digits}
	for _, f := range clip.Frames {
		in.Times = append(in.Times, f.T)
	}
	for _, s := range segs {
		in.Slots = append(in.Slots, viseme.Slot{Start: s.Start, End: s.End})
	}
	r := viseme.Check(in, v.cfg.Viseme)
	failed := func(errs ...error) bool {
		for _, f := range r.Failed {
			for _, e := range errs {
				if errors.Is(f, e) {
					return true
				}
			}
		}
		return false
	}
	mv := CheckResult{Name: CheckMouthVoice, Pass: !failed(viseme.ErrSilentMouth), Score: r.Silent}
	vs := CheckResult{Name: CheckViseme, Pass: !failed(viseme.ErrLipsClosed, viseme.ErrWrongVisemes), Score: float64(r.Closed)}
	if !mv.Pass {
		mv.Reason = ReasonSilentMouth
	}
	if !vs.Pass {
		vs.Reason = ReasonVisemes
	}
	var stop Reason
	switch {
	case errors.Is(r.Reason, viseme.ErrTooFewFrames):
		stop = ReasonNoFace
	case errors.Is(r.Reason, viseme.ErrStillMouth):
		stop = ReasonStillMouth
	case errors.Is(r.Reason, viseme.ErrNoVoice):
		stop = ReasonNoSpeech
	}
	if stop != "" {
		mv = CheckResult{Name: CheckMouthVoice, Reason: stop}
		vs = CheckResult{Name: CheckViseme, Reason: stop}
	}
	return []CheckResult{mv, vs}
}

// The stages Config.OnStage is told of: the audio decoded (when the
// decoder hands it over before the frames), the frames decoded, each key
// frame analysed (StageKeyFrame and its number among the key frames), the
// synthetic-voice and speech checks, the mouth tracking, the decision.
const (
	StageAudio    = "audio_decoded"
	StageFrames   = "frames_decoded"
	StageKeyFrame = "key_frame_"
	StageVoice    = "synthetic_voice"
	StageSpeech   = "speech"
	StageMouth    = "mouth_tracking"
	StageDecision = "decision"
)

// stageStart is the context key of the time Verify began, set when
// Config.OnStage is.
type stageStart struct{}

// stage tells Config.OnStage that stage ended.
func (v *Verifier) stage(ctx context.Context, stage string) {
	if v.cfg.OnStage == nil {
		return
	}
	if start, ok := ctx.Value(stageStart{}).(time.Time); ok {
		v.cfg.OnStage(stage, v.cfg.Now().Sub(start))
	}
}

// audioChecks are the speech and synthetic-voice checks of one attempt,
// running on the clip's audio; their results are read after wg.Wait.
type audioChecks struct {
	wg                  sync.WaitGroup
	speech, voice       CheckResult
	segs                []Segment
	speechErr, voiceErr error
}

// startAudio starts the audio checks on one path beside the frame
// analyses: the synthetic-voice check when configured, then the speech
// check with the voice activity the voice check found, so that the voice
// activity detector runs once a decision (the audio path stays shorter
// than the frames' path).
func (v *Verifier) startAudio(ctx context.Context, audio media.Audio, digits string) *audioChecks {
	a := &audioChecks{}
	a.wg.Go(func() {
		var activity []float32
		if v.cfg.Voice != nil {
			a.voice, activity, a.voiceErr = v.voice(audio)
			v.stage(ctx, StageVoice)
		}
		a.speech, a.segs, a.speechErr = v.speech(ctx, audio, digits, activity)
		v.stage(ctx, StageSpeech)
	})
	return a
}

// voice runs the synthetic-voice check on the clip's audio; activity is
// the voice activity it found (nil if none).
func (v *Verifier) voice(audio media.Audio) (c CheckResult, activity []float32, err error) {
	pcm := make([]float32, len(audio.Samples))
	for i, s := range audio.Samples {
		pcm[i] = float32(s) / 32768
	}
	score, activity, err := v.cfg.Voice.Synthetic(pcm, audio.Rate)
	if errors.Is(err, ErrNoSpeech) {
		return CheckResult{Name: CheckVoice, Reason: ReasonNoSpeech}, activity, nil
	}
	if err != nil {
		return CheckResult{Name: CheckVoice}, nil, fmt.Errorf("liveness: synthetic voice: %w", err)
	}
	c = CheckResult{Name: CheckVoice, Pass: score < v.cfg.VoiceThreshold, Score: score}
	if !c.Pass {
		c.Reason = ReasonSynthetic
	}
	return c, activity, nil
}

// speech runs the speech check, with the voice activity the voice check
// found (nil: the checker finds its own).
func (v *Verifier) speech(ctx context.Context, audio media.Audio, digits string, activity []float32) (CheckResult, []Segment, error) {
	c := CheckResult{Name: CheckSpeech}
	r, err := v.cfg.Speech.CheckDigits(ctx, audio.Samples, digits, activity)
	switch {
	case errors.Is(err, ErrNoSpeech):
		c.Reason = ReasonNoSpeech
		return c, nil, nil
	case err != nil:
		return c, nil, fmt.Errorf("liveness: speech: %w", err)
	}
	c.Pass, c.Score = r.Match, r.Score
	if !r.Match {
		c.Reason = ReasonWrongDigits
	}
	return c, r.Segments, nil
}

// frameResult is the analysis of one sampled frame.
type frameResult struct {
	key   bool
	spoof bool        // a key frame with the anti-spoof score asked
	face  *FaceResult // nil: no face
}

// KeyFrames picks n evenly spaced frame indices of total, ascending, away
// from the very ends: the frames the face engine analyses.
func KeyFrames(total, n int) []int {
	n = min(n, total)
	keys := make([]int, 0, n)
	for i := 0; i < n; i++ {
		keys = append(keys, int((float64(i)+0.5)*float64(total)/float64(n)))
	}
	return keys
}

// analyzeKeyFrames runs the face engine on keyFrames evenly spaced frames
// only; the other frames are followed by reading the mouth region's pixels
// (lipsync).
func (v *Verifier) analyzeKeyFrames(ctx context.Context, clip *media.Clip, keyFrames int) ([]frameResult, error) {
	out := make([]frameResult, len(clip.Frames))
	if err := v.analyzeKeys(ctx, clip, out, KeyFrames(len(clip.Frames), keyFrames), nil, v.cfg.Parallel, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// SpoofKeys says which of n key frames get the anti-spoof score: m of
// them, evenly spaced (KeyFrames over the key frames' indices).
func SpoofKeys(n, m int) []bool {
	out := make([]bool, n)
	for _, k := range KeyFrames(n, m) {
		out[k] = true
	}
	return out
}

// analyzeKeys fills out (one per frame of clip) for the key frames keys
// (ascending), workers at a time, in order, with the anti-spoof score
// where spoof[k] is true (every key frame when spoof is nil). When ready
// is not nil, ready[k] is closed once key k's result is in out (also when
// it has no face or failed).
func (v *Verifier) analyzeKeys(ctx context.Context, clip *media.Clip, out []frameResult, keys []int, spoof []bool, workers int, ready []chan struct{}) error {
	for k, i := range keys {
		out[i].key = true
		out[i].spoof = spoof == nil || spoof[k]
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				i := keys[k]
				r, err := v.cfg.Faces.Analyze(ctx, clip.Frames[i], FaceOptions{Embedding: true, AntiSpoof: out[i].spoof})
				switch {
				case errors.Is(err, ErrNoFace):
				case err != nil:
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("liveness: face analysis: %w", err)
					}
					mu.Unlock()
				default:
					out[i].face = &r
				}
				v.stage(ctx, StageKeyFrame+strconv.Itoa(k))
				if ready != nil {
					close(ready[k])
				}
			}
		}()
	}
	for k := range keys {
		select {
		case jobs <- k:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func (v *Verifier) faceChecks(clip *media.Clip, frames []frameResult) []CheckResult {
	var real []float64
	var embs [][]float32
	keysTotal, spoofTotal := 0, 0
	var withFace []int
	for i, f := range frames {
		if !f.key {
			continue
		}
		keysTotal++
		if f.spoof {
			spoofTotal++
		}
		if f.face == nil {
			continue
		}
		withFace = append(withFace, i)
		if f.spoof {
			real = append(real, f.face.Real)
		}
		if f.face.Embedding != nil {
			embs = append(embs, f.face.Embedding)
		}
	}
	presence := float64(len(withFace)) / float64(max(1, keysTotal))
	out := []CheckResult{{Name: CheckFace, Pass: presence >= v.cfg.MinFacePresence, Score: presence}}
	if !out[0].Pass {
		out[0].Reason = ReasonNoFace
	}
	out = append(out, v.lipSync(clip, frames, withFace))

	// Anti-spoof and identity consistency need most of their key frames
	// to have a face.
	as := CheckResult{Name: CheckAntiSpoof, Reason: ReasonNoFace}
	if len(real) > 0 && 2*len(real) > spoofTotal {
		as.Score = median(real)
		as.Pass = as.Score >= v.cfg.SpoofThreshold
		as.Reason = ""
		if !as.Pass {
			as.Reason = ReasonSpoof
		}
	}
	out = append(out, as)

	same := CheckResult{Name: CheckSameFace, Reason: ReasonNoFace}
	if len(embs) > 0 && 2*len(embs) > keysTotal {
		worst := 1.0
		for i := range embs {
			for j := i + 1; j < len(embs); j++ {
				worst = min(worst, cosine(embs[i], embs[j]))
			}
		}
		same.Score = worst
		same.Pass = worst >= v.cfg.SameFaceThreshold
		same.Reason = ""
		if !same.Pass {
			same.Reason = ReasonFaceChanged
		}
	}
	return append(out, same)
}

// lipSync measures the mouth in every frame and correlates it with the audio.
func (v *Verifier) lipSync(clip *media.Clip, frames []frameResult, withFace []int) CheckResult {
	c := CheckResult{Name: CheckLipSync, Reason: ReasonNoFace}
	if len(withFace) == 0 {
		return c
	}
	lms := make([]*lipsync.Landmarks, len(withFace))
	for k, i := range withFace {
		lms[k] = &frames[i].face.Landmarks
	}
	ls := lipsync.Check(LipSyncInput(clip, withFace, lms), v.cfg.LipSync)
	c = CheckResult{Name: CheckLipSync, Pass: ls.Pass, Score: ls.Score}
	switch {
	case ls.Pass:
	case errors.Is(ls.Reason, lipsync.ErrStillMouth):
		c.Reason = ReasonStillMouth
	case errors.Is(ls.Reason, lipsync.ErrTooFewFrames):
		c.Reason = ReasonNoFace
	default:
		c.Reason = ReasonLipSync
	}
	if math.IsNaN(c.Score) {
		c.Score = 0
	}
	return c
}

// LipSyncInput places the mouth region in every frame of clip at the
// nearest of the key frames keys (ascending frame indices) whose landmarks
// are lms, measures it, and pairs it with the clip's audio.
func LipSyncInput(clip *media.Clip, keys []int, lms []*lipsync.Landmarks) lipsync.Input {
	in := lipsync.Input{Audio: clip.Audio.Samples, Rate: clip.Audio.Rate}
	if len(keys) == 0 {
		return in
	}
	in.Contrast, in.Motion = lipsync.FrameSeries(clip.Frames, MouthRegions(len(clip.Frames), keys, lms))
	for _, f := range clip.Frames {
		in.Times = append(in.Times, f.T)
	}
	return in
}

// MouthRegions is the mouth region of each of n frames: that of the
// nearest of the key frames keys (ascending, not empty) whose landmarks
// are lms, held still between key frames: a region that moved by a pixel
// changes the measures more than a small head movement does.
func MouthRegions(n int, keys []int, lms []*lipsync.Landmarks) []lipsync.Rect {
	rois := make([]lipsync.Rect, n)
	for i := range rois {
		k := sort.SearchInts(keys, i)
		if k == len(keys) || (k > 0 && i-keys[k-1] <= keys[k]-i) {
			k--
		}
		rois[i] = lipsync.MouthROI(lms[k])
	}
	return rois
}

func (v *Verifier) reference(ctx context.Context, frames []frameResult, subject string) (CheckResult, error) {
	c := CheckResult{Name: CheckReference, Reason: ReasonNoFace}
	var embs [][]float32
	for _, f := range frames {
		if f.key && f.face != nil && f.face.Embedding != nil {
			embs = append(embs, f.face.Embedding)
		}
	}
	if len(embs) == 0 {
		return c, nil
	}
	r, err := v.cfg.References.MatchReference(ctx, subject, meanEmbedding(embs))
	if err != nil {
		return c, fmt.Errorf("liveness: reference: %w", err)
	}
	c.Pass, c.Score, c.Reason = r.Match, r.Score, ""
	if !r.Match {
		c.Reason = ReasonFaceMismatch
	}
	return c, nil
}

func median(x []float64) float64 {
	c := append([]float64(nil), x...)
	sort.Float64s(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// meanEmbedding is the L2-normalised mean of embeddings.
func meanEmbedding(embs [][]float32) []float32 {
	m := make([]float32, len(embs[0]))
	for _, e := range embs {
		for i := range m {
			if i < len(e) {
				m[i] += e[i]
			}
		}
	}
	var n float64
	for _, v := range m {
		n += float64(v) * float64(v)
	}
	if n > 0 {
		s := float32(1 / math.Sqrt(n))
		for i := range m {
			m[i] *= s
		}
	}
	return m
}

// cosine of two vectors (0 if either is zero).
func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range min(len(a), len(b)) {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return d / math.Sqrt(na*nb)
}
