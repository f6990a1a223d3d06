package faceeval

// Populations: score sets per population, the calibration/held-out split,
// the near-duplicate check and the numbers reported at operating points.
// Free of OpenCV, so the arithmetic is tested on synthetic scores.

import (
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trustid/trustid/authn/face"
)

// SetIdentity is the identity of an image path relative to a data set's
// root: its folder when it has one (LFW's NAME/NAME_NNNN.jpg, NUAA's
// SUBJECT/x.jpg), else the file itself (FairFace: every file a different
// photo, assumed a different person).
func SetIdentity(p string) string {
	if d := filepath.Dir(p); d != "." {
		return d
	}
	return p
}

// HeldOut says whether an identity belongs to the held-out part: a seeded
// hash of the identity, so the split is the same on every run and for
// every image of the identity, and independent of file order.
func HeldOut(identity string, seed uint64, fraction float64) bool {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s", seed, identity)
	// top 53 bits as a uniform number in [0, 1)
	u := float64(h.Sum64()>>11) / (1 << 53)
	return u < fraction
}

// NearDuplicates finds images of different identities whose embeddings are
// closer than thr (cosine): the same person or the same photo under two
// names. It keeps the first of each such pair (in the given order) and
// returns the indices to drop and the number of pairs found.
func NearDuplicates(vecs [][]float32, ids []string, thr float64) (drop map[int]bool, pairs int) {
	drop = map[int]bool{}
	for i := range vecs {
		if drop[i] {
			continue
		}
		for j := i + 1; j < len(vecs); j++ {
			if ids[i] == ids[j] {
				continue
			}
			if float64(dot(vecs[i], vecs[j])) > thr {
				pairs++
				drop[j] = true
			}
		}
	}
	return drop, pairs
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// Scores are the genuine and impostor scores of one population (or one
// part of it).
type Scores struct {
	Genuine  []float64
	Impostor []float64
}

// Add appends another part's scores.
func (s *Scores) Add(o Scores) {
	s.Genuine = append(s.Genuine, o.Genuine...)
	s.Impostor = append(s.Impostor, o.Impostor...)
}

// AtPoint is what an operating point does on one population's scores.
type AtPoint struct {
	Label        float64 `json:"far_label"`
	Threshold    float64 `json:"threshold"`
	FAR          float64 `json:"far"`
	FalseAccepts int     `json:"false_accepts"`
	Impostors    int     `json:"impostors"`
	// Ratio is FAR / label: at most 1 means the label holds.
	Ratio   float64 `json:"far_over_label"`
	TAR     float64 `json:"tar"`
	Genuine int     `json:"genuine"`
	// Resolved: impostors*label >= 1, so a FAR near the label can be seen.
	Resolved bool `json:"resolved"`
}

// Measure applies a threshold (score >= threshold is a match) to scores.
func Measure(s Scores, label, thr float64) AtPoint {
	fa := countAtLeast(s.Impostor, thr)
	p := AtPoint{Label: label, Threshold: round6(thr), FalseAccepts: fa, Impostors: len(s.Impostor),
		Genuine: len(s.Genuine), Resolved: float64(len(s.Impostor))*label >= 1}
	if len(s.Impostor) > 0 {
		p.FAR = sig3(float64(fa) / float64(len(s.Impostor)))
		p.Ratio = sig3(float64(fa) / float64(len(s.Impostor)) / label)
	}
	if len(s.Genuine) > 0 {
		p.TAR = round6(float64(countAtLeast(s.Genuine, thr)) / float64(len(s.Genuine)))
	}
	return p
}

func countAtLeast(xs []float64, thr float64) int {
	n := 0
	for _, x := range xs {
		if x >= thr {
			n++
		}
	}
	return n
}

// sig3 rounds to 3 significant digits (FARs span orders of magnitude).
func sig3(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// Strictest is, per false-accept rate, the highest threshold among the
// populations' and the population it came from: with it the measured FAR
// of every population is at most the label.
func Strictest(byPop map[string]map[float64]float64, fars []float64) (thr map[float64]float64, from map[float64]string) {
	thr, from = map[float64]float64{}, map[float64]string{}
	names := make([]string, 0, len(byPop))
	for n := range byPop {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, far := range fars {
		first := true
		for _, n := range names {
			t, ok := byPop[n][far]
			if !ok {
				continue
			}
			if first || t > thr[far] {
				thr[far], from[far], first = t, n, false
			}
		}
	}
	return thr, from
}

// Tail is a compact distribution of scores: how many are >= each grid
// value (impostors) or < it (genuine), enough to check a threshold without
// the raw scores.
type Tail struct {
	N      int          `json:"n"`
	Counts [][2]float64 `json:"counts"` // [grid value, count]
}

// TailAbove counts the scores >= each grid value.
func TailAbove(xs []float64, grid []float64) Tail {
	s := sortedCopy(xs)
	t := Tail{N: len(s)}
	for _, g := range grid {
		t.Counts = append(t.Counts, [2]float64{round6(g), float64(len(s) - sort.SearchFloat64s(s, g))})
	}
	return t
}

// TailBelow counts the scores < each grid value.
func TailBelow(xs []float64, grid []float64) Tail {
	s := sortedCopy(xs)
	t := Tail{N: len(s)}
	for _, g := range grid {
		t.Counts = append(t.Counts, [2]float64{round6(g), float64(sort.SearchFloat64s(s, g))})
	}
	return t
}

func sortedCopy(xs []float64) []float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s
}

// Grid is lo, lo+step, ... <= hi.
func Grid(lo, hi, step float64) []float64 {
	var g []float64
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi+step/2 {
			return g
		}
		g = append(g, v)
	}
}

// DataSpec is one data set on the calibrate-face command line:
// "POPULATION=DIR", or "POPULATION:MAX=DIR" to embed a seeded sample of at
// most MAX of its images.
type DataSpec struct {
	Population string
	Dir        string
	Max        int // 0: all images
}

// Name is population:parent/folder, unique per set.
func (d DataSpec) Name() string {
	return d.Population + ":" + filepath.Base(filepath.Dir(d.Dir)) + "/" + filepath.Base(d.Dir)
}

// ParseDataSpec parses "POPULATION=DIR" or "POPULATION:MAX=DIR".
func ParseDataSpec(s string) (DataSpec, error) {
	bad := fmt.Errorf("data set %q: want POPULATION=DIR or POPULATION:MAX=DIR (population a plain name such as east_asian)", s)
	pop, dir, ok := strings.Cut(s, "=")
	if !ok || dir == "" {
		return DataSpec{}, bad
	}
	d := DataSpec{Population: pop, Dir: dir}
	if p, n, ok := strings.Cut(pop, ":"); ok {
		m, err := strconv.Atoi(n)
		if err != nil || m <= 0 {
			return DataSpec{}, bad
		}
		d.Population, d.Max = p, m
	}
	if d.Population == "" || strings.ContainsAny(d.Population, "/ \t:") || d.Population == face.Strictest {
		return DataSpec{}, bad
	}
	return d, nil
}

// dataFlags collects repeated POPULATION=DIR flags.
type dataFlags []DataSpec

func (d *dataFlags) String() string { return fmt.Sprint(*d) }
func (d *dataFlags) Set(s string) error {
	spec, err := ParseDataSpec(s)
	if err != nil {
		return err
	}
	*d = append(*d, spec)
	return nil
}

// AtOperatingPoints measures each shipped operating point on scores.
func AtOperatingPoints(s Scores, points []face.OperatingPoint) []AtPoint {
	out := make([]AtPoint, 0, len(points))
	for _, p := range points {
		out = append(out, Measure(s, p.FAR, p.Threshold))
	}
	return out
}

// PopulationRow is one line of eval-face's per_population table.
type PopulationRow struct {
	Population  string `json:"population"`
	Pairs       int    `json:"pairs"`
	Same        int    `json:"same_pairs"`
	Different   int    `json:"different_pairs"`
	FailedPairs int    `json:"failed_pairs"`
	// EER is nil when the population lacks genuine or impostor pairs.
	EER      *float64  `json:"eer,omitempty"`
	AtPoints []AtPoint `json:"at_operating_points"`
}

// PerPopulation groups the pairs by their population (a failed pair has
// failed[i] set and counts with its score, a non-match) and measures each
// group; nil when no pair names a population.
func PerPopulation(pairs []Pair, scores []float64, failed []bool, points []face.OperatingPoint) []PopulationRow {
	named := false
	by := map[string]*Scores{}
	rows := map[string]*PopulationRow{}
	var names []string
	for i, p := range pairs {
		if p.Population != "" {
			named = true
		}
		if by[p.Population] == nil {
			by[p.Population] = &Scores{}
			rows[p.Population] = &PopulationRow{Population: p.Population}
			names = append(names, p.Population)
		}
		r := rows[p.Population]
		r.Pairs++
		if failed[i] {
			r.FailedPairs++
		}
		if p.Same {
			r.Same++
			by[p.Population].Genuine = append(by[p.Population].Genuine, scores[i])
		} else {
			r.Different++
			by[p.Population].Impostor = append(by[p.Population].Impostor, scores[i])
		}
	}
	if !named {
		return nil
	}
	sort.Strings(names)
	out := make([]PopulationRow, 0, len(names))
	for _, n := range names {
		r := rows[n]
		if len(by[n].Genuine) > 0 && len(by[n].Impostor) > 0 {
			e, _ := EER(by[n].Genuine, by[n].Impostor)
			e = round6(e)
			r.EER = &e
		}
		r.AtPoints = AtOperatingPoints(*by[n], points)
		out = append(out, *r)
	}
	return out
}

// ManifestSelect reads a tab-separated manifest (a header row naming the
// columns, the first column the file name) and returns the files whose
// column has one of the values.
func ManifestSelect(manifest, column string, values map[string]bool) (map[string]bool, error) {
	lines := strings.Split(strings.TrimRight(manifest, "\n"), "\n")
	if len(lines) == 0 {
		return nil, fmt.Errorf("manifest: empty")
	}
	head := strings.Split(lines[0], "\t")
	col := -1
	for i, h := range head {
		if h == column {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("manifest has no column %q (has %s)", column, strings.Join(head, ", "))
	}
	out := map[string]bool{}
	for n, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != len(head) {
			return nil, fmt.Errorf("manifest line %d: %d fields, header has %d", n+2, len(f), len(head))
		}
		if values[f[col]] {
			out[f[0]] = true
		}
	}
	return out, nil
}
