package liveness

import (
	"context"

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
