package speechlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
)

// DigitWords are the English words the synthesisers are asked to say.
var DigitWords = [10]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// Voice is one synthetic speaker: a text-to-speech engine and its settings.
type Voice struct {
	Engine string   // "flite", "espeak-ng" or "festival"
	Name   string   // stable identifier, e.g. "espeak-ng:en-us+m3:s150:p60"
	args   []string // engine arguments before the text/output
	eval   []string // festival -eval expressions
}

// ErrNoSynth: a speech synthesiser is not installed.
var ErrNoSynth = errors.New("speech: synthesiser not installed")

// SyntheticVoices lists the synthetic speakers for training, drawn with rng
// from every installed engine: flite's voices at three speaking rates,
// espeak-ng's English accents and variants at varied rate and pitch, and
// festival's voices at three rates when festival is installed.
func SyntheticVoices(rng *rand.Rand, espeakCount int) []Voice {
	var vs []Voice
	if _, err := exec.LookPath("flite"); err == nil {
		for _, v := range []string{"kal", "kal16", "awb", "rms", "slt"} {
			for _, st := range []string{"0.85", "1.0", "1.25"} {
				vs = append(vs, Voice{Engine: "flite", Name: "flite:" + v + ":" + st,
					args: []string{"-voice", v, "--setf", "duration_stretch=" + st}})
			}
		}
	}
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		accents := []string{"en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"}
		variants := []string{"", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5"}
		for range espeakCount {
			a := accents[rng.IntN(len(accents))] + variants[rng.IntN(len(variants))]
			s := 110 + rng.IntN(120)
			p := 20 + rng.IntN(60)
			vs = append(vs, Voice{Engine: "espeak-ng", Name: fmt.Sprintf("espeak-ng:%s:s%d:p%d", a, s, p),
				args: []string{"-v", a, "-s", fmt.Sprint(s), "-p", fmt.Sprint(p)}})
		}
	}
	if _, err := exec.LookPath("text2wave"); err == nil {
		for _, v := range []string{"kal_diphone", "cmu_us_slt_arctic_hts"} {
			if _, err := os.Stat(filepath.Join("/usr/share/festival/voices", map[string]string{"kal_diphone": "english", "cmu_us_slt_arctic_hts": "us"}[v], v)); err != nil {
				continue
			}
			for _, st := range []string{"0.85", "1.0", "1.25"} {
				vs = append(vs, Voice{Engine: "festival", Name: "festival:" + v + ":" + st,
					eval: []string{"(voice_" + v + ")", "(Parameter.set 'Duration_Stretch " + st + ")"}})
			}
		}
	}
	return vs
}

// Synthesize says text with voice v and returns 16 kHz mono PCM. dir is a
// scratch directory.
// When cache is not empty, outputs are kept there by voice and text and
// reused (the synthesisers are deterministic; festival is slow to start).
func Synthesize(ctx context.Context, v Voice, text, dir, cache string) ([]int16, error) {
	var cached string
	if cache != "" {
		sum := sha256.Sum256([]byte(v.Name + "\x00" + text))
		cached = filepath.Join(cache, hex.EncodeToString(sum[:12])+".wav")
		if b, err := os.ReadFile(cached); err == nil {
			if a, err := media.ReadWAV(b); err == nil && a.Rate == speech.SampleRate {
				return a.Samples, nil
			}
		}
	}
	f, err := os.CreateTemp(dir, "tts-*.wav")
	if err != nil {
		return nil, fmt.Errorf("speech: synthesize: %w", err)
	}
	out := f.Name()
	f.Close()
	defer os.Remove(out)
	var cmd *exec.Cmd
	switch v.Engine {
	case "flite":
		cmd = exec.CommandContext(ctx, "flite", append(append([]string{}, v.args...), "-t", text, "-o", out)...)
	case "espeak-ng":
		cmd = exec.CommandContext(ctx, "espeak-ng", append(append([]string{}, v.args...), "-w", out, text)...)
	case "festival":
		args := []string{"-o", out}
		for _, e := range v.eval {
			args = append(args, "-eval", e)
		}
		cmd = exec.CommandContext(ctx, "text2wave", args...)
		cmd.Stdin = strings.NewReader(text)
	default:
		return nil, fmt.Errorf("%w: %q", ErrNoSynth, v.Engine)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoSynth, v.Engine)
		}
		return nil, fmt.Errorf("speech: %s: %w: %s", v.Name, err, strings.TrimSpace(string(msg)))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("speech: synthesize: %w", err)
	}
	a, err := media.ReadWAV(b)
	if err != nil {
		return nil, fmt.Errorf("speech: %s output: %w", v.Name, err)
	}
	pcm, err := speech.Resample(a.Samples, a.Rate, speech.SampleRate)
	if err != nil {
		return nil, err
	}
	if cached != "" {
		if err := os.WriteFile(cached, media.EncodeWAV(media.Audio{Rate: speech.SampleRate, Samples: pcm}), 0o644); err != nil {
			return nil, fmt.Errorf("speech: tts cache: %w", err)
		}
	}
	return pcm, nil
}
