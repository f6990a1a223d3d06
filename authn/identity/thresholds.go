package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
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
	// Population whose thresholds these are: "strictest" (the file's
	// shipped points, which hold on every calibrated population) or the
	// population a deployment named.
	Population string
}

// Strictest names a calibration file's shipped points: per false-accept
// rate the highest threshold of any calibrated population.
const Strictest = "strictest"

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
	Points     []filePoint        `json:"points"`
	// Populations calibrated separately; Points are the strictest of them.
	Populations []struct {
		Name   string      `json:"name"`
		Points []filePoint `json:"points"`
	} `json:"populations"`
}

type filePoint struct {
	FAR       float64 `json:"far"`
	Threshold float64 `json:"threshold"`
	// Resolved is false when the impostor sample was too small to
	// measure this FAR (impostors*far < 1).
	Resolved *bool `json:"resolved"`
}

// LoadThresholds reads a calibration file's shipped (strictest) points; a
// missing file is an error that says which command makes it.
func LoadThresholds(path string) (*Thresholds, error) {
	return LoadThresholdsFor(path, Strictest)
}

// LoadThresholdsFor is LoadThresholds for the named population (see
// ParseThresholdsFor).
func LoadThresholdsFor(path, population string) (*Thresholds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s not found: run `trustid-lab calibrate-face` to produce it", ErrThresholds, path)
		}
		return nil, fmt.Errorf("%w: %v", ErrThresholds, err)
	}
	t, err := ParseThresholdsFor(b, population)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseThresholds decodes a calibration file's shipped (strictest) points
// (see thresholdsFile).
func ParseThresholds(b []byte) (*Thresholds, error) {
	return ParseThresholdsFor(b, Strictest)
}

// ParseThresholdsFor decodes the operating points of the named population
// of a calibration file: Strictest (or "") takes the file's shipped points,
// a name takes that population's own points, which hold on it but not
// necessarily on the others. A name the file does not calibrate is an
// error.
func ParseThresholdsFor(b []byte, population string) (*Thresholds, error) {
	var f thresholdsFile
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrThresholds, err)
	}
	if population == "" {
		population = Strictest
	}
	if population != Strictest {
		var names []string
		found := false
		for _, p := range f.Populations {
			if p.Name == population {
				f.Points, f.Thresholds, found = p.Points, nil, true
				break
			}
			names = append(names, p.Name)
		}
		if !found {
			return nil, fmt.Errorf("%w: population %q is not calibrated (calibrated: %s; or %s)", ErrThresholds, population, strings.Join(names, ", "), Strictest)
		}
	}
	t := &Thresholds{ModelVersion: f.Model, ByFAR: map[string]float32{}, Population: population}
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
