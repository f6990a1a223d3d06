package faceeval

// `trustid-lab calibrate-face`: operating points that hold on every
// population served. Each data set's identities are split (seeded) into a
// calibration part, which alone sets the thresholds, and a held-out part on
// which the labels are checked.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/authn/face"
)

// calibrationFARs are the shipped operating points.
var calibrationFARs = []float64{1e-3, 1e-4, 1e-5}

// setScores are one data set's scores after embedding, dedup and split.
type setScores struct {
	spec         DataSpec
	role         string // "calibrate" or "measure"
	images       int    // files found
	sampled      int    // files embedded
	failures     map[string]int
	dupPairs     int
	dupDropped   int
	identities   [2]int // calibration, held-out
	cal, heldout Scores
}

// cohortNorm is adaptive symmetric score normalisation (AS-norm, as in
// speaker verification; Cumani et al. 2011): each image's score against
// the k most similar cohort images gives a mean and spread, and a pair's
// score is the mean of its two z-scores. A service would compute an
// enrolled template's statistics once at enrolment and a probe's once per
// check (one pass over the cohort); here it is measured before anyone
// builds it (issue 18, point 2).
type cohortNorm struct {
	vecs  [][]float32
	paths map[string]bool
	k     int
	mu    sync.Mutex
	stats map[string][2]float64
}

func newCohortNorm(vecs [][]float32, paths []string, k int) *cohortNorm {
	c := &cohortNorm{vecs: vecs, paths: map[string]bool{}, k: k, stats: map[string][2]float64{}}
	for _, p := range paths {
		c.paths[p] = true
	}
	return c
}

// stat is the mean and standard deviation of v's k best cohort scores
// (v itself, when in the cohort, left out).
func (c *cohortNorm) stat(path string, v []float32) (float64, float64) {
	c.mu.Lock()
	st, ok := c.stats[path]
	c.mu.Unlock()
	if ok {
		return st[0], st[1]
	}
	sc := make([]float64, 0, len(c.vecs))
	for _, u := range c.vecs {
		x := float64(face.Cosine(v, u))
		if c.paths[path] && x > 0.99999 {
			continue // itself
		}
		sc = append(sc, x)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(sc)))
	sc = sc[:min(c.k, len(sc))]
	var m, q float64
	for _, x := range sc {
		m += x
	}
	m /= float64(max(1, len(sc)))
	for _, x := range sc {
		q += (x - m) * (x - m)
	}
	sd := math.Max(1e-6, math.Sqrt(q/float64(max(1, len(sc)))))
	c.mu.Lock()
	c.stats[path] = [2]float64{m, sd}
	c.mu.Unlock()
	return m, sd
}

func (c *cohortNorm) score(pa string, a []float32, pb string, b []float32, s float64) float64 {
	ma, sa := c.stat(pa, a)
	mb, sb := c.stat(pb, b)
	return 0.5 * ((s-ma)/sa + (s-mb)/sb)
}

// sample returns a seeded sample of at most n of paths, sorted (all of
// them when n < 1).
func sample(paths []string, n int, seed uint64) []string {
	chosen := append([]string(nil), paths...)
	if n > 0 && n < len(chosen) {
		r := rand.New(rand.NewPCG(seed, 0x7275737469640a))
		r.Shuffle(len(chosen), func(i, j int) { chosen[i], chosen[j] = chosen[j], chosen[i] })
		chosen = chosen[:n]
		sort.Strings(chosen)
	}
	return chosen
}

// imageFiles lists the image files under dir (relative paths, sorted).
func imageFiles(dir string) ([]string, error) {
	var all []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".jpg", ".jpeg", ".png", ".pgm":
			if !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				all = append(all, rel)
			}
		}
		return nil
	})
	sort.Strings(all)
	return all, err
}

// splitScores scores every pair of embedded images within each part
// (calibration, held-out): same identity genuine, different impostor.
// Pairs across the parts are never formed.
func splitScores(embs map[string]embedded, paths []string, drop map[string]bool, seed uint64, holdout float64, norm *cohortNorm) (cal, held Scores, ids [2]int) {
	var parts [2][]string
	seenID := [2]map[string]bool{{}, {}}
	for _, p := range paths {
		if drop[p] || embs[p].Vec == nil {
			continue
		}
		id := SetIdentity(p)
		k := 0
		if HeldOut(id, seed, holdout) {
			k = 1
		}
		parts[k] = append(parts[k], p)
		if !seenID[k][id] {
			seenID[k][id] = true
			ids[k]++
		}
	}
	score := func(ps []string) Scores {
		var s Scores
		for i := range ps {
			a := embs[ps[i]].Vec
			for j := i + 1; j < len(ps); j++ {
				c := float64(face.Cosine(a, embs[ps[j]].Vec))
				if norm != nil {
					c = norm.score(ps[i], a, ps[j], embs[ps[j]].Vec, c)
				}
				if SetIdentity(ps[i]) == SetIdentity(ps[j]) {
					s.Genuine = append(s.Genuine, c)
				} else {
					s.Impostor = append(s.Impostor, c)
				}
			}
		}
		return s
	}
	return score(parts[0]), score(parts[1]), ids
}

