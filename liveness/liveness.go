// Package liveness makes the liveness decision of a login: it consumes the
// challenge (spoken digits; facial actions in actions.go), takes in the
// clip, and runs the independent checks (the right digits spoken, lips
// moving with the voice and not shutting or moving where no digit is
// voiced, optionally a voice that is not synthetic, a live face that
// stays the same person and matches the claimed identity, a plausible
// capture) concurrently, returning one Result with a stable reason code per
// failed check. Failed attempts feed the per-subject and per-address lockout.
//
// The heavy engines are behind small interfaces declared here (FaceAnalyzer,
// SpeechChecker, ReferenceMatcher, MouthTracker, VoiceCheck);
// authn/facelogin adapts authn/face, liveness/speech and liveness/facemesh to
// them, so this package links neither OpenCV nor ONNX Runtime.
package liveness

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// ErrNoFace is returned (possibly wrapped) by a FaceAnalyzer for a frame
// without a face.
var ErrNoFace = errors.New("liveness: no face in frame")

// ErrNoSpeech is returned (possibly wrapped) by a SpeechChecker when the
// audio holds too little voice to be scored.
var ErrNoSpeech = errors.New("liveness: no speech")

// FaceOptions choose the optional, costlier outputs of one analysis.
type FaceOptions struct {
	Embedding bool
	AntiSpoof bool
}

// FaceResult is the face found in one frame.
type FaceResult struct {
	// Faces is the number of faces detected (the chosen one included).
	Faces     int
	Landmarks lipsync.Landmarks
	// Real is the passive anti-spoof probability that the face is a live
	// one (0..1), set when FaceOptions.AntiSpoof was asked.
	Real float64
	// Embedding is the L2-normalised identity embedding, set when asked.
	Embedding []float32
}

// FaceAnalyzer finds the face in a frame: landmarks always, the anti-spoof
// score and the embedding on request. Safe for concurrent use. A frame
// without a face is an error matching ErrNoFace.
type FaceAnalyzer interface {
	Analyze(ctx context.Context, f media.Frame, opts FaceOptions) (FaceResult, error)
}

// SpeechResult is the speech check's verdict on one recording.
type SpeechResult struct {
	Match bool
	// Score is the recogniser's own margin (trusted callers and logs only).
	Score float64
	// Segments are where the recogniser's best alignment of the expected
	// digits placed each digit (one per digit, in order; may be empty):
	// the viseme check reads the lips in them.
	Segments []Segment
}

// Segment is a span of the recording from its start.
type Segment struct{ Start, End time.Duration }

// MouthTracker follows the lips through every frame of a clip (the face
// mesh, tracked from frame to frame; authn/facelogin.Mouths measures every
// third frame and where the lips close, and interpolates the rest),
// starting from the face the FaceAnalyzer found in frame start. It returns
// one shape per frame (OK false where the face was lost). Safe for
// concurrent use.
type MouthTracker interface {
	TrackMouth(ctx context.Context, frames []media.Frame, start int, lm lipsync.Landmarks) ([]viseme.Shape, error)
}

// VoiceCheck tells synthetic or vocoded speech from a live voice: score is
// the probability (0..1) that pcm (mono, -1..1, at rate) is synthetic.
// activity is the voice activity detector's output it computed on the way
// (one probability per 512 samples of the recording at 16 kHz; nil when it
// has none, also with an error): the verifier hands it to the speech check,
// which then does not run the detector again. Safe for concurrent use.
type VoiceCheck interface {
	Synthetic(pcm []float32, rate int) (score float64, activity []float32, err error)
}

// SpeechChecker decides whether 16 kHz mono audio says the expected
// digits. Safe for concurrent use. Audio with no voice is an error matching
// ErrNoSpeech; a different utterance is a SpeechResult with Match false.
type SpeechChecker interface {
	// CheckDigits checks pcm against the expected digits. activity, when
	// not nil, is the voice activity of pcm that the synthetic-voice check
	// found (VoiceCheck), for the checker's "is there speech at all" gate
	// instead of its own detector run; nil: the checker runs its own.
	CheckDigits(ctx context.Context, pcm []int16, expected string, activity []float32) (SpeechResult, error)
}

// MatchResult is the comparison of the live face with the claimed
// identity's reference.
type MatchResult struct {
	Match bool
	Score float64
}

// ReferenceMatcher compares a live embedding with the reference held for
// subject (the enrolled or register photo). The matcher owns the threshold.
type ReferenceMatcher interface {
	MatchReference(ctx context.Context, subject string, embedding []float32) (MatchResult, error)
}

// Challenges is the part of *challenge.Manager the Verifier uses.
type Challenges interface {
	Consume(ctx context.Context, id, sessionID, subject string) (challenge.Challenge, error)
	RecordFailure(ctx context.Context, subject string, c challenge.Client) (bool, error)
	RecordSuccess(ctx context.Context, subject string, c challenge.Client) error
	Locked(ctx context.Context, subject string, c challenge.Client) error
}

var _ Challenges = (*challenge.Manager)(nil)

// VideoDecoder demuxes an uploaded video; *media.Decoder implements it.
type VideoDecoder interface {
	DecodeVideo(ctx context.Context, r io.Reader) (*media.Clip, error)
}

var _ VideoDecoder = (*media.Decoder)(nil)

// AudioFirstDecoder is a VideoDecoder that can hand a clip's audio over
// before decoding its frames (liveness/media/libav's Decoder): the
// Verifier then runs the speech and synthetic-voice checks while the
// frames decode, which takes the decode off the decision's critical path.
type AudioFirstDecoder interface {
	VideoDecoder
	// DecodeAudioFirst is DecodeVideo calling audio, at most once and on
	// the calling goroutine, with the clip's audio as soon as it is
	// decoded; the Clip's Audio is the same and the decoder does not
	// change it after.
	DecodeAudioFirst(ctx context.Context, r io.Reader, audio func(media.Audio)) (*media.Clip, error)
}

