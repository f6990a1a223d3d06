package facelogin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/viseme"
)

// DefaultStride is Mouths' default Stride.
const DefaultStride = 3

// Mouths adapts the face mesh (liveness/facemesh) to liveness.MouthTracker.
// Starting from the face detector's landmarks in the start frame, the mesh
// runs both ways from it (the two directions concurrently) on every Stride-th
// frame and on the first and last, each crop placed from the previous
// measured frame's mesh; then on every frame of the gaps viseme.Refine names
// (where the lips may shut in between, or the face was lost), and the other
// frames are interpolated (viseme.Interpolate).
type Mouths struct {
	Runner *facemesh.Runner
	// MinPresence is the least face-presence probability for a frame's
	// mouth to count; default 0.5.
	MinPresence float64
	// Stride is the step between the frames measured first; default
	// DefaultStride, 1 measures every frame.
	Stride int
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
	stride := m.Stride
	if stride <= 0 {
		stride = DefaultStride
	}
	n := len(frames)
	out := make([]viseme.Shape, n)
	measured := make([]bool, n)
	// next[i] is the box to track the frame after measured frame i from:
	// its mesh's bounds, or the seed's when the face was lost there.
	next := make([]facemesh.Box, n)
	seed := facemesh.BoxFromLandmarks(lm)
	// The seed frame is run twice: once from the detector's box, once
	// from its own mesh, so both directions start from a converged crop.
	first, err := m.Runner.Run(frames[start], seed)
	if err != nil {
		return nil, m.err(err)
	}
	seed = first.Bounds()
	measure := func(i int, box facemesh.Box) (facemesh.Box, error) {
		if err := ctx.Err(); err != nil {
			return box, err
		}
		mesh, err := m.Runner.Run(frames[i], box)
		measured[i], next[i] = true, seed
		switch {
		case errors.Is(err, facemesh.ErrBox):
			return seed, nil // lost: start again from the seed's place
		case err != nil:
			return box, m.err(err)
		case mesh.Presence < minP:
			return seed, nil
		}
		l := mesh.Lips()
		out[i] = viseme.Shape{Opening: l.Opening, Width: l.Width, OK: l.Width > 0}
		next[i] = mesh.Bounds()
		return next[i], nil
	}
	track := func(idx []int) error {
		box := seed
		for _, i := range idx {
			var err error
			if box, err = measure(i, box); err != nil {
				return err
			}
		}
		return nil
	}
	var back []int
	if start > 0 {
		back = strided(start-stride, -stride, n)
	}
	if err := both(
		func() error { return track(back) },
		func() error { return track(strided(start, stride, n)) },
	); err != nil {
		return nil, err
	}
	// Measure the gaps Refine names, each forward from the measured frame
	// before it, the gaps shared between two workers.
	var gaps [][2]int
	for _, k := range viseme.Refine(out, measured) {
		if len(gaps) > 0 && gaps[len(gaps)-1][1] == k {
			gaps[len(gaps)-1][1]++
		} else {
			gaps = append(gaps, [2]int{k, k + 1})
		}
	}
	var taken atomic.Int64
	fill := func() error {
		for g := int(taken.Add(1)) - 1; g < len(gaps); g = int(taken.Add(1)) - 1 {
			box := seed
			if a := gaps[g][0] - 1; a >= 0 {
				box = next[a]
			}
			for i := gaps[g][0]; i < gaps[g][1]; i++ {
				var err error
				if box, err = measure(i, box); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := both(fill, fill); err != nil {
		return nil, err
	}
	viseme.Interpolate(out, measured)
	return out, nil
}

// strided lists from, from+step, ... while inside 0..n-1, then the end the
// step goes toward (0 or n-1) when the steps missed it.
func strided(from, step, n int) []int {
	var out []int
	for i := from; i >= 0 && i < n; i += step {
		out = append(out, i)
	}
	end := n - 1
	if step < 0 {
		end = 0
	}
	if len(out) == 0 || out[len(out)-1] != end {
		out = append(out, end)
	}
	return out
}

// both runs a and b concurrently and returns the first error (a's first).
func both(a, b func() error) error {
	var wg sync.WaitGroup
	var errA error
	wg.Go(func() { errA = a() })
	errB := b()
	wg.Wait()
	if errA != nil {
		return errA
	}
	return errB
}

func (m Mouths) err(err error) error {
	if errors.Is(err, facemesh.ErrFrame) {
		return err
	}
	return fmt.Errorf("facelogin: face mesh: %w", err)
}
