package face

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// OperatingPoint is a cosine threshold calibrated for a false-accept rate.
type OperatingPoint struct {
	FAR       float64 `json:"far"`
	Threshold float64 `json:"threshold"`
	// Population whose impostors set the threshold (the strictest one, in
	// a calibration over several populations).
	Population string `json:"population,omitempty"`
}

// Calibration is the output of `trustid-lab calibrate-face`: thresholds per
// false-accept rate measured on impostor pairs for one model. Points are
// the shipped operating points: with several populations, the strictest
// (per FAR the highest threshold of any population, so the measured FAR of
// each is at most the label); Populations holds each one's own points, for
// a deployment that names the population it serves (ForPopulation).
type Calibration struct {
	Model     string           `json:"model"`
	Created   string           `json:"created"`
	Command   string           `json:"command"`
	Source    string           `json:"source"`
	Impostors int              `json:"impostor_pairs"`
	Points    []OperatingPoint `json:"points"`
	// Populations calibrated separately (empty in a single-population file).
	Populations []PopulationCalibration `json:"populations,omitempty"`
}

// PopulationCalibration is one population's thresholds.
type PopulationCalibration struct {
	Name      string           `json:"name"`
	Source    string           `json:"source"`
	Impostors int              `json:"impostor_pairs"`
	Points    []OperatingPoint `json:"points"`
}

// Strictest names the shipped points of a calibration over several
// populations (ForPopulation).
const Strictest = "strictest"

// ErrUnknownPopulation: the calibration has no population of that name.
var ErrUnknownPopulation = errors.New("face: calibration has no such population")

// ForPopulation returns the calibration with the points of the named
// population; "" or Strictest keep the shipped (strictest) points.
func (c Calibration) ForPopulation(name string) (Calibration, error) {
	if name == "" || name == Strictest {
		return c, nil
	}
	var names []string
	for _, p := range c.Populations {
		if p.Name == name {
			out := c
			out.Points, out.Impostors, out.Source = p.Points, p.Impostors, p.Source
			out.Populations = nil
			return out, nil
		}
		names = append(names, p.Name)
	}
	return Calibration{}, fmt.Errorf("%w: %q (calibrated: %s, or %s)", ErrUnknownPopulation, name, strings.Join(names, ", "), Strictest)
}

// ErrNoOperatingPoint: the calibration has no threshold for that FAR.
var ErrNoOperatingPoint = errors.New("face: no calibrated operating point")

//go:embed calibration.json
var defaultCalibration []byte

// DefaultCalibration is the calibration committed with the code
// (authn/face/calibration.json; its "command" field says how it was made).
func DefaultCalibration() (Calibration, error) {
	return ParseCalibration(defaultCalibration)
}

// ParseCalibration decodes and checks a calibration file for this model.
func ParseCalibration(b []byte) (Calibration, error) {
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("face: calibration: %w", err)
	}
	if c.Model != ModelVersion {
		return c, fmt.Errorf("face: calibration is for model %q, engine runs %q", c.Model, ModelVersion)
	}
	if len(c.Points) == 0 {
		return c, errors.New("face: calibration has no operating points")
	}
	for _, p := range c.Populations {
		if p.Name == "" || p.Name == Strictest || len(p.Points) == 0 {
			return c, fmt.Errorf("face: calibration population %q: needs a name (not %q) and operating points", p.Name, Strictest)
		}
	}
	return c, nil
}

// Threshold is the cosine threshold for a false-accept rate (1e-3, 1e-4,
// 1e-5): a score >= threshold is a match.
func (c Calibration) Threshold(far float64) (float64, error) {
	for _, p := range c.Points {
		if math.Abs(p.FAR-far) <= far*1e-6 {
			return p.Threshold, nil
		}
	}
	return 0, fmt.Errorf("%w: FAR %g", ErrNoOperatingPoint, far)
}
