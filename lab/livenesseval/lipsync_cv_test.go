package livenesseval

import (
	"testing"

	"github.com/trustid/trustid/liveness/lipsync"
)

func TestLvRuleThreshold(t *testing.T) {
	tests := []struct {
		name string
		S    [][]float64
		skip int
		want float64
	}{
		{"separable", [][]float64{{0.9, 0.1, 0.2}, {0.3, 0.8, 0.1}, {0.2, 0.1, 0.7}}, -1, 0.5},
		// 0.6 is a swapped pair above a genuine 0.5: rejecting the genuine
		// pair costs 1/3, accepting the swapped one 1/6, so the rule accepts.
		{"overlap", [][]float64{{0.9, 0.6, 0.2}, {0.3, 0.5, 0.1}, {0.2, 0.1, 0.7}}, -1, 0.4},
		{"skip the overlapping clip", [][]float64{{0.9, 0.6, 0.2}, {0.3, 0.5, 0.1}, {0.2, 0.1, 0.7}}, 1, 0.45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lvRuleThreshold(tt.S, tt.skip); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("threshold %.3f, want %.3f", got, tt.want)
			}
		})
	}
}

func TestLvCrossValidate(t *testing.T) {
	// Candidate 0 separates the clips, candidate 1 is reversed; every fold
	// must pick candidate 0 and make no error.
	good := [][]float64{{0.9, 0.1, 0.2}, {0.3, 0.8, 0.1}, {0.2, 0.1, 0.7}}
	bad := [][]float64{{0.1, 0.9, 0.8}, {0.7, 0.2, 0.9}, {0.8, 0.9, 0.3}}
	s := lvCrossValidate([]string{"a", "b", "c"}, []lvCVConfig{{Name: "good"}, {Name: "bad"}}, [][][]float64{good, bad})
	if s.GenuineRejected != 0 || s.SwappedAccepted != 0 || s.SwappedTested != 12 || s.MarginAUC != 1 {
		t.Errorf("summary %+v", s)
	}
	for _, f := range s.Folds {
		if f.Config != "good" {
			t.Errorf("fold %s picked %s", f.HeldOut, f.Config)
		}
	}
}

func TestLvCVGrid(t *testing.T) {
	grid := lvCVGrid()
	if len(grid) != 79 {
		t.Errorf("%d candidates, want 79 (40 of the base grid + 39)", len(grid))
	}
	seen := map[string]bool{}
	for i, c := range grid {
		if seen[c.Name] {
			t.Errorf("duplicate candidate %q", c.Name)
		}
		seen[c.Name] = true
		if base := i < lvCVGridBase; base != (c.Cfg.Offset == nil && !c.Cfg.Tilt) {
			t.Errorf("candidate %d %q: in the base grid %v, but offset %v tilt %v", i, c.Name, base, c.Cfg.Offset, c.Cfg.Tilt)
		}
	}
	if def := lvConfigName(lvSyncConfig{Config: lipsync.DefaultConfig}); !seen[def] {
		t.Errorf("default %q not among the candidates", def)
	}
}
