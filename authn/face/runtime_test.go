package face

import (
	"context"
	"errors"
	"image"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// cosine64 is the cosine similarity of two raw network outputs.
func cosine64(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// agree checks one stage's outputs from the two runtimes on the same input:
// cosine >= 0.999 (the bar) and no value further apart than tol.
func agree(t *testing.T, stage string, cv, ort []float32, tol float64) {
	t.Helper()
	if len(cv) != len(ort) || len(cv) == 0 {
		t.Fatalf("%s: %d values on OpenCV, %d on ONNX Runtime", stage, len(cv), len(ort))
	}
	cos, d := cosine64(cv, ort), maxAbsDiff(cv, ort)
	if cos < 0.999 || d > tol {
		t.Errorf("%s: cosine %.6f (want >= 0.999), max difference %.2g (want <= %.2g)", stage, cos, d, tol)
	}
	t.Logf("%s: cosine %.7f, max difference %.2g", stage, cos, d)
}

// TestRuntimesAgree runs each network on ONNX Runtime and on OpenCV DNN
// with the same input, stage by stage, on the golden images and a 640x480
// capture; then the whole pipeline on each runtime, which must find the
// same face, the same landmarks and the same embedding.
func TestRuntimesAgree(t *testing.T) {
	cvE, ortE := runtimeEngine(t, RuntimeOpenCV), runtimeEngine(t, RuntimeONNX)
	ctx := context.Background()
	wc, err := cvE.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cvE.release(wc)
	wo, err := ortE.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ortE.release(wo)
	images := []string{nuaaImage}
	for _, c := range loadGolden(t) {
		images = append(images, c.Image)
	}
	var worst float64 = 1
	for _, name := range images {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data := testdata(t, name)
			img, err := decode(data)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()

			// Detector: on the canvas of the OpenCV worker's last pass.
			dets, err := wc.detect(img)
			if err != nil || len(dets) == 0 {
				t.Fatalf("no face on OpenCV (%v)", err)
			}
			s1, b1, err := wc.nets.detect(wc.canvas)
			if err != nil {
				t.Fatal(err)
			}
			s1, b1 = append([]float32(nil), s1...), append([]float32(nil), b1...)
			s2, b2, err := wo.nets.detect(wc.canvas)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, "detect scores", s1, s2, 1e-4)
			agree(t, "detect boxes", b1, b2, 1e-4) // fractions of the canvas: 0.03 px

			// Landmarks: on the OpenCV worker's 64x64 grey crop.
			box := dets[0].Box
			if _, err := wc.landmarks(img, box); err != nil {
				t.Fatal(err)
			}
			l1, err := wc.nets.landmarks(wc.grey64)
			if err != nil {
				t.Fatal(err)
			}
			l1 = append([]float32(nil), l1...)
			l2, err := wo.nets.landmarks(wc.grey64)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, "landmarks", l1, l2, 1e-4) // fractions of the crop

			// Embedding: on the OpenCV worker's aligned face.
			lm, err := wc.landmarks(img, box)
			if err != nil {
				t.Fatal(err)
			}
			wc.align(img, FivePoints(&lm))
			e1, err := wc.nets.embed(wc.aligned)
			if err != nil {
				t.Fatal(err)
			}
			e1 = append([]float32(nil), e1...)
			e2, err := wo.nets.embed(wc.aligned)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, "embedding", e1, e2, 1e-3) // raw values are about ±3
			worst = math.Min(worst, cosine64(e1, e2))

			// Anti-spoof: on the OpenCV worker's 128x128 crop.
			if _, err := wc.antiSpoof(img, box); err != nil {
				t.Fatal(err)
			}
			a1, err := wc.nets.antiSpoof(wc.spoof128)
			if err != nil {
				t.Fatal(err)
			}
			a1 = append([]float32(nil), a1...)
			a2, err := wo.nets.antiSpoof(wc.spoof128)
			if err != nil {
				t.Fatal(err)
			}
			agree(t, "anti-spoof logits", a1, a2, 1e-3)

			// End to end on each runtime.
			opts := Options{Embedding: true, AntiSpoof: true, AllowSeveral: true, SkipGates: true, Select: SelectCentral}
			r1, err := cvE.Process(ctx, data, opts)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := ortE.Process(ctx, data, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r1.Faces != r2.Faces {
				t.Errorf("faces: %d on OpenCV, %d on ONNX Runtime", r1.Faces, r2.Faces)
			}
			var d float64
			for i := range r1.Face.Landmarks {
				p, q := r1.Face.Landmarks[i], r2.Face.Landmarks[i]
				d = math.Max(d, math.Hypot(float64(p.X-q.X), float64(p.Y-q.Y)))
			}
			if d > 0.05 {
				t.Errorf("end to end: a landmark %.3f px apart", d)
			}
			if c := Cosine(r1.Embedding, r2.Embedding); c < 0.999 {
				t.Errorf("end to end: embedding cosine %.6f < 0.999", c)
			}
			if dr := math.Abs(float64(r1.Real - r2.Real)); dr > 1e-3 {
				t.Errorf("end to end: anti-spoof %.5f vs %.5f", r1.Real, r2.Real)
			}
			t.Logf("end to end: landmarks within %.4f px, embedding cosine %.7f, anti-spoof %.5f vs %.5f",
				d, Cosine(r1.Embedding, r2.Embedding), r1.Real, r2.Real)
		})
	}
	t.Logf("lowest embedding cosine between the runtimes: %.7f", worst)
}

