package faceeval

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/trustid/trustid/authn/face"
)

func TestParsePathPairs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Pair
		wantErr bool
	}{
		{"any layout with populations", "# comment\nea/a.jpg ea/b.jpg diff east_asian\n/abs/n/1.png n/2.png same nuaa\n", []Pair{
			{A: "ea/a.jpg", B: "ea/b.jpg", Population: "east_asian", Paths: true},
			{A: "/abs/n/1.png", B: "n/2.png", Same: true, Set: 1, Population: "nuaa", Paths: true},
		}, false},
		{"1 and 0, no population", "x.jpg y.jpg 1\nx.jpg z.jpg 0\n", []Pair{
			{A: "x.jpg", B: "y.jpg", Same: true, Paths: true},
			{A: "x.jpg", B: "z.jpg", Paths: true},
		}, false},
		{"mixed with LFW lines", "X 1 2\nx.jpg z.jpg diff\n", []Pair{
			{A: "X/X_0001.jpg", B: "X/X_0002.jpg", Same: true},
			{A: "x.jpg", B: "z.jpg", Paths: true},
		}, false},
		{"bad label", "x.jpg y.jpg maybe\n", nil, true},
		{"self pair", "x.jpg ./x.jpg same\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePairs(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// seq is n impostor scores 0, 1/n, ..., (n-1)/n.
func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i) / float64(n)
	}
	return s
}

func TestMeasure(t *testing.T) {
	imp := seq(10000) // 0 .. 0.9999
	gen := []float64{0.5, 0.99, 0.9995, 1}
	tests := []struct {
		name               string
		label, thr         float64
		wantFA             int
		wantFAR, wantRatio float64
		wantTAR            float64
		wantResolved       bool
	}{
		{"label holds exactly", 1e-3, 0.99, 100, 1e-2, 10, 0.75, true},
		{"ten accepted", 1e-3, 0.999, 10, 1e-3, 1, 0.5, true},
		{"one accepted", 1e-4, 0.9999, 1, 1e-4, 1, 0.25, true},
		{"none accepted, unresolved", 1e-5, 1, 0, 0, 0, 0.25, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Measure(Scores{gen, imp}, tt.label, tt.thr)
			if p.FalseAccepts != tt.wantFA || p.FAR != tt.wantFAR || p.Ratio != tt.wantRatio || p.TAR != tt.wantTAR ||
				p.Resolved != tt.wantResolved || p.Impostors != 10000 || p.Genuine != 4 {
				t.Errorf("got %+v", p)
			}
		})
	}
}

func TestAtOperatingPoints(t *testing.T) {
	// A threshold calibrated on one half holds on an independent half of
	// the same distribution within sampling error.
	cal, held := seq(100000), seq(100000)
	var points []face.OperatingPoint
	for _, far := range []float64{1e-3, 1e-4} {
		thr, ok := ThresholdAtFAR(cal, far)
		if !ok {
			t.Fatal("unresolved")
		}
		points = append(points, face.OperatingPoint{FAR: far, Threshold: thr})
	}
	got := AtOperatingPoints(Scores{Genuine: []float64{0.9995, 0.99995}, Impostor: held}, points)
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	for i, p := range got {
		if p.Label != points[i].FAR || p.Ratio > 1 || p.Impostors != 100000 {
			t.Errorf("point %d: %+v", i, p)
		}
	}
	if got[0].TAR != 1 || got[1].TAR != 0.5 {
		t.Errorf("TARs %v %v", got[0].TAR, got[1].TAR)
	}
}

func ptr(v float64) *float64 { return &v }

