package face

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// need returns the value of an env var naming a directory, skipping the
// test when it is missing (failing under CI=true).
func need(t testing.TB, env string) string {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not set", env)
		}
		t.Skipf("%s not set", env)
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v", env, err)
		}
		t.Skipf("%s: %v", env, err)
	}
	return dir
}

var (
	engineOnce sync.Once
	engineVal  *Engine
	engineErr  error
)

// testEngine shares one engine (two workers) across the package's tests.
func testEngine(t testing.TB) *Engine {
	t.Helper()
	dir := need(t, "TRUSTID_MODELS")
	engineOnce.Do(func() {
		engineVal, engineErr = New(Config{ModelDir: dir, Workers: 2})
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engineVal
}

func testdata(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(need(t, "TRUSTID_TESTDATA"), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type goldenCase struct {
	Image      string        `json:"image"`
	Size       [2]int        `json:"size"`
	Faces      int           `json:"faces_detected"`
	Box        [4]float64    `json:"box"`
	Score      float64       `json:"score"`
	Five       [5][2]float64 `json:"five_points"`
	Similarity [2][3]float64 `json:"similarity_transform"`
	Embedding  []float32     `json:"embedding"`
}

func loadGolden(t testing.TB) []goldenCase {
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(testdata(t, "faces/reference-embeddings.json"), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	return g.Cases
}

// TestGolden checks the port against the reference pipeline's outputs:
// the similarity transform and embedding from the same five points
// (cosine >= 0.999), and the end-to-end embedding (cosine >= 0.98).
func TestGolden(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	for _, c := range loadGolden(t) {
		t.Run(filepath.Base(c.Image), func(t *testing.T) {
			data := testdata(t, c.Image)
			var five [5]Point
			for i, p := range c.Five {
				five[i] = Point{float32(p[0]), float32(p[1])}
			}
			m := AlignTransform(five)
			for r := range 2 {
				for k := range 3 {
					tol := 1e-3
					if k == 2 {
						tol = 0.05
					}
					if d := m[r][k] - c.Similarity[r][k]; d > tol || d < -tol {
						t.Errorf("similarity[%d][%d] = %.5f, reference %.5f", r, k, m[r][k], c.Similarity[r][k])
					}
				}
			}
			emb, err := e.EmbedAligned(ctx, data, five)
			if err != nil {
				t.Fatal(err)
			}
			if cos := Cosine(emb, c.Embedding); cos < 0.999 {
				t.Errorf("same five points: cosine %.5f < 0.999", cos)
			}
			// The reference chose the face nearest the centre.
			res, err := e.Process(ctx, data, Options{Embedding: true, AllowSeveral: true, SkipGates: true, Select: SelectCentral})
			if err != nil {
				t.Fatal(err)
			}
			cos := Cosine(res.Embedding, c.Embedding)
			if cos < 0.98 {
				t.Errorf("end to end: cosine %.5f < 0.98", cos)
			}
			var d float64
			for i, p := range c.Five {
				dx, dy := float64(res.Face.Five[i].X)-p[0], float64(res.Face.Five[i].Y)-p[1]
				d += dx*dx + dy*dy
			}
			t.Logf("five-point rms %.2f px", math.Sqrt(d/5))
			t.Logf("end to end cosine %.4f, faces %d (ref %d), box %.1f (ref %.1f)", cos, res.Faces, c.Faces, res.Face.Box, c.Box)
		})
	}
}
