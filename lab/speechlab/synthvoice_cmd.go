package speechlab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trustid/trustid/liveness/speech"
	"github.com/trustid/trustid/liveness/synthvoice"
)

// svFlags are the corpus and fit flags train-synthvoice and
// eval-synthvoice share, so both see the same corpus for the same flags.
type svFlags struct {
	models, data, ttsCache, featCache *string
	seed                              *int64
	fsddUtts, texts, espeak, augs     *int
	hidden, iters                     *int
	l2, frr                           *float64
	drop                              *string
}

func newSVFlags(fs *flag.FlagSet) *svFlags {
	models, _ := speechDefaults()
	return &svFlags{
		models:    fs.String("models", models, "directory with the ONNX models and libonnxruntime.so"),
		data:      fs.String("data", os.Getenv("TRUSTID_TESTDATA"), "shared test data folder (speech/fsdd, talking/grid, action)"),
		ttsCache:  fs.String("tts-cache", "", "directory to keep synthesised speech in between runs (optional)"),
		featCache: fs.String("feature-cache", "", "JSON file of the featurised corpus: read when it exists, else written (optional; delete it when the corpus flags or features change)"),
		seed:      fs.Int64("seed", 1, "random seed (corpus, augmentation, initialisation)"),
		fsddUtts:  fs.Int("fsdd-utterances", 60, "4-digit strings per FSDD speaker"),
		texts:     fs.Int("texts", 8, "texts per synthetic voice"),
		espeak:    fs.Int("espeak-voices", 16, "espeak-ng voices to draw (every flite and festival voice is used)"),
		augs:      fs.Int("augs", 4, "augmented copies per GRID, action and dub recording (half as many for the others)"),
		hidden:    fs.Int("hidden", 0, "hidden units (0 = logistic regression)"),
		iters:     fs.Int("iters", 600, "full-batch Adam iterations"),
		l2:        fs.Float64("l2", 0.01, "L2 weight decay"),
		frr:       fs.Float64("frr", 0.01, "real-speech rejection the threshold allows on out-of-fold training scores"),
		drop:      fs.String("drop", "", "feature groups to blank, comma-separated name prefixes (emb_mean, emb_sd, mel_sd, mel_delta_sd, or hand for the signal features): for ablations"),
	}
}

func (f *svFlags) fit() SVFitConfig {
	return SVFitConfig{Hidden: *f.hidden, L2: *f.l2, Iters: *f.iters, Seed: *f.seed}
}

// parse parses the command line and builds the corpus.
func (f *svFlags) parse(ctx context.Context, fs *flag.FlagSet, args []string) ([]SVItem, *slog.Logger, error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	items, err := f.corpus(ctx, log)
	return items, log, err
}

// corpus builds (or reads from -feature-cache) the featurised corpus and
// blanks the -drop features (a constant column standardises to 0 and its
// weight stays 0).
func (f *svFlags) corpus(ctx context.Context, log *slog.Logger) ([]SVItem, error) {
	items, err := f.build(ctx, log)
	if err != nil || *f.drop == "" {
		return items, err
	}
	var cols []int
	for j, n := range synthvoice.FeatureNames() {
		for _, p := range strings.Split(*f.drop, ",") {
			hand := p == "hand" && !strings.HasPrefix(n, "emb_") && !strings.HasPrefix(n, "mel_")
			if hand || (p != "hand" && strings.HasPrefix(n, p+"_")) {
				cols = append(cols, j)
			}
		}
	}
	for _, it := range items {
		for _, j := range cols {
			it.X[j] = 0
		}
	}
	log.Info("features blanked", "n", len(cols))
	return items, nil
}

