package face

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// OperatingPoint is a cosine threshold calibrated for a false-accept rate.
type OperatingPoint struct {
	FAR       float64 `json:"far"`
	Threshold float64 `json:"threshold"`
}

// Calibration is the output of `trustid-lab calibrate-face`: thresholds per
// false-accept rate measured on impostor pairs for one model.
type Calibration struct {
	Model     string           `json:"model"`
	Created   string           `json:"created"`
	Command   string           `json:"command"`
	Source    string           `json:"source"`
	Impostors int              `json:"impostor_pairs"`
	Points    []OperatingPoint `json:"points"`
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