// TestNetworkFault: an input of the wrong size is an ErrInference fault on
// both runtimes, never an empty answer taken for "no face".
func TestNetworkFault(t *testing.T) {
	for _, rt := range []Runtime{RuntimeONNX, RuntimeOpenCV} {
		t.Run(string(rt), func(t *testing.T) {
			e := runtimeEngine(t, rt)
			w, err := e.acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer e.release(w)
			m := gocv.NewMatWithSize(64, 64, gocv.MatTypeCV8UC3) // the landmark net's size, 3 channels
			defer m.Close()
			if _, err := w.nets.landmarks(m); !errors.Is(err, ErrInference) {
				t.Errorf("landmarks on a colour crop: %v, want ErrInference", err)
			}
			if _, err := w.nets.embed(m); !errors.Is(err, ErrInference) {
				t.Errorf("embedding of a 64x64 face: %v, want ErrInference", err)
			}
		})
	}
}

// TestTimings: Options.Timings fills every stage that ran and none that
// did not; without it there are no timings.
func TestTimings(t *testing.T) {
	e := testEngine(t)
	data := testdata(t, nuaaImage)
	ctx := context.Background()
	res, err := e.Process(ctx, data, Options{Embedding: true, Timings: true})
	if err != nil {
		t.Fatal(err)
	}
	tm := res.Timings
	if tm == nil {
		t.Fatal("no timings")
	}
	for name, s := range map[string]StageTime{"decode": tm.Decode, "detect": tm.Detect, "landmarks": tm.Landmarks,
		"align": tm.Align, "quality": tm.Quality, "embed": tm.Embed} {
		if s.Wall <= 0 || s.CPU <= 0 || s.Wall > time.Minute {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if tm.AntiSpoof != (StageTime{}) {
		t.Errorf("anti-spoof timed but not run: %+v", tm.AntiSpoof)
	}
	if res, err = e.Process(ctx, data, Options{Embedding: true}); err != nil || res.Timings != nil {
		t.Errorf("timings without asking: %+v, %v", res.Timings, err)
	}
	m := decodeT(t, data)
	defer m.Close()
	f := Frame{Width: m.Cols(), Height: m.Rows(), BGR: m.ToBytes()}
	if res, err = e.ProcessFrame(ctx, f, Options{AntiSpoof: true, SkipGates: true, Timings: true}); err != nil {
		t.Fatal(err)
	}
	if res.Timings == nil || res.Timings.AntiSpoof.CPU <= 0 || res.Timings.Decode != (StageTime{}) || res.Timings.Embed != (StageTime{}) {
		t.Errorf("frame timings: %+v", res.Timings)
	}
}

// TestBlobMatchesOpenCV: the ONNX Runtime input written in place is
// blobFromImage's to the bit, for each network's normalisation.
func TestBlobMatchesOpenCV(t *testing.T) {
	for _, c := range []struct {
		name        string
		typ         gocv.MatType
		w, h        int
		scale, mean float32
		swap        bool
	}{
		{"detect", gocv.MatTypeCV8UC3, detW, detH, detScale, detMean, true},
		{"landmarks", gocv.MatTypeCV8UC1, lmkSize, lmkSize, lmkScale, 0, false},
		{"embed", gocv.MatTypeCV8UC3, alignSize, alignSize, featScale, featMean, true},
		{"anti-spoof", gocv.MatTypeCV8UC3, spoofSize, spoofSize, spoofScale, spoofMean, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := gocv.NewMatWithSize(c.h, c.w, c.typ)
			defer m.Close()
			gocv.RandU(&m, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(256, 256, 256, 0))
			m2 := m.Clone() // RandU's upper bound is exclusive: make sure 255 occurs
			defer m2.Close()
			m2.SetUCharAt(0, 0, 255)
			want := gocv.BlobFromImage(m2, float64(c.scale), image.Pt(c.w, c.h),
				gocv.NewScalar(float64(c.mean), float64(c.mean), float64(c.mean), 0), c.swap, false)
			defer want.Close()
			wv, err := want.DataPtrFloat32()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(wv))
			if err := blob(m2, got, c.scale, c.mean, c.swap); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, wv) {
				t.Errorf("differs from blobFromImage (max difference %.3g)", maxAbsDiff(got, wv))
			}
			if err := blob(m2, got[1:], c.scale, c.mean, c.swap); err == nil {
				t.Error("a tensor of the wrong size was accepted")
			}
		})
	}
}