func (f *svFlags) build(ctx context.Context, log *slog.Logger) ([]SVItem, error) {
	if *f.featCache != "" {
		if b, err := os.ReadFile(*f.featCache); err == nil {
			var items []SVItem
			if err := json.Unmarshal(b, &items); err != nil {
				return nil, fmt.Errorf("%s: %w", *f.featCache, err)
			}
			if len(items) > 0 && len(items[0].X) == len(synthvoice.FeatureNames()) {
				log.Info("corpus read from cache", "items", len(items))
				return items, nil
			}
			log.Info("feature cache has other features: rebuilding")
		}
	}
	front, err := speech.NewFrontend(*f.models)
	if err != nil {
		return nil, err
	}
	defer front.Close()
	scratch, done, err := svTemp()
	if err != nil {
		return nil, err
	}
	defer done()
	items, err := BuildSVCorpus(ctx, SVCorpusConfig{Front: front, Data: *f.data, Seed: *f.seed, Scratch: scratch, TTSCache: *f.ttsCache,
		FSDDUtterances: *f.fsddUtts, Texts: *f.texts, EspeakVoices: *f.espeak, Augs: *f.augs, Log: log})
	if err != nil {
		return nil, err
	}
	if *f.featCache != "" {
		b, err := json.Marshal(items)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(*f.featCache, b, 0o644); err != nil {
			return nil, err
		}
	}
	return items, nil
}

func svCounts(items []SVItem) map[string]int {
	m := map[string]int{}
	for _, it := range items {
		m[it.Source]++
	}
	return m
}

// TrainSynthVoice (`trustid-lab train-synthvoice`) trains the synthetic-voice
// classifier (liveness/synthvoice) on the whole corpus, chooses its
// threshold on out-of-fold scores of that corpus, and writes the model JSON.
func TrainSynthVoice(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("train-synthvoice", flag.ContinueOnError)
	sf := newSVFlags(fs)
	out := fs.String("out", "liveness/synthvoice/model.json", "output file")
	items, log, err := sf.parse(ctx, fs, args)
	if err != nil {
		return err
	}
	m, oof := SVTrainWithThreshold(items, sf.fit(), *sf.frr)
	m.Meta = synthvoice.Meta{
		Command: strings.TrimSpace("trustid-lab train-synthvoice " + strings.Join(args, " ")),
		Seed:    *sf.seed, Date: time.Now().UTC().Format(time.DateOnly),
		ThresholdRule: fmt.Sprintf("at most %.1f %% of %d out-of-fold real-speech scores (inner folds leaving one engine and a share of the real speakers out) at or above it", 100**sf.frr, len(oof)),
		Examples:      svCounts(items),
	}
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Info("wrote model", "path", *out, "threshold", m.Threshold, "examples", len(items))
	return nil
}

// SVCount is a tally: N recordings, K of them flagged synthetic.
type SVCount struct {
	N       int     `json:"n"`
	Flagged int     `json:"flagged"`
	Rate    float64 `json:"rate"`
}

func (c *SVCount) add(flag bool) {
	c.N++
	if flag {
		c.Flagged++
	}
	c.Rate = math.Round(1e4*float64(c.Flagged)/float64(c.N)) / 1e4
}

// SVFoldReport is one outer fold: a model trained without the held-out
// engines and real speakers, its threshold chosen on its training data.
type SVFoldReport struct {
	HeldOutEngines []string `json:"held_out_engines,omitempty"`
	HeldOutVoices  []string `json:"held_out_voices,omitempty"`
	HeldOutReal    []string `json:"held_out_real"`
	Train          int      `json:"train_recordings"`
	Threshold      float64  `json:"threshold"`
	// AUC of held-out synthetic against held-out real recordings.
	AUC float64 `json:"auc"`
	// Detection of held-out synthetic speech per engine, per voice, and
	// clean versus augmented recordings; rejection of held-out real speech
	// per source and per speaker.
	Detection       map[string]*SVCount `json:"detection_per_engine"`
	DetectionVoice  map[string]*SVCount `json:"detection_per_voice"`
	DetectionClean  *SVCount            `json:"detection_clean"`
	DetectionAug    *SVCount            `json:"detection_augmented"`
	RealRejected    map[string]*SVCount `json:"real_rejected_per_source"`
	RealRejectedSpk map[string]*SVCount `json:"real_rejected_per_speaker"`
}

