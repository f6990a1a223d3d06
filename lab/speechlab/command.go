// Package speechlab is the lab's spoken-digit work: it trains the digit
// head that liveness/speech applies (`trustid-lab train-digits`: the FSDD
// and synthetic-speech corpus, augmentation, frame labels and the AdamW
// solvers of the frame and segment heads) and evaluates the check on
// held-out FSDD speakers (`trustid-lab eval-speech`). Features and the
// heads' forward passes come from liveness/speech itself (PaddedEmbeddings,
// Head.Forward, SegmentHead.Pool), so the head is trained on what the
// service computes. The service never imports this package.
package speechlab

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trustid/trustid/liveness/speech"
)

func speechDefaults() (models, fsdd string) {
	return os.Getenv("TRUSTID_MODELS"), filepath.Join(os.Getenv("TRUSTID_TESTDATA"), "speech", "fsdd")
}

// TrainDigits (`trustid-lab train-digits`) trains the spoken-digit head (liveness/speech) and writes
// its weights as JSON.
func TrainDigits(ctx context.Context, args []string) error {
	models, fsdd := speechDefaults()
	fs := flag.NewFlagSet("train-digits", flag.ContinueOnError)
	var (
		modelDir  = fs.String("models", models, "directory with the ONNX models and libonnxruntime.so")
		fsddDir   = fs.String("fsdd", fsdd, "FSDD folder (D_SPEAKER_N.wav)")
		train     = fs.String("train", "george,jackson,theo", "FSDD speakers to train on (the others are held out)")
		seed      = fs.Int64("seed", 1, "random seed")
		espeak    = fs.Int("espeak-voices", 40, "espeak-ng voices to draw (flite and festival voices are all used); 0 = no synthetic speech")
		fsddUtts  = fs.Int("fsdd-utterances", 400, "training utterances per FSDD speaker")
		synthUtts = fs.Int("synth-utterances", 12, "training utterances per synthetic voice")
		epochs    = fs.Int("epochs", 20, "training epochs")
		hidden    = fs.Int("hidden", 64, "hidden units")
		context_  = fs.Int("context", 2, "neighbouring frames each side")
		out       = fs.String("out", "liveness/speech/digits_head.json", "output file")
		speed     = fs.Bool("speed-perturb", false, "speed-perturb 60 % of training utterances (0.88-1.12)")
		segDecay  = fs.Float64("seg-decay", DefaultSegmentDecay, "segment head weight decay")
		ttsCache  = fs.String("tts-cache", "", "directory to keep synthesised digits in between runs (optional)")
		step      = fs.Int("step", 8, "embedding hop in 10 ms mel frames (8 = 80 ms, 4 = 40 ms)")
		stride    = fs.Int("context-stride", 1, "frames between the head's context neighbours")
		runTog    = fs.Float64("run-together", 0.4, "share of training utterances with the digits run together")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	front, err := speech.NewFrontend(*modelDir)
	if err != nil {
		return err
	}
	defer front.Close()
	scratch, err := os.MkdirTemp("", "trustid-tts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	cmdline := "trustid-lab train-digits " + strings.Join(args, " ")
	h, err := TrainHead(ctx, TrainConfig{
		Front: front, FSDDDir: *fsddDir, TrainSpeakers: strings.Split(*train, ","), Seed: *seed,
		EspeakVoices: *espeak, FSDDUtterances: *fsddUtts, SynthUtterances: *synthUtts,
		Epochs: *epochs, Hidden: *hidden, Context: *context_, ScratchDir: scratch, TTSCache: *ttsCache, SpeedPerturb: *speed, SegmentDecay: *segDecay, Log: log,
		Step: *step, Stride: *stride, RunTogether: *runTog,
		Command: strings.TrimSpace(cmdline),
	})
	if err != nil {
		return err
	}
	if err := WriteHead(h, *out); err != nil {
		return err
	}
	log.Info("wrote head", "path", *out, "frames", h.Meta.Examples, "synthetic_clips", h.Meta.Synthetic)
	return nil
}

// EvalSpeech (`trustid-lab eval-speech`) evaluates the spoken-digit check on 4-digit utterances
// built from FSDD speakers the head was not trained on and prints JSON.
func EvalSpeech(ctx context.Context, args []string) error {
	models, fsdd := speechDefaults()
	fs := flag.NewFlagSet("eval-speech", flag.ContinueOnError)
	var (
		modelDir  = fs.String("models", models, "directory with the ONNX models and libonnxruntime.so")
		fsddDir   = fs.String("fsdd", fsdd, "FSDD folder (D_SPEAKER_N.wav)")
		headPath  = fs.String("head", "", "head JSON (default: the committed head)")
		speakers  = fs.String("speakers", "", "FSDD speakers to test (default: those the head was not trained on)")
		n         = fs.Int("n", 100, "utterances per speaker and join mode")
		seed      = fs.Int64("seed", 2, "random seed")
		threshold = fs.Float64("threshold", speech.DefaultThreshold, "accept margin (nats)")
		farSweep  = fs.String("far-sweep", "-40,-35,-30,-25,-20,-10,0", "thresholds of the alternative rule FarMargin >= t to report")
		extraRand = fs.Int("random", 20, "extra uniformly random wrong strings per utterance")
		trials    = fs.String("trials", "", "write every scored trial to this file as JSON lines (for choosing a rule)")
		minFrames = fs.Int("min-frames", speech.DefaultMinFrames, "shortest digit in 80 ms frames")
		maxFrames = fs.Int("max-frames", speech.DefaultMaxFrames, "longest digit in 80 ms frames before the overrun penalty")
		overrun   = fs.Float64("overrun", speech.DefaultOverrun, "penalty (nats) per frame beyond -max-frames")
		prior     = fs.Float64("prior-scale", speech.DefaultPriorScale, "share of the class prior divided out of the posteriors")
		sweep     = fs.String("sweep", "-50,-45,-40,-35,-30,-25,-20,-10,0,1", "extra thresholds to report")
		segWeight = fs.Float64("seg-weight", speech.DefaultSegmentWeight, "weight of the segment head's log-likelihood ratio in the margin (0 = frame score only)")
		wSweep    = fs.String("seg-weight-sweep", "", "segment weights to sweep (overall numbers only)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h *speech.Head
	var err error
	if *headPath != "" {
		h, err = ReadHead(*headPath)
	} else {
		h, err = speech.DefaultHead()
	}
	if err != nil {
		return err
	}
	rec, err := speech.NewEmbeddingRecognizer(speech.Config{ModelDir: *modelDir, Head: h, MinFrames: *minFrames, MaxFrames: *maxFrames, Overrun: overrun, Threshold: threshold, PriorScale: prior, SegmentWeight: segWeight})
	if err != nil {
		return err
	}
	defer rec.Close()
	spk := h.Meta.HeldOut
	if *speakers != "" {
		spk = strings.Split(*speakers, ",")
	}
	ths, err := parseFloats(*sweep)
	if err != nil {
		return fmt.Errorf("-sweep: %w", err)
	}
	wts, err := parseFloats(*wSweep)
	if err != nil {
		return fmt.Errorf("-seg-weight-sweep: %w", err)
	}
	fths, err := parseFloats(*farSweep)
	if err != nil {
		return fmt.Errorf("-far-sweep: %w", err)
	}
	if *extraRand < 1 || *extraRand > 1000 {
		return fmt.Errorf("-random %d: want 1-1000", *extraRand)
	}
	ec := EvalConfig{Rec: rec, FSDDDir: *fsddDir, Speakers: spk, Utterances: *n, Seed: *seed,
		Thresholds: ths, SegmentWeights: wts, FarThresholds: fths, ExtraRandom: *extraRand}
	if *trials != "" {
		f, err := os.Create(*trials)
		if err != nil {
			return err
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		tenc := json.NewEncoder(w)
		ec.Trial = func(cond, kind string, res speech.Result) {
			// JSON has no infinities: clamp them for the file.
			clamp := func(v float64) float64 { return math.Max(-1e6, math.Min(1e6, v)) }
			_ = tenc.Encode(map[string]any{"cond": cond, "kind": kind, "margin": clamp(res.Margin), "far": clamp(res.FarMargin),
				"frames": res.Frames, "voiced_ms": res.Voiced.Milliseconds()})
		}
	}
	rep, err := Evaluate(ctx, ec)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// parseFloats parses a comma-separated list of numbers ("" is none).
func parseFloats(list string) ([]float64, error) {
	var out []float64
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
