package viseme

import (
	"math"
	"slices"
	"testing"
)

// shapes builds a clip's shapes from openings (NaN: no mouth measure), all
// 40 wide, and the measured mask from the indexes listed.
func shapes(open []float64, measured ...int) ([]Shape, []bool) {
	s := make([]Shape, len(open))
	m := make([]bool, len(open))
	for i, o := range open {
		if !math.IsNaN(o) {
			s[i] = Shape{Opening: o, Width: 40, OK: true}
		}
	}
	for _, i := range measured {
		m[i] = true
	}
	return s, m
}

func TestRefine(t *testing.T) {
	nan := math.NaN()
	// Measured every third frame; the 90th percentile of the measured
	// openings is 0.3, so the level is 0.06.
	open := []float64{0.3, 0, 0, 0.3, 0, 0, 0.01, 0, 0, 0.02, 0, 0, 0.3, 0, 0, 0.25}
	every3 := []int{0, 3, 6, 9, 12, 15}
	tests := []struct {
		name     string
		open     []float64
		measured []int
		want     []int
	}{
		{name: "all measured", open: []float64{0.3, 0.01, 0.2}, measured: []int{0, 1, 2}},
		{name: "open to open and closed to closed are interpolated; a crossing is measured",
			open: open, measured: every3, want: []int{4, 5, 10, 11}},
		{name: "a gap next to a lost face is measured",
			open: []float64{0.3, 0, 0, nan, 0, 0, 0.3}, measured: []int{0, 3, 6}, want: []int{1, 2, 4, 5}},
		{name: "frames before the first and after the last measured are measured",
			open: []float64{0, 0.3, 0, 0.3, 0}, measured: []int{1, 3}, want: []int{0, 4}},
		{name: "no mouth measured: nothing to place it from",
			open: []float64{nan, 0, 0, nan}, measured: []int{0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, m := shapes(tt.open, tt.measured...)
			if got := Refine(s, m); !slices.Equal(got, tt.want) {
				t.Errorf("Refine = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInterpolate(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		open     []float64
		measured []int
		want     []float64 // NaN: no measure
	}{
		{name: "linear between measured frames",
			open: []float64{0.3, 9, 9, 0, 9, 0.1}, measured: []int{0, 3, 5}, want: []float64{0.3, 0.2, 0.1, 0, 0.05, 0.1}},
		{name: "no measure next to a lost face",
			open: []float64{0.3, 9, nan, 9, 0.1}, measured: []int{0, 2, 4}, want: []float64{0.3, nan, nan, nan, 0.1}},
		{name: "ends without a measured neighbour keep their shape",
			open: []float64{9, 0.2, 9, 0.4, 9}, measured: []int{1, 3}, want: []float64{9, 0.2, 0.3, 0.4, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, m := shapes(tt.open, tt.measured...)
			Interpolate(s, m)
			for i, w := range tt.want {
				if math.IsNaN(w) != !s[i].OK || (s[i].OK && math.Abs(s[i].Opening-w) > 1e-12) {
					t.Errorf("frame %d: %+v, want opening %v", i, s[i], w)
				}
				if s[i].OK && s[i].Width != 40 {
					t.Errorf("frame %d: width %v, want 40", i, s[i].Width)
				}
			}
		})
	}
}
