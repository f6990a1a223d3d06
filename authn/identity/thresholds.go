package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
)

// ErrThresholds reports a missing, unreadable or incomplete thresholds file.
var ErrThresholds = errors.New("identity: thresholds")

// Thresholds maps operating points, named by their false-accept rate
// ("1e-3", "1e-4", "1e-5"), to cosine score thresholds calibrated from data
// by `trustid-lab calibrate-face`.
type Thresholds struct {
	// ModelVersion the scores were calibrated for (empty: not stated).
	ModelVersion string
	// ByFAR maps the canonical FAR name to its threshold.
	ByFAR map[string]float32
	// Unresolved lists the canonical FAR names the calibration could not
	// measure (too few impostor pairs); their thresholds are extrapolated.
	Unresolved []string
}

// thresholdsFile is the calibration file. The shape `trustid-lab
// calibrate-face` writes (authn/face.Calibration) is
//
//	{"model": "...", "points": [{"far": 1e-4, "threshold": 0.41, "resolved": true}, ...]}
//
// and a plain map is accepted too:
//
//	{"model": "...", "thresholds": {"1e-3": 0.34, "1e-4": 0.41}}
//
// Other fields (how it was made) are ignored.
type thresholdsFile struct {
	Model      string             `json:"model"`
	Thresholds map[string]float64 `json:"thresholds"`
	Points     []struct {
		FAR       float64 `json:"far"`
		Threshold float64 `json:"threshold"`
		// Resolved is false when the impostor sample was too small to
		// measure this FAR (impostors*far < 1).
		Resolved *bool `json:"resolved"`
	} `json:"points"`
}

// LoadThresholds reads a calibration file; a missing file is an error that
// says which command makes it.
func LoadThresholds(path string) (*Thresholds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s not found: run `trustid-lab calibrate-face` to produce it", ErrThresholds, path)
		}
		return nil, fmt.Errorf("%w: %v", ErrThresholds, err)
	}
	t, err := ParseThresholds(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseThresholds decodes a calibration file (see thresholdsFile).
func ParseThresholds(b []byte) (*Thresholds, error) {
	var f thresholdsFile
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrThresholds, err)
	}
	t := &Thresholds{ModelVersion: f.Model, ByFAR: map[string]float32{}}
	add := func(far float64, th float64) error {
		if !(far > 0 && far < 1) {
			return fmt.Errorf("%w: false-accept rate %v outside (0, 1)", ErrThresholds, far)
		}
		if math.IsNaN(th) || th < -1 || th > 1 {
			return fmt.Errorf("%w: threshold %v at FAR %v is not a cosine", ErrThresholds, th, far)
		}
		t.ByFAR[FARName(far)] = float32(th)
		return nil
	}
	for k, v := range f.Thresholds {
		far, err := strconv.ParseFloat(k, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: operating point %q is not a number", ErrThresholds, k)
		}
		if err := add(far, v); err != nil {
			return nil, err
		}
	}
	for _, p := range f.Points {
		if err := add(p.FAR, p.Threshold); err != nil {
			return nil, err
		}
		if p.Resolved != nil && !*p.Resolved {
			t.Unresolved = append(t.Unresolved, FARName(p.FAR))
		}
	}
	if len(t.ByFAR) == 0 {
		return nil, fmt.Errorf("%w: no operating points", ErrThresholds)
	}
	return t, nil
}

// FARName is the canonical name of a false-accept rate: "1e-4" for 0.0001.
func FARName(far float64) string {
	return strconv.FormatFloat(far, 'e', -1, 64) // 0.0001 -> "1e-04"
}

// At returns the threshold of the operating point named far ("1e-4",
// "0.0001" and "1e-04" name the same point).
func (t *Thresholds) At(far string) (float32, error) {
	v, err := strconv.ParseFloat(far, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: operating point %q is not a number", ErrThresholds, far)
	}
	th, ok := t.ByFAR[FARName(v)]
	if !ok {
		return 0, fmt.Errorf("%w: no calibrated threshold for FAR %s", ErrThresholds, far)
	}
	return th, nil
}
