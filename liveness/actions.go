package liveness

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// Anchor is a frame where the face engine found the face: where an
// ActionTracker starts (or restarts) following it.
type Anchor struct {
	Frame     int
	Landmarks lipsync.Landmarks
}

// ActionTracker follows the face through every frame of a clip, starting
// from the anchors (ascending frame indices, at least one), and measures it
// for the action check: one action.Signal per frame, Face false where the
// face was lost. Safe for concurrent use.
type ActionTracker interface {
	Track(ctx context.Context, frames []media.Frame, anchors []Anchor) ([]action.Signal, error)
}

// Reason codes of the action challenge (see Reason).
const (
	ReasonActionMissing Reason = "action_missing"     // an asked action was not completed
	ReasonActionOrder   Reason = "action_wrong_order" // every action was done, not in the asked order
	ReasonFaceLost      Reason = "face_lost"          // the face could not be followed through the clip
)

// CheckActions is the action challenge's check name in Result.Checks.
const CheckActions = "actions"

// actionIntake takes in action evidence: video only, at the action
// sampling rate; the limits are the digits' otherwise. Without an
// ActionTracker an action challenge is a fault of the deployment.
func (v *Verifier) actionIntake(ctx context.Context, req Request) (*media.Clip, error) {
	if v.cfg.Actions == nil {
		return nil, errors.New("liveness: action challenge but no ActionTracker configured")
	}
	switch {
	case req.Clip != nil:
		return req.Clip, nil
	case req.Video != nil:
		return v.cfg.ActionVideo.DecodeVideo(ctx, req.Video)
	case len(req.Frames) > 0:
		return media.DecodeFrames(req.Frames, req.WAV, v.cfg.ActionFPS, v.cfg.ActionLimits)
	}
	return nil, media.ErrNoVideo
}

// evaluateActions runs the face engine on the key frames, follows the face
// from them through every frame, and checks the actions: the digits'
// checks with the action check in place of speech and lip sync.
func (v *Verifier) evaluateActions(ctx context.Context, clip *media.Clip, seq action.Sequence, subject string) ([]CheckResult, error) {
	frames, err := v.analyzeKeyFrames(ctx, clip, v.cfg.ActionKeyFrames)
	if err != nil {
		return nil, err
	}
	var out []CheckResult
	for _, c := range v.faceChecks(clip, frames) {
		if c.Name != CheckLipSync { // no voice to be in sync with
			out = append(out, c)
		}
	}
	var anchors []Anchor
	for i, f := range frames {
		if f.key && f.face != nil {
			anchors = append(anchors, Anchor{Frame: i, Landmarks: f.face.Landmarks})
		}
	}
	ac := CheckResult{Name: CheckActions, Reason: ReasonNoFace}
	if len(anchors) > 0 {
		sig, err := v.cfg.Actions.Track(ctx, clip.Frames, anchors)
		if err != nil {
			return nil, fmt.Errorf("liveness: action tracking: %w", err)
		}
		ac = ActionCheck(seq, sig, v.cfg.ActionCheck)
	}
	ref, err := v.reference(ctx, frames, subject)
	if err != nil {
		return nil, err
	}
	return append(append(out, ac), ref), nil
}

// ActionCheck is the action check's CheckResult for the signals of a clip:
// Score is the fraction of the asked actions completed in order.
func ActionCheck(seq action.Sequence, sig []action.Signal, cfg action.Config) CheckResult {
	r := action.Check(seq, sig, cfg)
	c := CheckResult{Name: CheckActions, Pass: r.Pass, Score: float64(r.Done) / float64(max(1, len(seq)))}
	switch {
	case r.Pass:
	case errors.Is(r.Reason, action.ErrFaceLost):
		c.Reason = ReasonFaceLost
	case errors.Is(r.Reason, action.ErrOrder):
		c.Reason = ReasonActionOrder
	default:
		c.Reason = ReasonActionMissing
	}
	return c
}
