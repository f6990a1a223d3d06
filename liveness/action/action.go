// Package action checks the action challenge of the liveness decision: a
// short random sequence of facial actions (blink, turn left, turn right,
// nod, open mouth) that the citizen performs on camera, in order. It turns
// the face mesh of every frame into four signals (eye opening, mouth
// opening, head yaw, head pitch), finds each completed action in them (the
// signal leaves its resting value beyond a threshold and comes back), and
// decides whether the challenge's actions happened in the given order, with
// a stable reason when they did not.
//
// Every signal is a ratio of areas or a barycentric coordinate of mesh
// points, so none of them changes under an affine motion of the picture:
// a still photo moved, rotated, scaled or sheared in front of the camera
// produces flat signals and completes no action (DESIGN: the attack types of
// issue 19). A real head turn or nod moves the nose tip against the face
// outline because the face is not flat, which a photo cannot do.
//
// The package is pure Go: the mesh comes from liveness/facemesh through an
// adapter (authn/facelogin), so the decision links no model runtime here.
package action

import (
	"errors"
	"fmt"
	"strings"
)

// Action is one facial action a challenge can ask for.
type Action string

// The actions. Never renamed: they are stored in challenges and written in
// evaluation manifests.
const (
	Blink     Action = "blink"
	TurnLeft  Action = "turn_left"  // the citizen's own left (image right on a camera that does not mirror)
	TurnRight Action = "turn_right" // the citizen's own right
	Nod       Action = "nod"        // head down and back up
	OpenMouth Action = "open_mouth"
)

// All lists the actions in a fixed order (their index is their code in a
// stored challenge).
var All = []Action{Blink, TurnLeft, TurnRight, Nod, OpenMouth}

// MinLength and MaxLength bound a challenge's number of actions.
const (
	MinLength = 2
	MaxLength = 3
)

// ErrSequence reports a malformed action sequence.
var ErrSequence = errors.New("action: invalid sequence")

// Valid reports whether a is one of All.
func (a Action) Valid() bool {
	for _, x := range All {
		if a == x {
			return true
		}
	}
	return false
}

// Index is a's position in All, -1 if unknown.
func (a Action) Index() int {
	for i, x := range All {
		if a == x {
			return i
		}
	}
	return -1
}

// Sequence is the ordered actions of one challenge.
type Sequence []Action

// String is the sequence joined by "+" (the manifest and log form).
func (s Sequence) String() string {
	parts := make([]string, len(s))
	for i, a := range s {
		parts[i] = string(a)
	}
	return strings.Join(parts, "+")
}

// Validate checks the length, that every action is known, and that no
// action repeats (a repeated action would let one event count twice and
// turns left then right into a sway anyone can do without reading).
func (s Sequence) Validate() error {
	if len(s) < MinLength || len(s) > MaxLength {
		return fmt.Errorf("%w: %d actions, want %d to %d", ErrSequence, len(s), MinLength, MaxLength)
	}
	seen := map[Action]bool{}
	for _, a := range s {
		if !a.Valid() {
			return fmt.Errorf("%w: unknown action %q", ErrSequence, a)
		}
		if seen[a] {
			return fmt.Errorf("%w: %q repeated", ErrSequence, a)
		}
		seen[a] = true
	}
	return nil
}

// ParseSequence reads the "+"-joined form (String) and validates it.
func ParseSequence(s string) (Sequence, error) {
	if len(s) > 64 {
		return nil, fmt.Errorf("%w: too long", ErrSequence)
	}
	var seq Sequence
	for _, p := range strings.Split(s, "+") {
		seq = append(seq, Action(strings.TrimSpace(p)))
	}
	return seq, seq.Validate()
}
