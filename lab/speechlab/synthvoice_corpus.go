package speechlab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trustid/trustid/lab/fakeclip"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
	"github.com/trustid/trustid/liveness/synthvoice"
)

// Source names of the synthetic-voice corpus. Real sources are speakers;
// synthetic ones are engines (the unit a validation fold leaves out).
const (
	srcFSDD     = "fsdd"
	srcGRID     = "grid"
	srcAction   = "action"
	srcFlite    = "flite"
	srcEspeak   = "espeak-ng"
	srcFestival = "festival"
	srcDub      = "dub" // make-fake-clip's dub: flite kal16 on a GRID speaker's slots and contour
)

// SVItem is one recording of the synthetic-voice corpus with its features.
type SVItem struct {
	Source    string `json:"source"`
	Group     string `json:"group"` // speaker (real) or voice (synthetic); folds never split a group
	Synthetic bool   `json:"synthetic"`
	// Aug names the augmentation ("clean", "opus16k+noise27", ...).
	Aug string `json:"aug"`
	// Refiltered: synthetic speech given a GRID speaker's 1-3 kHz contour
	// (fakeclip.MatchEnvelope), as the dub does.
	Refiltered bool `json:"refiltered,omitempty"`
	// Contour is the GRID clip (file name without extension) whose contour
	// a re-filtered recording was given, or whose word slots and contour a
	// dub was laid on: leave-one-speaker-out folds drop it with that
	// speaker (the contour is that speaker's timing and band energy).
	Contour string    `json:"contour,omitempty"`
	X       []float64 `json:"x"`
}

// SVCorpusConfig says what the corpus is built from.
type SVCorpusConfig struct {
	Front    *speech.Frontend
	Data     string // $TRUSTID_TESTDATA
	Seed     int64
	Scratch  string
	TTSCache string
	// FSDDUtterances per FSDD speaker (4-digit strings of its digits).
	FSDDUtterances int
	// Texts per synthetic voice; EspeakVoices drawn.
	Texts, EspeakVoices int
	// Augs is the number of augmented copies per recording (besides the
	// clean one) for the sources with few recordings (GRID, action, dub),
	// and Augs/2 (at least 1) for the others.
	Augs int
	Log  *slog.Logger
}

// svPhrases are short phrases said around digits (X is the digit string);
// the GRID sentences the real class holds have the same shape.
var svPhrases = []string{"X", "X", "X", "my code is X", "the number is X", "bin blue at f X now", "place red by g X please", "lay white with j X again", "set green in b X soon"}

