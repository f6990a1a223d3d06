package index

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func randVec(r *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return normalized(v)
}

// near returns a unit vector at cosine about c from v.
func near(r *rand.Rand, v []float32, c float64) []float32 {
	n := randVec(r, len(v))
	out := make([]float32, len(v))
	s := math.Sqrt(1 - c*c)
	for i := range v {
		out[i] = float32(c)*v[i] + float32(s)*n[i]
	}
	return normalized(out)
}

func TestDotKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const d, rows = 512, 37
	q := make([]int16, d)
	codes := make([]int8, d*rows)
	for i := range q {
		q[i] = int16(r.IntN(255) - 127)
	}
	for i := range codes {
		codes[i] = int8(r.IntN(255) - 127)
	}
	// extremes must not overflow int32
	for i := 0; i < d; i++ {
		codes[i] = -127
		q[i] = -127
	}
	want := make([]int32, rows)
	for j := range rows {
		var s int32
		for i := range d {
			s += int32(q[i]) * int32(codes[j*d+i])
		}
		want[j] = s
	}
	qq := &query{i16: q, u8: make([]uint8, d)}
	for i, v := range q {
		qq.u8[i] = uint8(v + 128)
	}
	got := make([]int32, rows)
	dotRows(qq, codes, got)
	if !slices.Equal(got, want) {
		t.Fatalf("dotRows differs from the reference:\n%v\n%v", got[:4], want[:4])
	}
	testKernels(t, qq, codes, want)
	dotRowsGo(q, codes, got)
	if !slices.Equal(got, want) {
		t.Fatalf("dotRowsGo differs from the reference")
	}
}

func TestSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const d, n = 512, 3000
	vecs := map[string][]float32{}
	x, err := New(Config{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("t%04d", i)
		vecs[id] = randVec(r, d)
		if err := x.Add(id, vecs[id]); err != nil {
			t.Fatal(err)
		}
	}
	dropped, err := New(Config{DropFloats: true, Fetch: func(id string) ([]float32, bool) {
		v, ok := vecs[id]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := dropped.Load(func(yield func(string, []float32) bool) {
		for id, v := range vecs {
			if !yield(id, v) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	exact := func(q []float32, k int) []Match {
		var all []Match
		for id, v := range vecs {
			all = append(all, Match{id, dotF32(q, v)})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Score > all[j].Score })
		return all[:k]
	}
	tests := []struct {
		name string
		q    []float32
		k    int
	}{
		{"duplicate of t0042", near(r, vecs["t0042"], 0.7), 1},
		{"close pair", near(r, vecs["t1000"], 0.5), 5},
		{"random query", randVec(r, d), 10},
	}
	for _, tt := range tests {
		for _, idx := range []struct {
			name string
			x    *Index
		}{{"floats", x}, {"fetch", dropped}} {
			t.Run(tt.name+"/"+idx.name, func(t *testing.T) {
				got, err := idx.x.Search(tt.q, tt.k)
				if err != nil {
					t.Fatal(err)
				}
				want := exact(tt.q, tt.k)
				// The top hit must be exact; for random queries the int8
				// pre-selection may swap near-ties further down.
				if got[0].ID != want[0].ID || math.Abs(float64(got[0].Score-want[0].Score)) > 1e-5 {
					t.Errorf("top = %v, want %v", got[0], want[0])
				}
				if len(got) != tt.k {
					t.Errorf("%d results, want %d", len(got), tt.k)
				}
			})
		}
	}
}

func TestAddRemove(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x, _ := New(Config{Dim: 64})
	a, b, c := randVec(r, 64), randVec(r, 64), randVec(r, 64)
	for id, v := range map[string][]float32{"a": a, "b": b, "c": c} {
		if err := x.Add(id, v); err != nil {
			t.Fatal(err)
		}
	}
	if !x.Remove("a") || x.Remove("a") {
		t.Fatal("Remove: first must succeed, second fail")
	}
	if x.Len() != 2 {
		t.Fatalf("Len = %d", x.Len())
	}
	for id, v := range map[string][]float32{"b": b, "c": c} {
		m, _ := x.Search(v, 1)
		if len(m) != 1 || m[0].ID != id || m[0].Score < 0.9999 {
			t.Errorf("search %s after swap-delete: %v", id, m)
		}
	}
	// Replacing keeps one row.
	if err := x.Add("b", c); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 2 {
		t.Fatalf("Len after replace = %d", x.Len())
	}
	if err := x.Add("", a); !errors.Is(err, ErrEmptyID) {
		t.Errorf("empty id: %v", err)
	}
	if err := x.Add("z", a[:10]); !errors.Is(err, ErrDim) {
		t.Errorf("short vector: %v", err)
	}
	if _, err := x.Search(a[:3], 1); !errors.Is(err, ErrDim) {
		t.Errorf("short query: %v", err)
	}
	empty, _ := New(Config{})
	if m, err := empty.Search(make([]float32, 512), 3); err != nil || len(m) != 0 {
		t.Errorf("empty index: %v %v", m, err)
	}
}

func TestSumCodes(t *testing.T) {
	x, _ := New(Config{Dim: 64})
	v := make([]float32, 64)
	v[0] = 1 // quantises to a single 127
	if err := x.Add("a", v); err != nil {
		t.Fatal(err)
	}
	if got := x.SumCodes(); got != 127 {
		t.Errorf("SumCodes = %d, want 127", got)
	}
}
