package faceeval

// face-quality: what the capture gates do to a set of photos (issue 18,
// capture robustness): per data set, how many faces are refused and why,
// the distribution of the alignment residual, and an edge test that cuts
// each detected face at the frame's left or top edge and measures where the
// landmarks land, against the same face in full view.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/trustid/trustid/authn/face"
)

// QualityReport is face-quality's JSON for one data set.
type QualityReport struct {
	Name     string         `json:"name"`
	Dir      string         `json:"dir"`
	Images   int            `json:"images"`
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused"`
	// Residual percentiles (template pixels) over the faces every other
	// gate accepted.
	Residual map[string]float64 `json:"align_residual_percentiles"`
	Edge     *EdgeReport        `json:"edge,omitempty"`
}

// EdgeReport: each accepted face cut by the frame (the image cropped so
// that Cut of the face box's width, or height, lies outside it).
type EdgeReport struct {
	Cut           float64 `json:"cut"`
	ReferenceCrop bool    `json:"reference_crop"` // the reference pipeline's clamped landmark crop
	Faces         int     `json:"faces"`          // cut faces tried (left and top per face)
	NoFace        int     `json:"no_face"`
	// Landmark error: mean distance of the five points from where the
	// full view put them, in eye distances.
	ErrorMedian float64 `json:"error_median_iod"`
	ErrorP95    float64 `json:"error_p95_iod"`
	// Misaligned: error above 0.15 eye distances (the eyes or mouth
	// corners moved by more than about a sixth of the eye distance).
	Misaligned int `json:"misaligned"`
	// What the gates did with them: refused (any gate, with the residual
	// gate among them) and misaligned faces that no gate refused.
	Refused          map[string]int `json:"refused"`
	MisalignedPassed int            `json:"misaligned_passed"`
	AlignedRefused   int            `json:"aligned_refused"`
	// Alignment residual (template pixels) of the cut faces, aligned and
	// misaligned apart: what a residual gate could tell between them.
	ResidualAligned    map[string]float64 `json:"align_residual_aligned"`
	ResidualMisaligned map[string]float64 `json:"align_residual_misaligned"`
}

const misalignedIOD = 0.15

// rows, when set (-rows), receives the cut faces' cues.
var rows *json.Encoder

