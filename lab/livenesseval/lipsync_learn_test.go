package livenesseval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLvEigen(t *testing.T) {
	a := [][]float64{{2, 1, 0}, {1, 2, 0}, {0, 0, 5}}
	vals, vecs := lvEigen(a)
	want := []float64{5, 3, 1}
	for i, v := range want {
		if math.Abs(vals[i]-v) > 1e-9 {
			t.Errorf("eigenvalue %d: %.6f, want %g", i, vals[i], v)
		}
		// A x = lambda x
		for r := range a {
			var s float64
			for c := range a {
				s += a[r][c] * vecs[c][i]
			}
			if math.Abs(s-vals[i]*vecs[r][i]) > 1e-9 {
				t.Errorf("vector %d is not an eigenvector", i)
			}
		}
	}
}

func TestLvCholeskySolve(t *testing.T) {
	a := [][]float64{{4, 2, 0.4}, {2, 5, 1}, {0.4, 1, 3}}
	b := []float64{1, -2, 0.5}
	l := lvCholesky(a)
	x := lvSolveUpper(l, lvSolveLower(l, b))
	for r := range a {
		var s float64
		for c := range a {
			s += a[r][c] * x[c]
		}
		if math.Abs(s-b[r]) > 1e-9 {
			t.Errorf("row %d: %.6f, want %g", r, s, b[r])
		}
	}
}

// TestLvFitCCA plants one shared signal in a visual column and two audio
// columns among noise; the fitted pair must find it on new data.
func TestLvFitCCA(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const clips, T = 4, 200
	vis := make([][][]float64, clips)
	aud := make([][][]float64, clips)
	for c := range vis {
		for range T {
			z := rng.NormFloat64()
			vis[c] = append(vis[c], []float64{rng.NormFloat64(), z + 0.3*rng.NormFloat64(), rng.NormFloat64()})
			aud[c] = append(aud[c], []float64{z + 0.5*rng.NormFloat64(), rng.NormFloat64(), -z + 0.5*rng.NormFloat64()})
		}
	}
	vw := lvView{vis: func(v int) [][]float64 { return vis[v] }, aud: func(v, a, l int) [][]float64 { return aud[a] }}
	m := lvFitCCA(vw, []int{0, 1, 2}, 0.01, 0.01, 1)
	if g, s := m.score(vw, 3, 3, 1), m.score(vw, 3, 0, 1); g < 0.8 || s > 0.3 {
		t.Errorf("held-out genuine %.3f (want > 0.8), mismatched %.3f (want < 0.3)", g, s)
	}
	r := lvFitRidge(vw, []int{0, 1, 2}, 0.01)
	if g := r.score(vw, 3, 3, 1); g < 0.4 {
		t.Errorf("ridge held-out genuine %.3f, want > 0.4 (two of three audio columns are predictable)", g)
	}
}

func TestLvLogistic(t *testing.T) {
	// positives around +1, negatives around -1 on the first feature; the
	// second is noise: the weight must be on the first.
	rng := rand.New(rand.NewPCG(3, 4))
	var x [][]float64
	var y []bool
	for i := range 200 {
		pos := i%5 == 0 // imbalanced, as genuine vs swapped
		m := -1.0
		if pos {
			m = 1
		}
		x, y = append(x, []float64{m + 0.7*rng.NormFloat64(), rng.NormFloat64()}), append(y, pos)
	}
	w := lvLogistic(x, y, 0.01)
	if w[1] < 1 || math.Abs(w[2]) > 0.5*w[1] {
		t.Errorf("weights %v: want a large first weight and a small second", w)
	}
	if lvLogit(w, []float64{1, 0}) <= 0 || lvLogit(w, []float64{-1, 0}) >= 0 {
		t.Errorf("weights %v do not separate the class means", w)
	}
}

func TestLvSelect(t *testing.T) {
	ls := []lvLearner{{Name: "a"}, {Name: "b"}}
	runs := [][]lvNestedFold{
		{{cost: 0.2, innerAUC: 0.9}, {cost: 0.1, innerAUC: 0.9}},
		{{cost: 0.1, innerAUC: 0.8}, {cost: 0.1, innerAUC: 0.95}},
	}
	_, pick := lvSelect(runs, ls)
	if pick[0] != "b" || pick[1] != "b" {
		t.Errorf("picked %v, want [b b] (lower cost, then higher AUC)", pick)
	}
}

func TestLvLearnEdges(t *testing.T) {
	e := lvLearnEdges()
	if len(e) != 9 || math.Abs(e[0]-100) > 1e-6 || math.Abs(e[8]-7000) > 1e-6 {
		t.Fatalf("edges %v", e)
	}
	for i := 1; i < len(e); i++ {
		if e[i] <= e[i-1] {
			t.Errorf("edges not increasing: %v", e)
		}
	}
}

// TestLvNestedRun checks the protocol: no fit of a fold sees its held-out
// clip, inner fits leave out one more clip, and each fold tests the
// held-out clip's genuine pair and its 2(n-1) swapped pairs.
func TestLvNestedRun(t *testing.T) {
	const n = 5
	var held int
	fits := 0
	l := lvLearner{Name: "fake", Fit: func(train []int) func(v, a int) float64 {
		fits++
		for _, c := range train {
			if c == held {
				t.Fatalf("a fit of the fold of clip %d was given it: %v", held, train)
			}
		}
		if len(train) != n-1 && len(train) != n-2 {
			t.Fatalf("fit on %d clips, want %d or %d", len(train), n-1, n-2)
		}
		return func(v, a int) float64 {
			if v == a {
				return 1
			}
			return 0
		}
	}}
	var folds []lvNestedFold
	for k := 0; k < n; k++ {
		held = k
		folds = append(folds, lvNestedRunFold(n, l, k))
	}
	if fits != n*n {
		t.Errorf("%d fits, want %d (per fold: the model and n-1 inner models)", fits, n*n)
	}
	names := []string{"a", "b", "c", "d", "e"}
	s := lvLearnedSummary(names, folds, names, 1)
	if s.GenuineRejected != 0 || s.SwappedAccepted != 0 || s.SwappedTested != n*2*(n-1) || s.MarginAUC != 1 {
		t.Errorf("summary %+v", s)
	}
	for _, f := range folds {
		if f.threshold <= 0 || f.threshold >= 1 {
			t.Errorf("threshold %.3f, want between the swapped 0 and the genuine 1", f.threshold)
		}
	}
}
