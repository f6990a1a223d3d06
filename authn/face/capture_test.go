package face

import (
	"context"
	"errors"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// cutAtLeft crops data so that frac of the face box's width lies left of
// the frame, and returns the image and the crop's x offset.
func cutAtLeft(t *testing.T, data []byte, box Box, frac float64) ([]byte, float32) {
	t.Helper()
	m := decodeT(t, data)
	defer m.Close()
	x := int(float64(box.X1) + frac*float64(box.Width()))
	r := m.Region(image.Rect(x, 0, m.Cols(), m.Rows()))
	defer r.Close()
	c := r.Clone()
	defer c.Close()
	return encode(t, c, gocv.PNGFileExt), float32(x)
}

// landmarkError is the mean distance of five points from want, in eye
// distances of want.
func landmarkError(got, want [5]Point, dx float32) float64 {
	iod := math.Hypot(float64(want[1].X-want[0].X), float64(want[1].Y-want[0].Y))
	var sum float64
	for i := range got {
		sum += math.Hypot(float64(got[i].X+dx-want[i].X), float64(got[i].Y-want[i].Y))
	}
	return sum / 5 / iod
}

// TestFaceCutByTheFrame: a face a quarter of which lies outside the frame
// keeps its landmarks where the full view puts them, because the landmark
// crop is padded instead of squeezed (issue 18, capture robustness); the
// reference pipeline's clamped crop moves them. Real faces from LFW and
// NUAA.
func TestFaceCutByTheFrame(t *testing.T) {
	ref, err := New(Config{ModelDir: need(t, "TRUSTID_MODELS"), Workers: 1, ReferenceEdgeCrop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	eng := testEngine(t)
	ctx := context.Background()
	opts := Options{SkipGates: true, Select: SelectCentral}
	var padded, clamped float64
	imgs := []string{lfwImage, lfwImage2, nuaaImage, "faces/lfw/Angelina_Jolie/Angelina_Jolie_0001.jpg"}
	for _, p := range imgs {
		data := testdata(t, p)
		full, err := eng.Process(ctx, data, opts)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cut, dx := cutAtLeft(t, data, full.Face.Box, 0.25)
		a, err := eng.Process(ctx, cut, opts)
		if err != nil {
			t.Fatalf("%s cut: %v", p, err)
		}
		if a.Face.Raw.X1 >= 0 {
			t.Errorf("%s cut: raw box %v does not extend past the frame", p, a.Face.Raw)
		}
		b, err := ref.Process(ctx, cut, opts)
		if err != nil {
			t.Fatalf("%s cut (reference crop): %v", p, err)
		}
		ea, eb := landmarkError(a.Face.Five, full.Face.Five, dx), landmarkError(b.Face.Five, full.Face.Five, dx)
		t.Logf("%s: landmark error %.3f eye distances padded, %.3f clamped", p, ea, eb)
		padded += ea / float64(len(imgs))
		clamped += eb / float64(len(imgs))
	}
	if padded > 0.1 || padded >= clamped {
		t.Errorf("mean landmark error of cut faces: padded %.3f, clamped %.3f; want padded < 0.1 and below clamped", padded, clamped)
	}
}

// TestMisalignmentGate: landmarks that do not fit a face are refused with
// ErrMisaligned and the measured value; the same face passes with the gate
// at its default.
func TestMisalignmentGate(t *testing.T) {
	data := testdata(t, lfwImage)
	ctx := context.Background()
	res, err := testEngine(t).Process(ctx, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := res.Quality
	if q.AlignResidual <= 0 || q.AlignResidual > DefaultMaxAlignResidual || q.EyeBoxRatio < DefaultMinEyeBoxRatio || q.EyeBoxRatio > 1 {
		t.Fatalf("frontal face: residual %.2f, eye/box %.2f", q.AlignResidual, q.EyeBoxRatio)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		lim  float64
	}{
		{"residual", Config{MaxAlignResidual: q.AlignResidual / 2}, q.AlignResidual / 2},
		{"eye distance to box", Config{MinEyeBoxRatio: q.EyeBoxRatio * 1.5}, q.EyeBoxRatio * 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ModelDir, tc.cfg.Workers = need(t, "TRUSTID_MODELS"), 1
			eng, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			_, err = eng.Process(ctx, data, Options{})
			var qe *QualityError
			if !errors.Is(err, ErrMisaligned) || !errors.As(err, &qe) || qe.Limit != tc.lim {
				t.Fatalf("got %v, want ErrMisaligned with limit %g", err, tc.lim)
			}
			if _, err := eng.Process(ctx, data, Options{SkipGates: true}); err != nil {
				t.Fatalf("gates skipped: %v", err)
			}
		})
	}
}

// TestAlignResidual: five points on the template fit it exactly, whatever
// the similarity that placed them; moving one point raises the residual.
func TestAlignResidual(t *testing.T) {
	var five [5]Point
	for i, p := range arcface {
		// rotate 20 degrees, scale 2.5, shift: a similarity of the template
		c, s := math.Cos(0.35), math.Sin(0.35)
		five[i] = Point{float32(2.5*(c*p[0]-s*p[1]) + 40), float32(2.5*(s*p[0]+c*p[1]) + 7)}
	}
	if r := AlignResidual(five, AlignTransform(five)); r > 1e-3 {
		t.Fatalf("template points: residual %g, want 0", r)
	}
	five[2].X += 30 // the nose 12 template pixels aside
	if r := AlignResidual(five, AlignTransform(five)); r < 3 {
		t.Fatalf("nose moved: residual %g, want > 3", r)
	}
}
