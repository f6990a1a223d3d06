package face

import (
	"errors"
	"testing"
)

func TestForPopulation(t *testing.T) {
	c := Calibration{Model: ModelVersion,
		Points: []OperatingPoint{{FAR: 1e-4, Threshold: 0.47, Population: "east_asian"}},
		Populations: []PopulationCalibration{
			{Name: "east_asian", Impostors: 5, Points: []OperatingPoint{{FAR: 1e-4, Threshold: 0.47}}},
			{Name: "lfw", Impostors: 7, Points: []OperatingPoint{{FAR: 1e-4, Threshold: 0.43}}},
		}}
	tests := []struct {
		name string
		want float64
		err  error
	}{
		{"", 0.47, nil},
		{Strictest, 0.47, nil},
		{"lfw", 0.43, nil},
		{"east_asian", 0.47, nil},
		{"martian", 0, ErrUnknownPopulation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ForPopulation(tt.name)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if thr, err := got.Threshold(1e-4); err != nil || thr != tt.want {
				t.Errorf("Threshold(1e-4) = %v, %v, want %v", thr, err, tt.want)
			}
		})
	}
}

// The committed calibration holds for the citizens of the seeds: it
// names the east_asian population (the default of face.population) and its
// shipped points are at least as strict as every population's own.
func TestDefaultCalibrationPopulations(t *testing.T) {
	c, err := DefaultCalibration()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ForPopulation("east_asian"); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Populations {
		for _, pp := range p.Points {
			thr, err := c.Threshold(pp.FAR)
			if err != nil || thr < pp.Threshold {
				t.Errorf("shipped FAR %g: %v (%v) below %s's %v", pp.FAR, thr, err, p.Name, pp.Threshold)
			}
		}
	}
}