// FaceQuality is the face-quality command.
func FaceQuality(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("face-quality", flag.ContinueOnError)
	var ff faceFlags
	ff.register(fs)
	var data dataFlags
	fs.Var(&data, "data", "NAME[:N]=DIR: a data set (repeatable); N samples N images (seeded)")
	cut := fs.Float64("edge", 0.3, "edge test: fraction of the face box cut off by the frame (0 = no edge test)")
	rowsPath := fs.String("rows", "", "write each cut face's cues and landmark error as JSON lines to this file")
	refCrop := fs.Bool("reference-crop", false, "landmark crop as the reference pipeline cuts it at the frame's edge (clamped), for comparison")
	seed := fs.Uint64("seed", 1, "sampling seed")
	noGate := fs.Bool("no-misalignment-gate", false, "turn the misalignment gate off (the engine before issue 18), for comparison")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New("face-quality: give at least one -data NAME=DIR")
	}
	if ff.models == "" {
		return errors.New("no model directory: set TRUSTID_MODELS or -models")
	}
	cfg := face.Config{ModelDir: ff.models, Workers: ff.workers, ReferenceEdgeCrop: *refCrop}
	if *noGate {
		cfg.MaxAlignResidual, cfg.MinEyeBoxRatio = math.Inf(1), math.SmallestNonzeroFloat64
	}
	eng, err := face.New(cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	if *rowsPath != "" {
		f, err := os.Create(*rowsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		rows = json.NewEncoder(f)
	}
	var out []QualityReport
	for _, d := range data {
		paths, err := imageFiles(d.Dir)
		if err != nil {
			return err
		}
		paths = sample(paths, d.Max, *seed)
		r, err := qualityOf(ctx, eng, d, paths, *cut, ff.workers)
		if err != nil {
			return err
		}
		if r.Edge != nil {
			r.Edge.ReferenceCrop = *refCrop
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// qualityOf runs the gates on every image of d (paths relative to d.Dir).
func qualityOf(ctx context.Context, eng *face.Engine, d DataSpec, paths []string, cut float64, workers int) (QualityReport, error) {
	r := QualityReport{Name: d.Name(), Dir: d.Dir, Images: len(paths), Refused: map[string]int{}}
	e := &EdgeReport{Cut: cut, Refused: map[string]int{}}
	var (
		mu       sync.Mutex
		residual []float64
		errs     []float64
		resOK    []float64
		resBad   []float64
		firstErr error
	)
	work := make(chan string)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				data, err := os.ReadFile(filepath.Join(d.Dir, p))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				res, err := eng.Process(ctx, data, face.Options{Select: face.SelectCentral})
				var edge []edgeOutcome
				if err == nil && cut > 0 {
					edge = edgeTest(ctx, eng, data, res, cut)
				}
				mu.Lock()
				if err != nil {
					r.Refused[reason(err)]++
				} else {
					r.Accepted++
					residual = append(residual, res.Quality.AlignResidual)
				}
				for _, o := range edge {
					e.Faces++
					switch {
					case o.noFace:
						e.NoFace++
						continue
					case o.err > misalignedIOD:
						e.Misaligned++
						resBad = append(resBad, o.residual)
						if o.refused == "" {
							e.MisalignedPassed++
						}
					default:
						resOK = append(resOK, o.residual)
						if o.refused != "" {
							e.AlignedRefused++
						}
					}
					if o.refused != "" {
						e.Refused[o.refused]++
					}
					errs = append(errs, o.err)
					if rows != nil {
						o.features["error_iod"] = o.err
						_ = rows.Encode(o.features)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return r, firstErr
	}
	r.Residual = percentiles(residual, 50, 90, 99, 99.9, 100)
	if cut > 0 {
		pe := percentiles(errs, 50, 95)
		e.ErrorMedian, e.ErrorP95 = pe["p50"], pe["p95"]
		e.ResidualAligned = percentiles(resOK, 50, 90, 99, 100)
		e.ResidualMisaligned = percentiles(resBad, 10, 25, 50, 90)
		r.Edge = e
	}
	return r, nil
}

type edgeOutcome struct {
	noFace   bool
	err      float64 // landmark error in eye distances
	residual float64
	refused  string // gate that refused the cut face, "" if accepted
	features map[string]float64
}

// faceFeatures are cues a misalignment gate could use, for -rows.
func faceFeatures(r *face.Result) map[string]float64 {
	f := r.Face
	raw, box := f.Box, f.Box
	if f.Raw.Area() > 0 {
		raw = f.Raw
	}
	iod := math.Hypot(float64(f.Five[1].X-f.Five[0].X), float64(f.Five[1].Y-f.Five[0].Y))
	cx := float64(f.Five[0].X+f.Five[1].X+f.Five[3].X+f.Five[4].X) / 4
	cy := float64(f.Five[0].Y+f.Five[1].Y+f.Five[3].Y+f.Five[4].Y) / 4
	return map[string]float64{
		"residual": r.Quality.AlignResidual,
		"outside":  1 - float64(box.Area())/math.Max(1, float64(raw.Area())),
		"iod_box":  iod / math.Max(1, float64(raw.Width())),
		"cx_box":   (cx - float64(raw.X1)) / math.Max(1, float64(raw.Width())),
		"cy_box":   (cy - float64(raw.Y1)) / math.Max(1, float64(raw.Height())),
		"yaw":      f.Pose.Yaw, "pitch": f.Pose.Pitch, "roll": f.Pose.Roll,
	}
}

// edgeTest cuts the face of res at the left and at the top edge of the
// frame and compares the landmarks found with res's.
func edgeTest(ctx context.Context, eng *face.Engine, data []byte, res *face.Result, cut float64) []edgeOutcome {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	b := res.Face.Box
	five := res.Face.Five
	iod := math.Hypot(float64(five[1].X-five[0].X), float64(five[1].Y-five[0].Y))
	if iod < 1 {
		return nil
	}
	bounds := img.Bounds()
	var out []edgeOutcome
	for _, left := range []bool{true, false} {
		r := bounds
		if left {
			r.Min.X = bounds.Min.X + int(float64(b.X1)+cut*float64(b.Width()))
		} else {
			r.Min.Y = bounds.Min.Y + int(float64(b.Y1)+cut*float64(b.Height()))
		}
		if r.Dx() < 16 || r.Dy() < 16 {
			continue
		}
		cropped := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
		draw.Draw(cropped, cropped.Bounds(), img, r.Min, draw.Src)
		var buf bytes.Buffer
		if png.Encode(&buf, cropped) != nil {
			continue
		}
		got, err := eng.Process(ctx, buf.Bytes(), face.Options{Select: face.SelectCentral, SkipGates: true})
		if err != nil {
			out = append(out, edgeOutcome{noFace: true})
			continue
		}
		dx, dy := float32(r.Min.X-bounds.Min.X), float32(r.Min.Y-bounds.Min.Y)
		var sum float64
		for i, p := range got.Face.Five {
			sum += math.Hypot(float64(p.X+dx-five[i].X), float64(p.Y+dy-five[i].Y))
		}
		o := edgeOutcome{err: sum / 5 / iod, residual: got.Quality.AlignResidual, features: faceFeatures(got)}
		if _, err := eng.Process(ctx, buf.Bytes(), face.Options{Select: face.SelectCentral}); err != nil {
			o.refused = reason(err)
		}
		out = append(out, o)
	}
	return out
}

// percentiles returns the named percentiles of xs ("p50", ...).
func percentiles(xs []float64, ps ...float64) map[string]float64 {
	m := map[string]float64{}
	if len(xs) == 0 {
		return m
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	for _, p := range ps {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		m[fmt.Sprintf("p%g", p)] = sig3(s[max(0, min(len(s)-1, i))])
	}
	return m
}