// CalibrateFace is `trustid-lab calibrate-face`.
func CalibrateFace(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("calibrate-face", flag.ContinueOnError)
	var ff faceFlags
	ff.register(fset)
	var calibrate, measure dataFlags
	fset.Var(&calibrate, "calibrate", "POPULATION[:MAX]=DIR: a data set (at most MAX images of it, a seeded sample) whose impostor pairs set the population's thresholds (repeatable); an image's identity is its folder, or the file itself when it has none")
	fset.Var(&measure, "measure", "POPULATION[:MAX]=DIR: a data set only measured (genuine pairs for TAR, e.g. NUAA real captures; repeatable)")
	seed := fset.Uint64("seed", 1, "seed of the sample and of the calibration/held-out split")
	holdout := fset.Float64("holdout", 0.5, "fraction of each set's identities held out: never used to set a threshold, the labels are checked on them")
	dedup := fset.Float64("dedup", 0.9, "drop one image of each pair of different identities with cosine above this (near-duplicates: the same person or photo)")
	gates := fset.Bool("gates", false, "embed with the service's quality gates (size, blur, pose, brightness): the population served is the faces the service accepts; refused images are counted, not paired")
	var exclude excludeFlag
	fset.Var(&exclude, "exclude", "COLUMN=V1,V2: leave out of a set the images whose manifest.tsv (in the set's folder) has one of these values in COLUMN; they are measured apart as population POPULATION_excluded")
	population := fset.String("population", face.Strictest, "population whose thresholds are the shipped points (top-level \"points\"): "+face.Strictest+" or a population name")
	normK := fset.Int("asnorm", 0, "EXPERIMENT: adaptive score normalisation (AS-norm) against the top K cohort scores of each image, the cohort being the first -calibrate set's calibration part; thresholds are then in normalised units, not cosines (never ship them)")
	outFile := fset.String("out", "", "write the calibration JSON here (default stdout)")
	dataFile := fset.String("data", "", "write the score distributions and the held-out report (JSON) here")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if len(calibrate) == 0 {
		return errors.New("need at least one -calibrate POPULATION=DIR")
	}
	if !(*holdout > 0 && *holdout < 1) {
		return errors.New("-holdout must be in (0, 1)")
	}
	eng, err := ff.engine()
	if err != nil {
		return err
	}
	defer eng.Close()
	opts, optsName := lfwOptions, lfwOptionsName
	if *gates {
		opts, optsName = gatedOptions, gatedOptionsName
	}
	cache := loadCache(ff.cache, optsName)
	start := time.Now()
	computed := 0

	var sets []*setScores
	var norm *cohortNorm
	type spec struct {
		DataSpec
		role  string
		files []string // nil: all images of Dir
	}
	var specs []spec
	for _, d := range calibrate {
		specs = append(specs, spec{d, "calibrate", nil})
	}
	for _, d := range measure {
		specs = append(specs, spec{d, "measure", nil})
	}
	for i := 0; i < len(specs); i++ {
		sp := specs[i]
		files := sp.files
		if files == nil {
			if files, err = imageFiles(sp.Dir); err != nil {
				return err
			}
			if exclude.column != "" {
				kept, excluded, err := exclude.split(sp.Dir, files)
				if err != nil {
					return err
				}
				if len(excluded) > 0 {
					files = kept
					ex := spec{DataSpec{Population: sp.Population + "_excluded", Dir: sp.Dir}, "measure", excluded}
					specs = append(specs[:i+1], append([]spec{ex}, specs[i+1:]...)...)
				}
			}
		}
		if len(files) == 0 {
			return fmt.Errorf("%s: no images", sp.Dir)
		}
		chosen := sample(files, sp.Max, *seed)
		// Embed in chunks, saving the cache after each, so an
		// interrupted run loses little.
		embs := map[string]embedded{}
		for i := 0; i < len(chosen); i += 500 {
			part, n, err := embedPaths(ctx, eng, sp.Dir, chosen[i:min(i+500, len(chosen))], opts, cache, ff.workers)
			for k, v := range part {
				embs[k] = v
			}
			computed += n
			if serr := saveCache(ff.cache, optsName, cache); serr != nil {
				return serr
			}
			if err != nil {
				return err
			}
			if n > 0 {
				fmt.Fprintf(os.Stderr, "calibrate-face: %s: %d/%d images (%d encoded, %.0f s)\n", sp.Name(), min(i+500, len(chosen)), len(chosen), computed, time.Since(start).Seconds())
			}
		}
		s := &setScores{spec: sp.DataSpec, role: sp.role, images: len(files), sampled: len(chosen), failures: map[string]int{}}
		var okPaths []string
		var vecs [][]float32
		var ids []string
		for _, p := range chosen {
			if e := embs[p]; e.Err != "" || e.Vec == nil {
				s.failures[e.Err]++
			} else {
				okPaths = append(okPaths, p)
				vecs = append(vecs, e.Vec)
				ids = append(ids, SetIdentity(p))
			}
		}
		dropIdx, pairs := NearDuplicates(vecs, ids, *dedup)
		drop := map[string]bool{}
		for i := range dropIdx {
			drop[okPaths[i]] = true
		}
		s.dupPairs, s.dupDropped = pairs, len(drop)
		if *normK > 0 && norm == nil {
			// The cohort: the first calibrated set's calibration part
			// (never its held-out part, where the labels are checked).
			var cv [][]float32
			var cp []string
			for _, p := range okPaths {
				if !drop[p] && !HeldOut(SetIdentity(p), *seed, *holdout) {
					cv, cp = append(cv, embs[p].Vec), append(cp, p)
				}
			}
			norm = newCohortNorm(cv, cp, *normK)
		}
		s.cal, s.heldout, s.identities = splitScores(embs, okPaths, drop, *seed, *holdout, norm)
		sets = append(sets, s)
	}

	// Thresholds per population from the calibration parts of its
	// calibrate sets only.
	calByPop := map[string]*Scores{}
	var popNames []string
	for _, s := range sets {
		if s.role != "calibrate" {
			continue
		}
		if calByPop[s.spec.Population] == nil {
			calByPop[s.spec.Population] = &Scores{}
			popNames = append(popNames, s.spec.Population)
		}
		calByPop[s.spec.Population].Add(s.cal)
	}
	thrByPop := map[string]map[float64]float64{}
	cal := face.Calibration{
		Model:   face.ModelVersion,
		Created: time.Now().UTC().Format(time.RFC3339),
		Command: "trustid-lab calibrate-face " + strings.Join(args, " "),
	}
	for _, pop := range popNames {
		imp := calByPop[pop].Impostor
		thrByPop[pop] = map[float64]float64{}
		pc := face.PopulationCalibration{Name: pop, Impostors: len(imp)}
		var srcs []string
		for _, s := range sets {
			if s.role == "calibrate" && s.spec.Population == pop {
				srcs = append(srcs, fmt.Sprintf("%s: %d impostor pairs among the calibration part (%d identities) of %d images of %s",
					s.spec.Name(), len(s.cal.Impostor), s.identities[0], s.sampled, filepath.Base(s.spec.Dir)))
			}
		}
		pc.Source = strings.Join(srcs, "; ")
		for _, far := range calibrationFARs {
			thr, ok := ThresholdAtFAR(imp, far)
			if !ok {
				return fmt.Errorf("%s: only %d impostor pairs: FAR %g cannot be resolved", pop, len(imp), far)
			}
			thrByPop[pop][far] = round6(thr)
			pc.Points = append(pc.Points, face.OperatingPoint{FAR: far, Threshold: round6(thr)})
		}
		cal.Populations = append(cal.Populations, pc)
	}
	strict, from := Strictest(thrByPop, calibrationFARs)
	shipped := map[float64]float64{}
	switch {
	case *population == face.Strictest:
		for _, far := range calibrationFARs {
			shipped[far] = strict[far]
			cal.Points = append(cal.Points, face.OperatingPoint{FAR: far, Threshold: strict[far], Population: from[far]})
		}
		for _, pc := range cal.Populations {
			cal.Impostors += pc.Impostors
		}
		cal.Source = fmt.Sprintf("strictest of %s (per FAR the highest threshold); thresholds from the calibration part only (seed %d, %.0f %% of identities held out); near-duplicates (cosine > %g) dropped; embedding options %s",
			strings.Join(popNames, ", "), *seed, *holdout*100, *dedup, optsName)
	case thrByPop[*population] != nil:
		for _, far := range calibrationFARs {
			shipped[far] = thrByPop[*population][far]
			cal.Points = append(cal.Points, face.OperatingPoint{FAR: far, Threshold: shipped[far], Population: *population})
		}
		cal.Impostors = len(calByPop[*population].Impostor)
		cal.Source = "population " + *population
	default:
		return fmt.Errorf("-population %q: not calibrated (have %s)", *population, strings.Join(popNames, ", "))
	}

	// The report: per set, what the shipped points and each population's
	// own points do on its held-out part (and, for reference, on the
	// calibration part and on both).
	grid := Grid(-0.2, 0.8, 0.005)
	type setReport struct {
		Name           string               `json:"name"`
		Population     string               `json:"population"`
		Role           string               `json:"role"`
		Dir            string               `json:"dir"`
		Images         int                  `json:"images"`
		Embedded       int                  `json:"images_sampled"`
		Failures       map[string]int       `json:"detection_failures"`
		NearDupPairs   int                  `json:"near_duplicate_pairs"`
		NearDupDropped int                  `json:"near_duplicates_dropped"`
		Identities     map[string]int       `json:"identities"`
		Shipped        map[string][]AtPoint `json:"at_shipped_points"`
		OwnPoints      map[string][]AtPoint `json:"heldout_at_population_points"`
		EER            map[string]float64   `json:"eer,omitempty"`
		Tails          map[string]Tail      `json:"tails"`
	}
	var reports []setReport
	for _, s := range sets {
		all := Scores{}
		all.Add(s.cal)
		all.Add(s.heldout)
		r := setReport{Name: s.spec.Name(), Population: s.spec.Population, Role: s.role, Dir: s.spec.Dir,
			Images: s.images, Embedded: s.sampled, Failures: s.failures, NearDupPairs: s.dupPairs, NearDupDropped: s.dupDropped,
			Identities: map[string]int{"calibration": s.identities[0], "heldout": s.identities[1]},
			Shipped:    map[string][]AtPoint{}, OwnPoints: map[string][]AtPoint{}, EER: map[string]float64{}, Tails: map[string]Tail{}}
		for part, sc := range map[string]Scores{"heldout": s.heldout, "calibration": s.cal, "all": all} {
			for _, far := range calibrationFARs {
				r.Shipped[part] = append(r.Shipped[part], Measure(sc, far, shipped[far]))
			}
			if len(sc.Genuine) > 0 && len(sc.Impostor) > 0 {
				e, _ := EER(sc.Genuine, sc.Impostor)
				r.EER[part] = round6(e)
			}
			if part != "all" {
				r.Tails[part+"_impostor_at_or_above"] = TailAbove(sc.Impostor, grid)
				r.Tails[part+"_genuine_below"] = TailBelow(sc.Genuine, grid)
			}
		}
		for _, pop := range popNames {
			for _, far := range calibrationFARs {
				r.OwnPoints[pop] = append(r.OwnPoints[pop], Measure(s.heldout, far, thrByPop[pop][far]))
			}
		}
		reports = append(reports, r)
	}
	cal.Source += fmt.Sprintf("; %d images encoded in %.0f s", computed, time.Since(start).Seconds())
	if norm != nil {
		cal.Source += fmt.Sprintf("; EXPERIMENT: AS-norm scores (top %d of a %d-image cohort), not cosines", norm.k, len(norm.vecs))
	}
	if *dataFile != "" {
		b, err := json.MarshalIndent(map[string]any{
			"model": face.ModelVersion, "created": cal.Created, "command": cal.Command,
			"seed": *seed, "holdout": *holdout, "dedup_cosine": *dedup, "options": optsName, "exclude": exclude.String(),
			"populations": cal.Populations, "shipped": cal.Points, "sets": reports,
		}, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*dataFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(cal, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *outFile == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(*outFile, b, 0o644)
}

// Evaluation options with the service's quality gates on (calibrate-face
// -gates): what the service would refuse is not scored.
var gatedOptions = face.Options{Embedding: true, AllowSeveral: true, Select: face.SelectCentral}

const gatedOptionsName = "embedding,allow-several,gates,select-central"

// excludeFlag is -exclude COLUMN=V1,V2.
type excludeFlag struct {
	column string
	values map[string]bool
}

func (e *excludeFlag) String() string {
	if e.column == "" {
		return ""
	}
	var v []string
	for k := range e.values {
		v = append(v, k)
	}
	sort.Strings(v)
	return e.column + "=" + strings.Join(v, ",")
}

func (e *excludeFlag) Set(s string) error {
	col, vals, ok := strings.Cut(s, "=")
	if !ok || col == "" || vals == "" {
		return fmt.Errorf("-exclude %q: want COLUMN=V1,V2", s)
	}
	e.column, e.values = col, map[string]bool{}
	for _, v := range strings.Split(vals, ",") {
		e.values[v] = true
	}
	return nil
}

// split divides a set's files by its manifest.tsv (first column the file
// name, a header row naming the columns); a set without a manifest keeps
// every file.
func (e *excludeFlag) split(dir string, files []string) (kept, excluded []string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.tsv"))
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	drop, err := ManifestSelect(string(b), e.column, e.values)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, f := range files {
		if drop[f] {
			excluded = append(excluded, f)
		} else {
			kept = append(kept, f)
		}
	}
	return kept, excluded, nil
}