func TestPerPopulation(t *testing.T) {
	points := []face.OperatingPoint{{FAR: 0.5, Threshold: 0.5}}
	tests := []struct {
		name   string
		pairs  []Pair
		scores []float64
		failed []bool
		want   []PopulationRow
	}{
		{"no population named", []Pair{{Same: true}, {}}, []float64{0.9, 0.1}, []bool{false, false}, nil},
		{"two populations and one unnamed", []Pair{
			{Same: true, Population: "lfw"}, {Population: "lfw"}, {Population: "lfw"},
			{Same: true, Population: "east_asian"}, {Population: "east_asian"}, {Same: true, Population: "east_asian"},
			{Same: true},
		}, []float64{0.9, 0.1, 0.6, 0.8, 0.7, -2, 0.9}, []bool{false, false, false, false, false, true, false}, []PopulationRow{
			{Population: "", Pairs: 1, Same: 1, AtPoints: []AtPoint{{Label: 0.5, Threshold: 0.5, TAR: 1, Genuine: 1}}},
			{Population: "east_asian", Pairs: 3, Same: 2, Different: 1, FailedPairs: 1, EER: ptr(0.75),
				AtPoints: []AtPoint{{Label: 0.5, Threshold: 0.5, FAR: 1, FalseAccepts: 1, Impostors: 1, Ratio: 2, TAR: 0.5, Genuine: 2}}},
			{Population: "lfw", Pairs: 3, Same: 1, Different: 2, EER: ptr(0),
				AtPoints: []AtPoint{{Label: 0.5, Threshold: 0.5, FAR: 0.5, FalseAccepts: 1, Impostors: 2, Ratio: 1, TAR: 1, Genuine: 1, Resolved: true}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PerPopulation(tt.pairs, tt.scores, tt.failed, points)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestStrictest(t *testing.T) {
	by := map[string]map[float64]float64{
		"lfw":        {1e-3: 0.35, 1e-4: 0.43, 1e-5: 0.50},
		"east_asian": {1e-3: 0.40, 1e-4: 0.47, 1e-5: 0.49},
		"partial":    {1e-3: 0.30},
	}
	thr, from := Strictest(by, []float64{1e-3, 1e-4, 1e-5})
	want := map[float64]float64{1e-3: 0.40, 1e-4: 0.47, 1e-5: 0.50}
	wantFrom := map[float64]string{1e-3: "east_asian", 1e-4: "east_asian", 1e-5: "lfw"}
	if !reflect.DeepEqual(thr, want) || !reflect.DeepEqual(from, wantFrom) {
		t.Errorf("got %v %v", thr, from)
	}
}

func TestHeldOut(t *testing.T) {
	n, held := 20000, 0
	for i := range n {
		id := fmt.Sprintf("train_%d.jpg", i)
		h := HeldOut(id, 1, 0.5)
		if h != HeldOut(id, 1, 0.5) {
			t.Fatal("not deterministic")
		}
		if h {
			held++
		}
	}
	if math.Abs(float64(held)/float64(n)-0.5) > 0.02 {
		t.Errorf("held out %d of %d", held, n)
	}
	same := 0
	for i := range 1000 {
		id := fmt.Sprint(i)
		if HeldOut(id, 1, 0.5) == HeldOut(id, 2, 0.5) {
			same++
		}
	}
	if same > 600 || same < 400 {
		t.Errorf("seeds 1 and 2 agree on %d of 1000", same)
	}
}

func TestSetIdentity(t *testing.T) {
	for p, want := range map[string]string{
		"Abel_Pacheco/Abel_Pacheco_0001.jpg": "Abel_Pacheco",
		"0001/0001_00_00_01_0.jpg":           "0001",
		"train_1.jpg":                        "train_1.jpg",
	} {
		if got := SetIdentity(p); got != want {
			t.Errorf("SetIdentity(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestNearDuplicates(t *testing.T) {
	u := func(x, y float32) []float32 {
		n := float32(math.Sqrt(float64(x*x + y*y)))
		return []float32{x / n, y / n}
	}
	vecs := [][]float32{u(1, 0), u(1, 0.01), u(0, 1), u(1, 0.02), u(0.01, 1)}
	ids := []string{"a", "b", "c", "a", "c"}
	drop, pairs := NearDuplicates(vecs, ids, 0.9)
	// a~b (different ids): drop b; a~a(3) same identity: kept; c~c(4) same identity: kept.
	if pairs != 1 || !reflect.DeepEqual(drop, map[int]bool{1: true}) {
		t.Errorf("drop %v, pairs %d", drop, pairs)
	}
}

func TestParseDataSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    DataSpec
		wantErr bool
	}{
		{"east_asian=/d/fairface", DataSpec{"east_asian", "/d/fairface", 0}, false},
		{"lfw:5000=/d/lfw", DataSpec{"lfw", "/d/lfw", 5000}, false},
		{"lfw:0=/d/lfw", DataSpec{}, true},
		{"=/d", DataSpec{}, true},
		{"x", DataSpec{}, true},
		{"a/b=/d", DataSpec{}, true},
		{"strictest=/d", DataSpec{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDataSpec(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDataSpec(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestTails(t *testing.T) {
	xs := []float64{0.1, 0.2, 0.2, 0.5}
	grid := Grid(0, 0.5, 0.25)
	if len(grid) != 3 {
		t.Fatalf("grid %v", grid)
	}
	above := TailAbove(xs, grid)
	below := TailBelow(xs, grid)
	if above.N != 4 || !reflect.DeepEqual(above.Counts, [][2]float64{{0, 4}, {0.25, 1}, {0.5, 1}}) {
		t.Errorf("above %+v", above)
	}
	if !reflect.DeepEqual(below.Counts, [][2]float64{{0, 0}, {0.25, 3}, {0.5, 3}}) {
		t.Errorf("below %+v", below)
	}
}

func TestManifestSelect(t *testing.T) {
	const m = "file\tsplit\tage_group\na.jpg\ttrain\t0-2\nb.jpg\tval\t20-29\nc.jpg\ttrain\t3-9\n"
	got, err := ManifestSelect(m, "age_group", map[string]bool{"0-2": true, "3-9": true})
	if err != nil || !reflect.DeepEqual(got, map[string]bool{"a.jpg": true, "c.jpg": true}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ManifestSelect(m, "age", nil); err == nil {
		t.Error("unknown column accepted")
	}
	if _, err := ManifestSelect("file\tx\na.jpg\n", "x", nil); err == nil {
		t.Error("short line accepted")
	}
}

// TestCohortNorm: AS-norm's statistics leave the image itself out of the
// cohort and take the k best scores; a pair's score is the mean of its two
// z-scores.
func TestCohortNorm(t *testing.T) {
	unit := func(x, y float32) []float32 {
		n := float32(math.Hypot(float64(x), float64(y)))
		return []float32{x / n, y / n}
	}
	cohort := [][]float32{unit(1, 0), unit(0, 1), unit(1, 1)}
	c := newCohortNorm(cohort, []string{"a", "b", "c"}, 2)
	// "a" = (1,0) in the cohort: its scores against b and c are 0 and 0.7071.
	m, sd := c.stat("a", cohort[0])
	if math.Abs(m-0.35355) > 1e-4 || math.Abs(sd-0.35355) > 1e-4 {
		t.Fatalf("stat of a: %g %g, want 0.35355 0.35355 (itself left out)", m, sd)
	}
	// A probe outside the cohort keeps all three, the best two count.
	p := unit(1, 0)
	m2, _ := c.stat("probe", p)
	if math.Abs(m2-(1+0.70711)/2) > 1e-4 {
		t.Fatalf("stat of probe: %g, want %g", m2, (1+0.70711)/2)
	}
	got := c.score("a", cohort[0], "probe", p, 1)
	m, sd = c.stat("a", cohort[0])
	m2, sd2 := c.stat("probe", p)
	if want := 0.5 * ((1-m)/sd + (1-m2)/sd2); math.Abs(got-want) > 1e-9 {
		t.Fatalf("score %g, want %g", got, want)
	}
}
