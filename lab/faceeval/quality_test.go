package faceeval

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/authn/face"
)

// needDir is the directory named by env; missing, the test skips, or
// fails under CI=true.
func needDir(t *testing.T, env string) string {
	t.Helper()
	dir := os.Getenv(env)
	if _, err := os.Stat(dir); dir == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not set or missing", env)
		}
		t.Skipf("%s not set or missing", env)
	}
	return dir
}

// TestFaceQualityOnRealFaces runs face-quality's measurement on three NUAA
// webcam captures: all accepted, each cut at the left and top edge, and
// the cut faces' landmarks close to the full view's.
func TestFaceQualityOnRealFaces(t *testing.T) {
	td, models := needDir(t, "TRUSTID_TESTDATA"), needDir(t, "TRUSTID_MODELS")
	eng, err := face.New(face.Config{ModelDir: models, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dir := filepath.Join(td, "pad/nuaa/real")
	paths := []string{"0001/0001_00_00_01_0.jpg", "0003/0003_01_00_01_0.jpg", "0005/0005_00_00_01_0.jpg"}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := qualityOf(context.Background(), eng, DataSpec{Population: "east_asian", Dir: dir}, paths, 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Images != 3 || r.Accepted != 3 || len(r.Refused) != 0 {
		t.Fatalf("report %+v: want 3 images accepted", r)
	}
	e := r.Edge
	if e == nil || e.Faces != 6 || e.NoFace != 0 || e.ErrorMedian > 0.1 || e.Misaligned > 1 {
		t.Fatalf("edge report %+v: want 6 cut faces found, median error < 0.1 eye distances", e)
	}
	if r.Residual["p100"] <= 0 || r.Residual["p100"] > face.DefaultMaxAlignResidual {
		t.Errorf("residuals %v", r.Residual)
	}
}
