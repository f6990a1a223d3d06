package faceeval

import (
	"errors"
	"fmt"
	"testing"

	"github.com/trustid/trustid/authn/face"
)

func TestCrossImpostors(t *testing.T) {
	v := func(x, y float32) []float32 { return []float32{x, y} }
	embs := map[string]embedded{
		"A/A_0001.jpg": {Vec: v(1, 0)},
		"A/A_0002.jpg": {Vec: v(1, 0)},
		"B/B_0001.jpg": {Vec: v(0, 1)},
		"C/C_0001.jpg": {Err: "no face found"},
	}
	paths := []string{"A/A_0001.jpg", "A/A_0002.jpg", "B/B_0001.jpg", "C/C_0001.jpg", "B/B_0001.jpg"}
	got := crossImpostors(embs, paths)
	// A1-B, A2-B only: same identity and failed images are left out, duplicates once.
	if len(got) != 2 {
		t.Fatalf("got %d impostor pairs %v, want 2", len(got), got)
	}
	for _, s := range got {
		if s != 0 {
			t.Errorf("score %v, want 0", s)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&face.QualityError{Reason: face.ErrNoFace}, "no face found"},
		{fmt.Errorf("x: %w", face.ErrTruncated), "image truncated"},
		{errors.New("other"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := reason(tt.err); got != tt.want {
				t.Errorf("reason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFarTable(t *testing.T) {
	imp := make([]float64, 1000)
	for i := range imp {
		imp[i] = float64(i) / 1000
	}
	gen := []float64{0.5, 0.995, 0.9995}
	tab := farTable(gen, imp, []float64{1e-2, 1e-3, 1e-4})
	if !tab[0].Resolved || !tab[1].Resolved || tab[2].Resolved {
		t.Errorf("resolved flags %+v", tab)
	}
	if tab[0].TAR != round6(2.0/3) || tab[1].TAR != round6(1.0/3) {
		t.Errorf("TARs %+v", tab)
	}
}
