package faceeval

// The lab's face commands: eval-face (LFW pairs protocol or ORL rank-1) and
// calibrate-face (thresholds per false-accept rate). `trustid compare`
// (two images) stays in the service binary.

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/index"
)

// faceFlags are the flags every face command shares.
type faceFlags struct {
	models  string
	workers int
	cache   string
}

func (f *faceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.models, "models", os.Getenv("TRUSTID_MODELS"), "directory of the pinned face models")
	fs.IntVar(&f.workers, "workers", 1, "engine workers (parallel images)")
	fs.StringVar(&f.cache, "cache", "", "optional file caching embeddings per image path between runs")
}

func (f *faceFlags) engine() (*face.Engine, error) {
	if f.models == "" {
		return nil, errors.New("no model directory: set TRUSTID_MODELS or -models")
	}
	return face.New(face.Config{ModelDir: f.models, Workers: f.workers})
}

// embedded is the outcome for one image.
type embedded struct {
	Vec []float32
	Err string // failure reason, empty on success
}

type embCache struct {
	Model   string
	Options string
	Images  map[string]embedded
}

func loadCache(path, opts string) map[string]embedded {
	m := map[string]embedded{}
	if path == "" {
		return m
	}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	var c embCache
	if gob.NewDecoder(f).Decode(&c) == nil && c.Model == face.ModelVersion && c.Options == opts {
		return c.Images
	}
	return m
}

func saveCache(path, opts string, m map[string]embedded) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(f).Encode(embCache{face.ModelVersion, opts, m}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// embedPaths runs the engine over the images (relative to root) on
// `workers` goroutines, reusing cached results (the cache is keyed by the
// joined path, so one cache file serves several roots).
func embedPaths(ctx context.Context, eng *face.Engine, root string, paths []string, opts face.Options, cache map[string]embedded, workers int) (map[string]embedded, int, error) {
	out := make(map[string]embedded, len(paths))
	var todo []string
	for _, p := range paths {
		if e, ok := cache[joinRoot(root, p)]; ok {
			out[p] = e
		} else if _, dup := out[p]; !dup {
			out[p] = embedded{}
			todo = append(todo, p)
		}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan string)
		ferr error
	)
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				e := embedOne(ctx, eng, joinRoot(root, p), opts)
				mu.Lock()
				out[p] = e
				cache[joinRoot(root, p)] = e
				mu.Unlock()
			}
		}()
	}
	for _, p := range todo {
		select {
		case next <- p:
		case <-ctx.Done():
			ferr = ctx.Err()
		}
		if ferr != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return out, len(todo), ferr
}

// joinRoot is the file of an image path: relative paths are under root.
func joinRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func embedOne(ctx context.Context, eng *face.Engine, path string, opts face.Options) embedded {
	data, err := os.ReadFile(path)
	if err != nil {
		return embedded{Err: "read: " + err.Error()}
	}
	var res *face.Result
	if strings.HasSuffix(path, ".pgm") {
		w, h, pix, perr := ReadPGM(data)
		if perr != nil {
			return embedded{Err: perr.Error()}
		}
		bgr := make([]byte, 3*len(pix))
		for i, v := range pix {
			bgr[3*i], bgr[3*i+1], bgr[3*i+2] = v, v, v
		}
		res, err = eng.ProcessFrame(ctx, face.Frame{Width: w, Height: h, BGR: bgr}, opts)
	} else {
		res, err = eng.Process(ctx, data, opts)
	}
	if err != nil {
		return embedded{Err: reason(err)}
	}
	return embedded{Vec: res.Embedding}
}

// reason is a short stable label for an engine error.
func reason(err error) string {
	for _, e := range []error{face.ErrNoFace, face.ErrSeveralFaces, face.ErrFaceTooSmall, face.ErrBlurred,
		face.ErrPose, face.ErrMisaligned, face.ErrTooDark, face.ErrUnsupportedFormat, face.ErrTooLarge, face.ErrTruncated, face.ErrCorrupt} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), "face: ")
		}
	}
	return err.Error()
}

// Evaluation options: gates off (a pair's failure is only "no face"), the
// face nearest the centre (LFW photos are centred on the labelled person).
var lfwOptions = face.Options{Embedding: true, AllowSeveral: true, SkipGates: true, Select: face.SelectCentral}

const lfwOptionsName = "embedding,allow-several,skip-gates,select-central"

type farPoint struct {
	FAR       float64 `json:"far"`
	Threshold float64 `json:"threshold"`
	TAR       float64 `json:"tar"`
	Impostors int     `json:"impostors"`
	Resolved  bool    `json:"resolved"` // impostors*far >= 1
}

func farTable(gen, imp []float64, fars []float64) []farPoint {
	var out []farPoint
	for _, f := range fars {
		thr, ok := ThresholdAtFAR(imp, f)
		out = append(out, farPoint{f, round6(thr), round6(Rate(gen, thr)), len(imp), ok})
	}
	return out
}