// SVReport is eval-synthvoice's output.
type SVReport struct {
	Command string         `json:"command"`
	Date    string         `json:"date"`
	Corpus  map[string]int `json:"corpus"`
	Rule    string         `json:"threshold_rule"`
	Folds   []SVFoldReport `json:"folds"`
	// Summary: each engine from the fold that held it out alone; real
	// speech pooled over the first four folds (every real speaker exactly
	// once); the worst engine (of the engine folds).
	Detection    map[string]*SVCount `json:"detection_per_held_out_engine"`
	RealRejected *SVCount            `json:"real_rejected_pooled"`
	// The same for the folds that hold out voices of engines trained on
	// (every voice and every real speaker exactly once).
	DetectionVoiceOut    map[string]*SVCount `json:"detection_per_engine_held_out_voices"`
	RealRejectedVoiceOut *SVCount            `json:"real_rejected_pooled_held_out_voices"`
	WorstEngine          string              `json:"worst_engine"`
	WorstDetection       float64             `json:"worst_engine_detection"`
}

// EvalSynthVoice (`trustid-lab eval-synthvoice`) cross-validates the
// synthetic-voice check leaving engines and real speakers out and prints
// JSON.
func EvalSynthVoice(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval-synthvoice", flag.ContinueOnError)
	sf := newSVFlags(fs)
	items, log, err := sf.parse(ctx, fs, args)
	if err != nil {
		return err
	}
	rep := SVReport{Command: strings.TrimSpace("trustid-lab eval-synthvoice " + strings.Join(args, " ")),
		Date: time.Now().UTC().Format(time.RFC3339), Corpus: svCounts(items),
		Rule:      fmt.Sprintf("threshold per fold: at most %.1f %% of the out-of-fold real scores of its training data (inner folds) at or above it", 100**sf.frr),
		Detection: map[string]*SVCount{}, RealRejected: &SVCount{},
		DetectionVoiceOut: map[string]*SVCount{}, RealRejectedVoiceOut: &SVCount{}}
	real := svRealFolds(items, 4)
	engines := svEngines(items)
	var folds []svFold
	for i, e := range engines {
		folds = append(folds, svFold{Engines: []string{e}, Real: real[i%4]})
	}
	// The dub is flite's kal16 voice re-filtered: also hold out all of flite.
	folds = append(folds, svFold{Engines: []string{srcDub, srcFlite}, Real: real[len(engines)%4]})
	byEngine := len(folds)
	// Known engines, unseen voices and speakers: each fold holds out a
	// quarter of every engine's voices (the dub by GRID speaker, with that
	// speaker's real clip) and a quarter of the real speakers.
	for i, v := range svVoiceFolds(items, real) {
		folds = append(folds, svFold{Voices: v, Real: real[i]})
	}
	for i, f := range folds {
		if err := ctx.Err(); err != nil {
			return err
		}
		tr, te := svSplit(items, f)
		m, _ := SVTrainWithThreshold(tr, sf.fit(), *sf.frr)
		fr := SVFoldReport{HeldOutEngines: f.Engines, HeldOutVoices: f.Voices, HeldOutReal: f.Real, Train: len(tr), Threshold: m.Threshold,
			Detection: map[string]*SVCount{}, DetectionVoice: map[string]*SVCount{}, DetectionClean: &SVCount{}, DetectionAug: &SVCount{},
			RealRejected: map[string]*SVCount{}, RealRejectedSpk: map[string]*SVCount{}}
		var pos, neg []float64
		for _, it := range te {
			p := m.Prob(it.X)
			flag := p >= m.Threshold
			tally := func(mp map[string]*SVCount, k string) {
				if mp[k] == nil {
					mp[k] = &SVCount{}
				}
				mp[k].add(flag)
			}
			if it.Synthetic {
				pos = append(pos, p)
				tally(fr.Detection, it.Source)
				tally(fr.DetectionVoice, it.Group)
				if it.Aug == "clean" {
					fr.DetectionClean.add(flag)
				} else {
					fr.DetectionAug.add(flag)
				}
				switch {
				case len(f.Engines) == 1:
					tally(rep.Detection, it.Source)
				case i >= byEngine:
					tally(rep.DetectionVoiceOut, it.Source)
				}
			} else {
				neg = append(neg, p)
				tally(fr.RealRejected, it.Source)
				tally(fr.RealRejectedSpk, it.Group)
				switch {
				case i < 4:
					rep.RealRejected.add(flag)
				case i >= byEngine:
					rep.RealRejectedVoiceOut.add(flag)
				}
			}
		}
		fr.AUC = svAUC(pos, neg)
		rep.Folds = append(rep.Folds, fr)
		log.Info("fold", "engines", f.Engines, "voices", len(f.Voices), "threshold", m.Threshold, "auc", fr.AUC)
	}
	rep.WorstDetection = 2
	keys := make([]string, 0, len(rep.Detection))
	for k := range rep.Detection {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if rep.Detection[k].Rate < rep.WorstDetection {
			rep.WorstEngine, rep.WorstDetection = k, rep.Detection[k].Rate
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// svAUC is the probability that a positive scores above a negative (ties
// count half).
func svAUC(pos, neg []float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return 0
	}
	var s float64
	for _, p := range pos {
		for _, n := range neg {
			switch {
			case p > n:
				s++
			case p == n:
				s += 0.5
			}
		}
	}
	return math.Round(1e4*s/float64(len(pos)*len(neg))) / 1e4
}

// SVCorpusSet is the featurised synthetic-voice corpus with the fit setting
// and real-speech rejection train-synthvoice uses for the same flags.
type SVCorpusSet struct {
	Items []SVItem
	Fit   SVFitConfig
	FRR   float64
}

// SVCorpus builds (or reads from -feature-cache) the corpus
// train-synthvoice would train on for args (its flags; nil: its defaults),
// so that an evaluation can retrain the shipped model without some of it.
func SVCorpus(ctx context.Context, args []string) (*SVCorpusSet, error) {
	fs := flag.NewFlagSet("synthvoice-corpus", flag.ContinueOnError)
	sf := newSVFlags(fs)
	items, _, err := sf.parse(ctx, fs, args)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.Refiltered && it.Contour == "" {
			return nil, fmt.Errorf("synthvoice corpus: %s (%s) is re-filtered without its contour's speaker: the feature cache predates that field, delete it", it.Group, it.Aug)
		}
	}
	return &SVCorpusSet{Items: items, Fit: sf.fit(), FRR: *sf.frr}, nil
}

// SVDubEngines are the sources make-fake-clip's dub is made of: the dub
// itself and its engine (flite's kal16 voice). A fold that holds them out
// trains without the attack's synthesiser.
var SVDubEngines = []string{srcDub, srcFlite}

// SVWithout returns the items a fold trains on: without the real clips of
// the GRID speakers named (group "grid:NAME"), without every synthetic
// recording laid on one of their contours (the dub of their clip, the
// re-filtered engine speech: Contour), and without the sources (engines)
// named.
func SVWithout(items []SVItem, gridSpeakers, sources []string) []SVItem {
	var out []SVItem
	for _, it := range items {
		switch {
		case slices.Contains(sources, it.Source):
		case !it.Synthetic && slices.Contains(gridSpeakers, strings.TrimPrefix(it.Group, srcGRID+":")) && strings.HasPrefix(it.Group, srcGRID+":"):
		case it.Synthetic && it.Contour != "" && slices.Contains(gridSpeakers, it.Contour):
		default:
			out = append(out, it)
		}
	}
	return out
}
