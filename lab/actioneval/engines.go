// Package actioneval is the lab's evaluation of the action challenge
// (liveness/action, issue 19): it measures the per-frame action signals of
// real clips (`trustid-lab action-signals`), cuts genuine and attack clips
// from the shared action clips into a folder with a manifest
// (`trustid-lab make-action-set`), and runs a manifest's clips through the
// real liveness decision, reporting BPCER and APCER per attack type with
// the counts, validated leaving people out (`trustid-lab eval-actions`).
// The service never imports it.
package actioneval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/media"
)

// engines are the models the lab runs a clip through.
type engines struct {
	face  *face.Engine
	mesh  *facemesh.Runner
	video *media.Decoder
}

// FPS is the sampling rate of action clips: a blink lasts 100-300 ms; at
// 15 frames a second d18's blink at 3.1 s showed no closed frame.
const FPS = 25

func openEngines(models string, maxDur time.Duration) (*engines, error) {
	if models == "" {
		return nil, errors.New("no model directory (-models or TRUSTID_MODELS)")
	}
	fe, err := face.New(face.Config{ModelDir: models, Workers: 2})
	if err != nil {
		return nil, err
	}
	mr, err := facemesh.New(facemesh.Config{ModelDir: models})
	if err != nil {
		fe.Close()
		return nil, err
	}
	dec := media.NewDecoder()
	dec.FPS = FPS
	dec.Timeout = 2 * time.Minute // a shared, loaded machine
	dec.Limits = media.Limits{VideoOnly: true, MaxDuration: maxDur, MinDuration: time.Second,
		MaxFrames: int(maxDur.Seconds()*FPS) + 16, MaxBytes: 64 << 20}
	return &engines{face: fe, mesh: mr, video: dec}, nil
}

func (e *engines) Close() {
	e.face.Close()
	e.mesh.Close()
}

// anchors runs the face engine on every step-th frame.
func (e *engines) anchors(ctx context.Context, frames []media.Frame, step int) ([]liveness.Anchor, error) {
	fa := facelogin.Faces{Engine: e.face}
	var out []liveness.Anchor
	for i := 0; i < len(frames); i += step {
		r, err := fa.Analyze(ctx, frames[i], liveness.FaceOptions{})
		if errors.Is(err, liveness.ErrNoFace) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		out = append(out, liveness.Anchor{Frame: i, Landmarks: r.Landmarks})
	}
	return out, nil
}

// signals decodes path and measures every frame.
func (e *engines) signals(ctx context.Context, path string) ([]action.Signal, error) {
	clip, err := e.video.DecodeFile(ctx, path)
	if err != nil {
		return nil, err
	}
	anchors, err := e.anchors(ctx, clip.Frames, FPS)
	if err != nil {
		return nil, err
	}
	return facelogin.MeshTracker{Mesh: e.mesh}.Track(ctx, clip.Frames, anchors)
}
