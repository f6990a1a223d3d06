package facelogin

import (
	"context"
	"errors"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/media"
)

// MeshTracker adapts the face mesh (liveness/facemesh) to
// liveness.ActionTracker: from each anchor's landmarks it follows the face
// frame by frame, each crop taken from the previous frame's mesh, until the
// next anchor restarts it (so a lost track costs at most one anchor span).
type MeshTracker struct {
	Mesh *facemesh.Runner
	// MinPresence is the mesh's face-presence probability below which a
	// frame counts as without face; default 0.5.
	MinPresence float64
}

var _ liveness.ActionTracker = MeshTracker{}

// Track implements liveness.ActionTracker.
func (t MeshTracker) Track(ctx context.Context, frames []media.Frame, anchors []liveness.Anchor) ([]action.Signal, error) {
	out := make([]action.Signal, len(frames))
	for i, f := range frames {
		out[i] = action.Signal{T: f.T}
	}
	if len(anchors) == 0 {
		return out, nil
	}
	minP := t.MinPresence
	if minP <= 0 {
		minP = 0.5
	}
	pts := make([]action.Point, facemesh.NumPoints)
	follow := func(box facemesh.Box, from, to, step int) error {
		for i := from; i != to; i += step {
			if err := ctx.Err(); err != nil {
				return err
			}
			m, err := t.Mesh.Run(frames[i], box)
			if errors.Is(err, facemesh.ErrBox) {
				return nil // the face left the picture: the next anchor restarts
			}
			if err != nil {
				return err
			}
			if m.Presence < minP {
				return nil
			}
			for k, p := range m.Points {
				pts[k] = action.Point{X: float64(p.X), Y: float64(p.Y)}
			}
			out[i] = action.Measure(frames[i].T, pts)
			box = m.Bounds()
		}
		return nil
	}
	for k, a := range anchors {
		if a.Frame < 0 || a.Frame >= len(frames) {
			continue
		}
		box := facemesh.BoxFromLandmarks(a.Landmarks)
		end := len(frames)
		if k+1 < len(anchors) {
			end = min(end, anchors[k+1].Frame)
		}
		if err := follow(box, a.Frame, end, 1); err != nil {
			return nil, err
		}
		if k == 0 && a.Frame > 0 {
			if err := follow(box, a.Frame-1, -1, -1); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
