package face_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trustid/trustid/authn/face"
)

// A 1:1 check of a probe photo against a reference photo at the calibrated
// operating point for a false-accept rate of 1e-4.
func Example() {
	eng, err := face.New(face.Config{ModelDir: os.Getenv("TRUSTID_MODELS")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	cal, err := face.DefaultCalibration()
	if err != nil {
		fmt.Println(err)
		return
	}
	thr, _ := cal.Threshold(1e-4)
	ctx := context.Background()
	embed := func(path string) []float32 {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		res, err := eng.Process(ctx, data, face.Options{Embedding: true})
		var qe *face.QualityError
		switch {
		case errors.As(err, &qe):
			fmt.Println("rejected:", qe) // e.g. "face: several faces: 2 detected"
			return nil
		case err != nil:
			fmt.Println("bad image:", err)
			return nil
		}
		return res.Embedding
	}
	ref, probe := embed("register.jpg"), embed("probe.jpg")
	if ref != nil && probe != nil {
		fmt.Println("match:", float64(face.Cosine(ref, probe)) >= thr)
	}
}
