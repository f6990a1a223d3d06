package faceeval

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParsePairs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Pair
		err  error
	}{
		{"same and different", "10\t300\nAbel_Pacheco\t1\t4\nA_B\t2\tC_D\t13\n", []Pair{
			{A: "Abel_Pacheco/Abel_Pacheco_0001.jpg", B: "Abel_Pacheco/Abel_Pacheco_0004.jpg", Same: true, Set: 0},
			{A: "A_B/A_B_0002.jpg", B: "C_D/C_D_0013.jpg", Same: false, Set: 0},
		}, nil},
		{"sets", "X 1 2\nY 1 2\nA 1 B 1\nZ 1 2\nC 1 D 1\nE 1 F 1\nW 1 2\n", []Pair{
			{A: "X/X_0001.jpg", B: "X/X_0002.jpg", Same: true, Set: 0},
			{A: "Y/Y_0001.jpg", B: "Y/Y_0002.jpg", Same: true, Set: 0},
			{A: "A/A_0001.jpg", B: "B/B_0001.jpg", Same: false, Set: 0},
			{A: "Z/Z_0001.jpg", B: "Z/Z_0002.jpg", Same: true, Set: 1},
			{A: "C/C_0001.jpg", B: "D/D_0001.jpg", Same: false, Set: 1},
			{A: "E/E_0001.jpg", B: "F/F_0001.jpg", Same: false, Set: 1},
			{A: "W/W_0001.jpg", B: "W/W_0002.jpg", Same: true, Set: 2},
		}, nil},
		{"no header", "X 1 2\n", []Pair{{A: "X/X_0001.jpg", B: "X/X_0002.jpg", Same: true, Set: 0}}, nil},
		{"bad number", "X 1 zz\n", nil, ErrPairs},
		{"too many fields", "a 1 b 2 c\n", nil, ErrPairs},
		{"path in name", "../etc 1 2\n", nil, ErrPairs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePairs(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v", got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("pair %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	// genuine 0.5..0.9, impostors 0.0..0.4 plus one impostor at 0.6
	gen := []float64{0.5, 0.6, 0.7, 0.8, 0.9}
	imp := []float64{0.0, 0.1, 0.2, 0.3, 0.4, 0.6}
	thr := BestThreshold(append(append([]float64{}, gen...), imp...),
		[]bool{true, true, true, true, true, false, false, false, false, false, false})
	if thr <= 0.4 || thr > 0.5 {
		t.Errorf("best threshold %.3f, want in (0.4, 0.5]", thr)
	}
	tf, ok := ThresholdAtFAR(imp, 0.2) // one impostor of 6 allowed
	if !ok || Rate(imp, tf) > 0.2 || tf > 0.6 || tf <= 0.4 {
		t.Errorf("threshold at FAR 0.2 = %.3f (accepts %.3f)", tf, Rate(imp, tf))
	}
	if _, ok := ThresholdAtFAR(imp, 1e-3); ok {
		t.Error("FAR 1e-3 cannot be resolved from 6 impostors")
	}
	eer, _ := EER(gen, imp)
	if eer <= 0 || eer > 0.2 {
		t.Errorf("EER %.3f", eer)
	}
	scores := []float64{0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.95, 0.05, 0.85, 0.15}
	same := []bool{true, false, true, false, true, false, true, false, true, false}
	mean, _, folds := KFold(scores, same, 5)
	if mean != 1 || len(folds) != 5 {
		t.Errorf("separable 5-fold accuracy %.3f over %d folds", mean, len(folds))
	}
	if math.IsNaN(mean) {
		t.Error("NaN")
	}
	// Given folds: the threshold of each comes from the others only.
	mean, _, folds = KFoldBy([]float64{0.9, 0.1, 0.6, 0.4, 0.3, 0.2}, []bool{true, false, true, false, true, false}, []int{0, 0, 1, 1, 2, 2})
	if len(folds) != 3 || math.Abs(mean-(1+0.5+0.5)/3) > 1e-9 || folds[2].Threshold != 0.5 {
		t.Errorf("3 given folds: mean %.3f over %v", mean, folds)
	}
}

func TestReadPGM(t *testing.T) {
	good := append([]byte("P5\n# c\n3 2\n255\n"), 1, 2, 3, 4, 5, 6)
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"good", good, nil},
		{"truncated", good[:len(good)-1], ErrPGM},
		{"ascii pgm", []byte("P2\n1 1\n255\n0"), ErrPGM},
		{"huge", []byte("P5\n99999 99999\n255\n"), ErrPGM},
		{"empty", nil, ErrPGM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, pix, err := ReadPGM(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (w != 3 || h != 2 || pix[5] != 6) {
				t.Errorf("got %dx%d %v", w, h, pix)
			}
		})
	}
}

func FuzzReadPGM(f *testing.F) {
	f.Add(append([]byte("P5\n3 2\n255\n"), 1, 2, 3, 4, 5, 6))
	f.Add([]byte("P5 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, h, pix, err := ReadPGM(data)
		if err == nil && len(pix) != w*h {
			t.Fatalf("%dx%d with %d pixels", w, h, len(pix))
		}
	})
}