func round6(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	return math.Round(v*1e6) / 1e6
}

// identity is the LFW person of an image path (its directory).
func identity(p string) string { return filepath.Dir(p) }

// crossImpostors scores every pair of successfully embedded images of
// different identities.
func crossImpostors(embs map[string]embedded, paths []string) []float64 {
	var ok []string
	seen := map[string]bool{}
	for _, p := range paths {
		if !seen[p] && embs[p].Err == "" && embs[p].Vec != nil {
			ok = append(ok, p)
			seen[p] = true
		}
	}
	sort.Strings(ok)
	var mu sync.Mutex
	var all []float64
	var wg sync.WaitGroup
	parts := runtime.GOMAXPROCS(0)
	for w := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []float64
			for i := w; i < len(ok); i += parts {
				a := embs[ok[i]].Vec
				for j := i + 1; j < len(ok); j++ {
					if identity(ok[i]) == identity(ok[j]) {
						continue
					}
					local = append(local, float64(face.Cosine(a, embs[ok[j]].Vec)))
				}
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// EvalFace is `trustid-lab eval-face`.
func EvalFace(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval-face", flag.ContinueOnError)
	var ff faceFlags
	ff.register(fs)
	pairsFile := fs.String("pairs", "", "pairs file: LFW format, or lines \"PATH_A PATH_B same|diff [POPULATION]\" with images in any layout")
	root := fs.String("root", "", "image root of the pairs file's relative paths (LFW: the lfw folder; default: the pairs file's folder)")
	calFile := fs.String("calibration", "", "calibration JSON whose operating points at_operating_points measures (default: the committed one)")
	population := fs.String("population", face.Strictest, "the calibration's points to measure: "+face.Strictest+" (the shipped ones) or a population's")
	orl := fs.String("orl", "", "ORL root (sN/K.pgm): enroll 1.pgm per subject, identify the rest (rank-1)")
	cross := fs.Bool("cross", true, "TAR at FAR also against all cross-identity pairs among the evaluated images")
	flip := fs.Bool("flip", false, "add the mirrored face's embedding (test-time augmentation)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, optsName := lfwOptions, lfwOptionsName
	if *flip {
		opts.Flip, optsName = true, optsName+",flip"
	}
	eng, err := ff.engine()
	if err != nil {
		return err
	}
	defer eng.Close()
	if *orl != "" {
		return evalORL(ctx, eng, *orl, ff)
	}
	if *pairsFile == "" {
		return errors.New("need -pairs (or -orl)")
	}
	if *root == "" {
		*root = filepath.Dir(*pairsFile)
	}
	points, err := operatingPoints(*calFile, *population)
	if err != nil {
		return err
	}
	f, err := os.Open(*pairsFile)
	if err != nil {
		return err
	}
	pairs, err := ParsePairs(f)
	f.Close()
	if err != nil {
		return err
	}
	var paths []string
	lfwLayout := true
	for _, p := range pairs {
		paths = append(paths, p.A, p.B)
		lfwLayout = lfwLayout && !p.Paths
	}
	cache := loadCache(ff.cache, optsName)
	start := time.Now()
	embs, computed, err := embedPaths(ctx, eng, *root, paths, opts, cache, ff.workers)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := saveCache(ff.cache, optsName, cache); err != nil {
		return err
	}

	failedImages := map[string]int{}
	for _, e := range embs {
		if e.Err != "" {
			failedImages[e.Err]++
		}
	}
	scores := make([]float64, len(pairs))
	same := make([]bool, len(pairs))
	failed := make([]bool, len(pairs))
	var gen, imp []float64
	failedPairs := 0
	for i, p := range pairs {
		a, b := embs[p.A], embs[p.B]
		same[i] = p.Same
		if a.Err != "" || b.Err != "" {
			// A failed detection is a non-match, never a centre crop.
			scores[i] = -2
			failed[i] = true
			failedPairs++
		} else {
			scores[i] = float64(face.Cosine(a.Vec, b.Vec))
		}
		if p.Same {
			gen = append(gen, scores[i])
		} else {
			imp = append(imp, scores[i])
		}
	}
	// The LFW protocol's own 10 sets when the file has them, else 10
	// contiguous folds of equal size.
	foldOf := make([]int, len(pairs))
	for i, p := range pairs {
		foldOf[i] = p.Set
	}
	foldsBy := "lfw_sets"
	mean, std, folds := KFoldBy(scores, same, foldOf)
	if len(folds) != 10 {
		foldsBy, foldOf = "contiguous", ContiguousFolds(len(pairs), 10)
		mean, std, folds = KFoldBy(scores, same, foldOf)
	}
	eer, eerThr := EER(gen, imp)
	fars := []float64{1e-2, 1e-3, 1e-4}
	// The pairs each fold's threshold got wrong, to look at.
	type miss struct {
		A, B      string
		Same      bool
		Score     float64
		Threshold float64
	}
	var misses []miss
	for i, p := range pairs {
		if f := foldOf[i]; f < len(folds) && (scores[i] >= folds[f].Threshold) != p.Same {
			misses = append(misses, miss{p.A, p.B, p.Same, round6(scores[i]), round6(folds[f].Threshold)})
		}
	}
	out := map[string]any{
		"dataset":    *pairsFile,
		"model":      face.ModelVersion,
		"options":    optsName,
		"pairs":      len(pairs),
		"same_pairs": len(gen), "different_pairs": len(imp),
		"images":         len(embs),
		"images_encoded": computed,
		"detection_failures": map[string]any{
			"images": sum(failedImages), "pairs": failedPairs, "reasons": failedImages,
		},
		"accuracy_10fold": map[string]any{"mean": round6(mean), "std": round6(std), "folds": folds, "folds_by": foldsBy},
		"misclassified":   misses,
		"eer":             round6(eer), "eer_threshold": round6(eerThr),
		"tar_at_far_pairs_file": farTable(gen, imp, fars),
		"at_operating_points": map[string]any{
			"calibration": calName(*calFile), "population": *population,
			"pairs_file": AtOperatingPoints(Scores{gen, imp}, points),
		},
		"workers": ff.workers,
		"seconds": math.Round(elapsed.Seconds()*10) / 10,
	}
	if computed > 0 {
		out["ms_per_image_wall"] = math.Round(float64(elapsed.Milliseconds())/float64(computed)*10) / 10
	}
	if rows := PerPopulation(pairs, scores, failed, points); rows != nil {
		out["per_population"] = rows
	}
	if *cross && lfwLayout {
		all := crossImpostors(embs, paths)
		// Failed pairs from the file stay in as impostor non-matches.
		crossImp := append(all, imp...)
		out["tar_at_far_cross"] = farTable(gen, crossImp, fars)
		out["at_operating_points"].(map[string]any)["cross"] = AtOperatingPoints(Scores{gen, crossImp}, points)
	}
	return printJSON(out)
}

// operatingPoints are the points of a calibration file (empty: the
// committed one) for a population (face.Strictest: the shipped points).
func operatingPoints(file, population string) ([]face.OperatingPoint, error) {
	cal, err := face.DefaultCalibration()
	if file != "" {
		b, rerr := os.ReadFile(file)
		if rerr != nil {
			return nil, rerr
		}
		cal, err = face.ParseCalibration(b)
	}
	if err != nil {
		return nil, err
	}
	cal, err = cal.ForPopulation(population)
	if err != nil {
		return nil, err
	}
	return cal.Points, nil
}

func calName(file string) string {
	if file == "" {
		return "authn/face/calibration.json (committed)"
	}
	return file
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func evalORL(ctx context.Context, eng *face.Engine, root string, ff faceFlags) error {
	var gallery, probes []string
	for s := 1; s <= 40; s++ {
		gallery = append(gallery, filepath.Join(fmt.Sprintf("s%d", s), "1.pgm"))
		for k := 2; k <= 10; k++ {
			probes = append(probes, filepath.Join(fmt.Sprintf("s%d", s), fmt.Sprintf("%d.pgm", k)))
		}
	}
	opts := face.Options{Embedding: true, AllowSeveral: true, SkipGates: true}
	start := time.Now()
	embs, _, err := embedPaths(ctx, eng, root, append(append([]string{}, gallery...), probes...), opts, map[string]embedded{}, ff.workers)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	idx, err := index.New(index.Config{})
	if err != nil {
		return err
	}
	galleryFailures := 0
	for _, g := range gallery {
		if e := embs[g]; e.Err == "" {
			if err := idx.Add(identity(g), e.Vec); err != nil {
				return err
			}
		} else {
			galleryFailures++
		}
	}
	correct, probeFailures := 0, 0
	var wrong []string
	for _, p := range probes {
		e := embs[p]
		if e.Err != "" {
			probeFailures++
			wrong = append(wrong, p+": "+e.Err)
			continue
		}
		m, err := idx.Search(e.Vec, 1)
		if err != nil {
			return err
		}
		if len(m) == 1 && m[0].ID == identity(p) {
			correct++
		} else if len(m) == 1 {
			wrong = append(wrong, fmt.Sprintf("%s -> %s (%.3f)", p, m[0].ID, m[0].Score))
		}
	}
	return printJSON(map[string]any{
		"dataset":           root,
		"protocol":          "enroll 1.pgm per subject (40), identify 2..10.pgm (360) by 1:N search",
		"model":             face.ModelVersion,
		"rank1":             round6(float64(correct) / float64(len(probes))),
		"correct":           correct,
		"probes":            len(probes),
		"gallery_failures":  galleryFailures,
		"probe_failures":    probeFailures,
		"errors":            wrong,
		"workers":           ff.workers,
		"seconds":           math.Round(time.Since(start).Seconds()*10) / 10,
		"embedding_seconds": math.Round(elapsed.Seconds()*10) / 10,
	})
}