// Reason is a stable, machine-readable code for a failed check. Codes are
// for logs, metrics, the audit log and trusted callers; clients see only
// Result.Public.
type Reason string

// Reason codes. Never renamed; new ones may be added.
const (
	ReasonChallenge    Reason = "challenge_refused"   // replayed, expired, other session or subject, unknown
	ReasonLocked       Reason = "locked_out"          // too many failures recently
	ReasonUnreadable   Reason = "evidence_unreadable" // container, codec, JPEG or WAV not readable
	ReasonTooLarge     Reason = "evidence_too_large"
	ReasonNoAudio      Reason = "no_audio"
	ReasonNoVideo      Reason = "no_video"
	ReasonSilent       Reason = "audio_silent"
	ReasonTooShort     Reason = "clip_too_short"
	ReasonTooLong      Reason = "clip_too_long"
	ReasonBadFrames    Reason = "frames_invalid" // dimensions, count or timestamps
	ReasonImplausible  Reason = "capture_implausible"
	ReasonNoSpeech     Reason = "no_speech"
	ReasonWrongDigits  Reason = "speech_mismatch"
	ReasonLipSync      Reason = "lips_not_in_sync"
	ReasonVisemes      Reason = "mouth_not_saying_digits"   // the lips shut (b, p, m) while a digit is voiced, or shape other sounds
	ReasonSilentMouth  Reason = "mouth_moves_without_voice" // much of the lips' movement falls where there is no voice
	ReasonSynthetic    Reason = "voice_synthetic"
	ReasonStillMouth   Reason = "mouth_still"
	ReasonNoFace       Reason = "no_face"
	ReasonSpoof        Reason = "spoof_suspected"
	ReasonFaceChanged  Reason = "face_inconsistent"
	ReasonFaceMismatch Reason = "face_mismatch"
	ReasonInternal     Reason = "internal_error"
)

// Check names, used in Result.Checks.
const (
	CheckChallenge  = "challenge"
	CheckIntake     = "intake"
	CheckCapture    = "capture"
	CheckSpeech     = "speech"
	CheckLipSync    = "lipsync"
	CheckViseme     = "viseme"
	CheckMouthVoice = "mouth_voice"
	CheckVoice      = "synthetic_voice"
	CheckFace       = "face_presence"
	CheckAntiSpoof  = "anti_spoof"
	CheckSameFace   = "same_face"
	CheckReference  = "reference_match"
)

// CheckResult is one check's outcome. Score is for trusted callers only.
type CheckResult struct {
	Name   string  `json:"name"`
	Pass   bool    `json:"pass"`
	Reason Reason  `json:"reason,omitempty"`
	Score  float64 `json:"score"`
}

// Result is the decision on one attempt.
type Result struct {
	Pass bool
	// Kind is the kind of the consumed challenge (empty when it was refused).
	Kind challenge.Kind
	// Reasons lists the codes of the failed checks, in check order.
	Reasons []Reason
	// Checks holds every check that ran with its score: trusted callers
	// and logs only.
	Checks []CheckResult
	// RetryAfter is set when the subject or address is locked out.
	RetryAfter time.Duration
	// Elapsed is the wall time of the decision.
	Elapsed time.Duration
}

// Hint tells a client what to do after a failure without saying which
// check failed.
type Hint string

const (
	HintNone      Hint = ""          // passed
	HintRetry     Hint = "retry"     // ask for a new challenge and try again
	HintRecapture Hint = "recapture" // the recording itself was unusable (length, sound, format)
	HintWait      Hint = "wait"      // locked out; see RetryAfter
)

// PublicResult is what a client may see.
type PublicResult struct {
	Pass       bool          `json:"pass"`
	Hint       Hint          `json:"hint,omitempty"`
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// Public is the client-safe view of r: pass or fail and a retry hint.
func (r Result) Public() PublicResult {
	if r.Pass {
		return PublicResult{Pass: true}
	}
	p := PublicResult{Hint: HintRetry}
	for _, reason := range r.Reasons {
		switch reason {
		case ReasonLocked:
			return PublicResult{Hint: HintWait, RetryAfter: r.RetryAfter}
		case ReasonUnreadable, ReasonTooLarge, ReasonNoAudio, ReasonNoVideo, ReasonSilent, ReasonTooShort, ReasonTooLong, ReasonBadFrames:
			p.Hint = HintRecapture
		}
	}
	return p
}

// Failed reports whether the check name failed.
func (r Result) Failed(name string) bool {
	for _, c := range r.Checks {
		if c.Name == name {
			return !c.Pass
		}
	}
	return false
}

// Has reports whether reason is among r.Reasons.
func (r Result) Has(reason Reason) bool {
	for _, x := range r.Reasons {
		if x == reason {
			return true
		}
	}
	return false
}

// judged reports whether the attempt reached the checks of the evidence
// itself (the challenge held, the evidence was read, nothing internal
// failed): only such an attempt counts toward a lockout.
func (r Result) judged() bool {
	if r.Has(ReasonLocked) || r.Has(ReasonInternal) {
		return false
	}
	for _, c := range r.Checks {
		if c.Name == CheckIntake {
			return c.Pass
		}
	}
	return false
}

// Malformed reports whether the attempt was refused for its evidence or
// challenge rather than judged: a client error (HTTP 400) to its caller,
// not a failed identity check.
func (r Result) Malformed() bool {
	if r.Pass || r.Has(ReasonLocked) || r.Has(ReasonInternal) {
		return false
	}
	return !r.judged()
}
