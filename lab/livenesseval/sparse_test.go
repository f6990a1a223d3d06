package livenesseval

import (
	"context"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/viseme"
)

// TestSparseMouthGRID: the mouth tracked as the decision tracks it (the
// face mesh on every third frame and the gaps viseme.Refine names,
// facelogin.DefaultStride) against every frame measured, on the ten GRID
// clips, each with its own audio and with each of the others' (100
// pairings; one slot over the whole clip, so every voiced frame counts for
// the closed-lips check). Recorded in liveness/RESULTS.md ("Sparse mouth
// tracking"): the silent-mouth share crossed MaxSilent in 2 pairings (one
// each way) and the closed-frame count crossed MaxClosed in 8 (5 down, 3
// up; 3 or 4 frames against 1 or 2); more fails. Seeded from the first of
// three key frames instead (a later frame) the silent share crossed in 4,
// each within 0.03 of it, while every frame measured gives the same checks
// from either seed ("Anti-spoof on two key frames").
func TestSparseMouthGRID(t *testing.T) {
	models, data := lvNeed(t)
	faces := lvFaces(t, models)
	grid := lvLoadGrid(t, faces, data)
	r, err := facemesh.New(facemesh.Config{ModelDir: models})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	track := func(m facelogin.Mouths) ([][]viseme.Shape, time.Duration) {
		var out [][]viseme.Shape
		c0 := lvCPU()
		for _, g := range grid {
			sh, err := m.TrackMouth(context.Background(), g.clip.Frames, g.keys[0], *g.lms[0])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sh)
		}
		return out, (lvCPU() - c0) / time.Duration(len(grid))
	}
	full, cpuFull := track(facelogin.Mouths{Runner: r, Stride: 1})
	sparse, cpuSparse := track(facelogin.Mouths{Runner: r})
	cfg := viseme.DefaultConfig
	var silentFlips, closedFlips int
	var dSilent float64
	for v, g := range grid {
		for _, a := range grid {
			check := func(sh []viseme.Shape) viseme.Result {
				in := viseme.Input{Shapes: sh, Audio: a.clip.Audio.Samples, Rate: a.clip.Audio.Rate,
					Digits: "0", Slots: []viseme.Slot{{Start: 0, End: time.Hour}}}
				for _, f := range g.clip.Frames {
					in.Times = append(in.Times, f.T)
				}
				return viseme.Check(in, viseme.Config{})
			}
			f, s := check(full[v]), check(sparse[v])
			if (f.Silent > cfg.MaxSilent) != (s.Silent > cfg.MaxSilent) {
				silentFlips++
				t.Logf("%s video, %s audio: silent share %.3f every frame, %.3f sparse", g.name, a.name, f.Silent, s.Silent)
			}
			if (f.Closed > cfg.MaxClosed) != (s.Closed > cfg.MaxClosed) {
				closedFlips++
				t.Logf("%s video, %s audio: %d closed frames every frame, %d sparse", g.name, a.name, f.Closed, s.Closed)
			}
			dSilent += s.Silent - f.Silent
			if a.name == g.name && f.Pass && !s.Pass {
				t.Errorf("%s with its own voice passes every frame measured, not sparse: %+v", g.name, s)
			}
		}
	}
	n := len(grid) * len(grid)
	t.Logf("TrackMouth CPU per clip: every frame %v, sparse %v; over %d pairings: silent share crossed %.2f in %d (mean change %+.3f), closed frames crossed %d in %d",
		cpuFull, cpuSparse, n, cfg.MaxSilent, silentFlips, dSilent/float64(n), cfg.MaxClosed, closedFlips)
	if silentFlips > 2 || closedFlips > 8 {
		t.Errorf("sparse tracking changed the mouth checks in %d (silent) and %d (closed) of %d pairings", silentFlips, closedFlips, n)
	}
}