// BuildSVCorpus builds and featurises the corpus: real speech (FSDD 4-digit
// strings, the GRID clips, the talking action clips cut into 3 s windows)
// and synthetic speech (flite, espeak-ng and festival voices saying digit
// strings and short phrases, some re-filtered with a GRID speaker's
// contour, and make-fake-clip's dub on every GRID clip at several envelope
// weights), every recording also in augmented copies (codec, noise,
// reverberation) drawn the same way for both classes. One seeded generator,
// one goroutine: a seed gives the same corpus.
func BuildSVCorpus(ctx context.Context, c SVCorpusConfig) ([]SVItem, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	rng := NewRand(c.Seed)
	var items []SVItem
	add := func(src, group string, synth bool, contour string, pcm []int16, augs int) error {
		for a := 0; a <= augs; a++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			x, name := pcm, "clean"
			if a > 0 {
				var err error
				if x, name, err = svAugment(ctx, rng, pcm); err != nil {
					return err
				}
			}
			// A faint noise floor on everything, as a microphone has.
			x = AddNoise(rng, x, []Span{{Start: 0, End: len(x)}}, 50+10*rng.Float64(), false)
			f, err := svFeatures(c.Front, x)
			if errors.Is(err, synthvoice.ErrNoSpeech) || errors.Is(err, synthvoice.ErrInput) {
				c.Log.Debug("skipped", "group", group, "aug", name, "err", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", group, name, err)
			}
			items = append(items, SVItem{Source: src, Group: group, Synthetic: synth, Aug: name, Refiltered: contour != "", Contour: contour, X: f})
		}
		return nil
	}
	many, few := max(1, c.Augs/2), c.Augs

	// Real: FSDD speakers, 4-digit strings with pauses.
	fsdd, err := LoadFSDD(c.Front, filepath.Join(c.Data, "speech", "fsdd"), FSDDSpeakers)
	if err != nil {
		return nil, err
	}
	for _, g := range groupClips(fsdd) {
		for range c.FSDDUtterances {
			pick := make([]Clip, 4)
			gaps := make([]int, 3)
			for i := range pick {
				pick[i] = g[rng.IntN(len(g))]
			}
			for i := range gaps {
				gaps[i] = int((0.05 + 0.3*rng.Float64()) * speech.SampleRate)
			}
			pcm, _ := Concat(pick, gaps, speech.SampleRate*3/10, speech.SampleRate*3/10)
			if err := add(srcFSDD, g[0].Group, false, "", pcm, many); err != nil {
				return nil, err
			}
		}
		c.Log.Info("real speech", "group", g[0].Group, "items", len(items))
	}

	// Real: GRID sentences and talking action clips (decoded by liveness/media).
	dec := media.NewDecoder()
	dec.FPS, dec.Timeout = 1, 2*time.Minute
	dec.Limits = media.Limits{MaxDuration: 30 * time.Second, MaxBytes: 64 << 20, MinDuration: time.Second}
	gridFiles, _ := filepath.Glob(filepath.Join(c.Data, "talking", "grid", "*.mpg"))
	if len(gridFiles) == 0 {
		return nil, fmt.Errorf("no GRID clips under %s", filepath.Join(c.Data, "talking", "grid"))
	}
	sort.Strings(gridFiles)
	gridAudio := map[string][]int16{}
	for _, f := range gridFiles {
		clip, err := dec.DecodeFile(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".mpg")
		gridAudio[name] = clip.Audio.Samples
		if err := add(srcGRID, "grid:"+name, false, "", clip.Audio.Samples, few); err != nil {
			return nil, err
		}
	}
	actionFiles, _ := filepath.Glob(filepath.Join(c.Data, "action", "*", "*.mp4"))
	sort.Strings(actionFiles)
	for _, f := range actionFiles {
		clip, err := dec.DecodeFile(ctx, f)
		if errors.Is(err, media.ErrNoAudio) || errors.Is(err, media.ErrTooLong) || errors.Is(err, media.ErrSilent) {
			c.Log.Info("action clip not used", "file", f, "err", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := "action:" + strings.TrimSuffix(filepath.Base(f), ".mp4")
		pcm := clip.Audio.Samples
		const win = 3 * speech.SampleRate
		for s := 0; s+2*speech.SampleRate <= len(pcm); s += win {
			w := pcm[s:min(s+win, len(pcm))]
			if !svMostlyVoiced(c.Front, w) {
				continue
			}
			if err := add(srcAction, name, false, "", w, few); err != nil {
				return nil, err
			}
		}
	}
	c.Log.Info("real speech", "items", len(items))

	// Synthetic: every installed engine's voices.
	gridNames := make([]string, 0, len(gridAudio))
	for n := range gridAudio {
		gridNames = append(gridNames, n)
	}
	sort.Strings(gridNames)
	for _, v := range SyntheticVoices(rng, c.EspeakVoices) {
		for range c.Texts {
			text := strings.ReplaceAll(svPhrases[rng.IntN(len(svPhrases))], "X", svDigitWords(rng, 4))
			pcm, err := Synthesize(ctx, v, text, c.Scratch, c.TTSCache)
			if err != nil {
				return nil, err
			}
			lead, tail := make([]int16, int((0.2+0.3*rng.Float64())*speech.SampleRate)), make([]int16, int((0.2+0.3*rng.Float64())*speech.SampleRate))
			pcm = append(append(lead, pcm...), tail...)
			contour := ""
			if rng.Float64() < 0.3 {
				contour = gridNames[rng.IntN(len(gridNames))]
				pcm = fakeclip.MatchEnvelope(pcm, gridAudio[contour], speech.SampleRate, 0.4+0.6*rng.Float64())
			}
			if err := add(v.Engine, v.Name, true, contour, pcm, many); err != nil {
				return nil, err
			}
		}
		c.Log.Info("synthetic speech", "voice", v.Name, "items", len(items))
	}

	// Synthetic: make-fake-clip's dub on every GRID clip.
	for _, f := range gridFiles {
		name := strings.TrimSuffix(filepath.Base(f), ".mpg")
		for _, w := range []float64{0.4, 0.7, 1.0} {
			digits := fmt.Sprintf("%04d", rng.IntN(10000))
			pcm, err := fakeclip.DubAudio(ctx, fakeclip.Options{Grid: f, EnvelopeWeight: w}, digits)
			if err != nil {
				return nil, fmt.Errorf("dub %s: %w", name, err)
			}
			if err := add(srcDub, fmt.Sprintf("dub:%s:w%.1f", name, w), true, name, pcm, few); err != nil {
				return nil, err
			}
		}
	}
	c.Log.Info("corpus built", "items", len(items))
	return items, nil
}

// svFeatures runs what the service runs on int16 audio at 16 kHz.
func svFeatures(front *speech.Frontend, pcm []int16) ([]float64, error) {
	f := make([]float32, len(pcm))
	for i, v := range pcm {
		f[i] = float32(v)
	}
	x, err := synthvoice.Prepare(f, speech.SampleRate)
	if err != nil {
		return nil, err
	}
	return synthvoice.Features(front, x)
}

// svMostlyVoiced keeps action-clip windows that are speech (at least 40 %
// voiced), not music or silence between sentences.
func svMostlyVoiced(front *speech.Frontend, pcm []int16) bool {
	act, err := front.VoiceActivity(pcm)
	if err != nil || len(act) == 0 {
		return false
	}
	n := 0
	for _, p := range act {
		if p >= speech.VoiceThreshold {
			n++
		}
	}
	return float64(n) >= 0.4*float64(len(act))
}

func svDigitWords(rng *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = DigitWords[rng.IntN(10)]
	}
	return strings.Join(w, " ")
}

// svAugment applies, each with its own probability, a lossy codec (Opus,
// AAC or MP3 at a low bit rate, through ffmpeg), reverberation and noise,
// and names what it did.
func svAugment(ctx context.Context, rng *rand.Rand, pcm []int16) ([]int16, string, error) {
	var name []string
	x := pcm
	if rng.Float64() < 0.25 {
		x = Reverb(rng, x, 0.15+0.35*rng.Float64(), 0.2+0.4*rng.Float64())
		name = append(name, "reverb")
	}
	if rng.Float64() < 0.6 {
		codecs := []struct{ name, codec, format string }{{"opus", "libopus", "ogg"}, {"aac", "aac", "adts"}, {"mp3", "libmp3lame", "mp3"}}
		k := codecs[rng.IntN(len(codecs))]
		kbps := []int{12, 16, 24, 32}[rng.IntN(4)]
		if k.name != "opus" {
			kbps *= 2
		}
		var err error
		if x, err = svCodec(ctx, x, k.codec, k.format, kbps); err != nil {
			return nil, "", err
		}
		name = append(name, fmt.Sprintf("%s%dk", k.name, kbps))
	}
	if rng.Float64() < 0.6 {
		snr := 10 + 30*rng.Float64()
		x = AddNoise(rng, x, []Span{{Start: 0, End: len(x)}}, snr, rng.Float64() < 0.5)
		name = append(name, fmt.Sprintf("noise%.0f", snr))
	}
	if len(name) == 0 {
		x = Gain(x, 0.5)
		name = append(name, "gain")
	}
	return x, strings.Join(name, "+"), nil
}

// svCodec encodes 16 kHz pcm with codec at kbps and decodes it back.
func svCodec(ctx context.Context, pcm []int16, codec, format string, kbps int) ([]int16, error) {
	wav := media.EncodeWAV(media.Audio{Rate: speech.SampleRate, Samples: pcm})
	enc, err := svFFmpeg(ctx, wav, "-i", "-", "-c:a", codec, "-b:a", strconv.Itoa(kbps)+"k", "-f", format, "-")
	if err != nil {
		return nil, err
	}
	raw, err := svFFmpeg(ctx, enc, "-i", "-", "-ac", "1", "-ar", strconv.Itoa(speech.SampleRate), "-f", "s16le", "-")
	if err != nil {
		return nil, err
	}
	out := make([]int16, len(raw)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return out, nil
}

func svFFmpeg(ctx context.Context, in []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-v", "error"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg %v: %w: %s", args, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// svTemp makes the scratch directory for the synthesisers.
func svTemp() (string, func(), error) {
	d, err := os.MkdirTemp("", "trustid-synthvoice-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}
