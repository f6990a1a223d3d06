package facelogin

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// Mouths adapts the face mesh (liveness/facemesh) to liveness.MouthTracker:
// the mesh runs on every frame, each crop placed from the previous frame's
// mesh, starting from the face detector's landmarks in the start frame and
// going both ways from it (the two directions run concurrently).
type Mouths struct {
	Runner *facemesh.Runner
	// MinPresence is the least face-presence probability for a frame's
	// mouth to count; default 0.5.
	MinPresence float64
}

var _ liveness.MouthTracker = Mouths{}

// TrackMouth implements liveness.MouthTracker.
func (m Mouths) TrackMouth(ctx context.Context, frames []media.Frame, start int, lm lipsync.Landmarks) ([]viseme.Shape, error) {
	if start < 0 || start >= len(frames) {
		return nil, fmt.Errorf("facelogin: mouth tracking from frame %d of %d", start, len(frames))
	}
	minP := m.MinPresence
	if minP <= 0 {
		minP = 0.5
	}
	out := make([]viseme.Shape, len(frames))
	seed := facemesh.BoxFromLandmarks(lm)
	// The seed frame is run twice: once from the detector's box, once
	// from its own mesh, so both directions start from a converged crop.
	first, err := m.Runner.Run(frames[start], seed)
	if err != nil {
		return nil, m.err(err)
	}
	seed = first.Bounds()
	track := func(from, to, step int) error {
		box := seed
		for i := from; i != to; i += step {
			if err := ctx.Err(); err != nil {
				return err
			}
			mesh, err := m.Runner.Run(frames[i], box)
			if errors.Is(err, facemesh.ErrBox) {
				box = seed // lost: start again from the seed's place
				continue
			}
			if err != nil {
				return m.err(err)
			}
			if mesh.Presence < minP {
				box = seed
				continue
			}
			l := mesh.Lips()
			out[i] = viseme.Shape{Opening: l.Opening, Width: l.Width, OK: l.Width > 0}
			box = mesh.Bounds()
		}
		return nil
	}
	back := make(chan error, 1)
	go func() { back <- track(start-1, -1, -1) }()
	ferr := track(start, len(frames), 1)
	if berr := <-back; ferr == nil {
		ferr = berr
	}
	if ferr != nil {
		return nil, ferr
	}
	return out, nil
}

func (m Mouths) err(err error) error {
	if errors.Is(err, facemesh.ErrFrame) {
		return err
	}
	return fmt.Errorf("facelogin: face mesh: %w", err)
}
