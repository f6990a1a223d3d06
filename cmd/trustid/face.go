package main

// Face operator command: compare (two images). The evaluation commands
// (eval-face, calibrate-face) are in the lab binary, cmd/trustid-lab.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/trustid/trustid/authn/face"
)

// faceFlags are the flags of the service's face command (compare); the
// lab's evaluation commands keep their own, with an embedding cache.
type faceFlags struct {
	models  string
	workers int
}

func (f *faceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.models, "models", os.Getenv("TRUSTID_MODELS"), "directory of the pinned face models")
	fs.IntVar(&f.workers, "workers", 1, "engine workers (parallel images)")
}

func (f *faceFlags) engine() (*face.Engine, error) {
	if f.models == "" {
		return nil, errors.New("no model directory: set TRUSTID_MODELS or -models")
	}
	return face.New(face.Config{ModelDir: f.models, Workers: f.workers})
}

func round6(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	return math.Round(v*1e6) / 1e6
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runCompare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	var ff faceFlags
	ff.register(fs)
	far := fs.Float64("far", 1e-4, "operating point (false-accept rate) from the calibration")
	calFile := fs.String("calibration", "", "calibration JSON (default: the one built into the binary)")
	population := fs.String("population", "east_asian", "whose thresholds: a calibrated population or "+face.Strictest)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: trustid compare [flags] IMAGE_A IMAGE_B")
	}
	cal, err := face.DefaultCalibration()
	if *calFile != "" {
		b, rerr := os.ReadFile(*calFile)
		if rerr != nil {
			return rerr
		}
		cal, err = face.ParseCalibration(b)
	}
	if err != nil {
		return err
	}
	if cal, err = cal.ForPopulation(*population); err != nil {
		return err
	}
	thr, err := cal.Threshold(*far)
	if err != nil {
		return err
	}
	eng, err := ff.engine()
	if err != nil {
		return err
	}
	defer eng.Close()
	var vecs [2][]float32
	out := map[string]any{"far": *far, "threshold": thr, "population": *population}
	for i, p := range fs.Args() {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		res, err := eng.Process(ctx, data, face.Options{Embedding: true})
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		vecs[i] = res.Embedding
	}
	score := face.Cosine(vecs[0], vecs[1])
	out["score"] = round6(float64(score))
	out["match"] = float64(score) >= thr
	return printJSON(out)
}
