package synthvoice

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/trustid/trustid/internal/cputime"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// need returns what lookup finds, skipping (or failing in CI) when it is
// missing, as the other data-driven tests do.
func need(t testing.TB, what string, lookup func() (string, bool)) string {
	t.Helper()
	if v, ok := lookup(); ok {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not available", what)
	}
	t.Skipf("%s not available", what)
	return ""
}

func modelsDir(t testing.TB) string {
	return need(t, "speech models under TRUSTID_MODELS", func() (string, bool) {
		d := os.Getenv("TRUSTID_MODELS")
		_, err := os.Stat(filepath.Join(d, "embedding_model.onnx"))
		return d, d != "" && err == nil
	})
}

func dataDir(t testing.TB, rel string) string {
	return need(t, rel+" under TRUSTID_TESTDATA", func() (string, bool) {
		d := filepath.Join(os.Getenv("TRUSTID_TESTDATA"), rel)
		_, err := os.Stat(d)
		return d, os.Getenv("TRUSTID_TESTDATA") != "" && err == nil
	})
}

func tool(t testing.TB, name string) string {
	return need(t, name, func() (string, bool) {
		p, err := exec.LookPath(name)
		return p, err == nil
	})
}

func newDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := New(Config{ModelDir: modelsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// fsddString joins the speaker's recordings of digits (take 0) with 250 ms
// pauses and 300 ms of silence around, at 8 kHz as FSDD is.
func fsddString(t testing.TB, speaker, digits string) []float32 {
	t.Helper()
	dir := dataDir(t, "speech/fsdd")
	out := make([]float32, 2400)
	for i, d := range digits {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%c_%s_%d.wav", d, speaker, i)))
		if err != nil {
			t.Fatal(err)
		}
		a, err := media.ReadWAV(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range a.Samples {
			out = append(out, float32(v)/32768)
		}
		out = append(out, make([]float32, 2000)...)
	}
	return withFloor(append(out, make([]float32, 400)...))
}

// withFloor adds a faint deterministic noise floor (about -70 dBFS), as any
// microphone has: digital silence is not a capture (the training corpus has
// the same floor on every recording).
func withFloor(pcm []float32) []float32 {
	var x uint32 = 99
	for i := range pcm {
		x = x*1664525 + 1013904223
		pcm[i] += float32(int32(x>>16)%21-10) / 32768
	}
	return pcm
}

// synth runs a synthesiser command that writes a WAV file where its
// arguments say OUT, and returns the speech with 250 ms of silence around.
func synth(t testing.TB, name string, args ...string) ([]float32, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tts.wav")
	for i, a := range args {
		if a == "OUT" {
			args[i] = out
		}
	}
	cmd := exec.Command(tool(t, name), args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	a, err := media.ReadWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	pad := a.Rate / 4
	pcm := make([]float32, pad, len(a.Samples)+2*pad)
	for _, v := range a.Samples {
		pcm = append(pcm, float32(v)/32768)
	}
	return withFloor(append(pcm, make([]float32, pad)...)), a.Rate
}

func gridAudio(t testing.TB, name string) []float32 {
	t.Helper()
	dir := dataDir(t, "talking/grid")
	tool(t, "ffmpeg")
	clip, err := media.NewDecoder().DecodeFile(context.Background(), filepath.Join(dir, name+".mpg"))
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]float32, len(clip.Audio.Samples))
	for i, v := range clip.Audio.Samples {
		pcm[i] = float32(v) / 32768
	}
	return pcm
}

// The check's behaviour on data it was built for: flite and espeak-ng
// digit strings mostly score synthetic, FSDD speakers' digit strings score
// real. The committed model was trained on these speakers and engines (its
// held-out errors are measured by trustid-lab eval-synthvoice, README.md):
// this test guards the pipeline and the committed weights, not
// generalisation. The check is a weak signal on single clips even for
// voices it has heard (README.md: about 1 clip in 6 of its own flite voices
// is missed at the shipped threshold), so the synthetic side is held to a
// share, the real side to every clip.
func TestSyntheticAndRealSpeech(t *testing.T) {
	d := newDetector(t)
	texts := []string{"four two nine one", "seven zero three eight", "one one five six", "my code is two eight four zero", "nine three six two"}
	flagged, total := 0, 0
	score := func(name string, pcm []float32, rate int) float64 {
		t.Helper()
		p, err := d.Synthetic(pcm, rate)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-40s %.4f", name, p)
		return p
	}
	for _, v := range []string{"kal", "kal16", "awb", "rms", "slt"} {
		for _, txt := range texts {
			pcm, rate := synth(t, "flite", "-voice", v, "-t", txt, "-o", "OUT")
			total++
			if score("flite "+v+" "+txt, pcm, rate) >= d.Threshold() {
				flagged++
			}
		}
	}
	for _, v := range []string{"en-us", "en-gb+f3"} {
		for _, txt := range texts[:3] {
			pcm, rate := synth(t, "espeak-ng", "-v", v, "-s", "150", "-w", "OUT", txt)
			total++
			if score("espeak-ng "+v+" "+txt, pcm, rate) >= d.Threshold() {
				flagged++
			}
		}
	}
	if flagged*4 < total*3 {
		t.Errorf("%d of %d synthetic clips flagged (threshold %.4f), want at least 75 %%", flagged, total, d.Threshold())
	}
	for _, s := range []string{"george", "jackson", "nicolas", "theo"} {
		for _, digits := range []string{"4291", "7038", "1156"} {
			if p := score("fsdd "+s+" "+digits, fsddString(t, s, digits), 8000); p >= d.Threshold() {
				t.Errorf("fsdd %s %s: real speech scored %.4f >= threshold %.4f", s, digits, p, d.Threshold())
			}
		}
	}
}

// golden holds scores and signal features of fixed real recordings, so a
// change to the features, the front end or the weights shows up. Refresh
// with `go test ./liveness/synthvoice -run Golden -update` after retraining.
type golden struct {
	Scores   map[string]float64   `json:"scores"`
	Features map[string][]float64 `json:"hand_features"`
}

func TestGolden(t *testing.T) {
	d := newDetector(t)
	inputs := map[string]func() ([]float32, int){
		"fsdd_nicolas_0837": func() ([]float32, int) { return fsddString(t, "nicolas", "0837"), 8000 },
		"grid_bbaf2n":       func() ([]float32, int) { return gridAudio(t, "bbaf2n"), media.SampleRate },
	}
	got := golden{Scores: map[string]float64{}, Features: map[string][]float64{}}
	for name, in := range inputs {
		pcm, rate := in()
		x, err := Prepare(pcm, rate)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Features(d.front, x)
		if err != nil {
			t.Fatal(err)
		}
		got.Scores[name] = d.model.Prob(f)
		got.Features[name] = f[2*speech.EmbeddingDim:]
		p, err := d.Synthetic(pcm, rate)
		if err != nil || p != got.Scores[name] {
			t.Errorf("%s: Synthetic %v, %v differs from Features+Prob %v", name, p, err, got.Scores[name])
		}
		if p >= d.Threshold() {
			t.Errorf("%s: real speech scored %.4f >= threshold %.4f", name, p, d.Threshold())
		}
	}
	path := filepath.Join("testdata", "golden.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", " ")
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want golden
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for name, w := range want.Scores {
		if math.Abs(got.Scores[name]-w) > 1e-3 {
			t.Errorf("%s: score %.5f, golden %.5f", name, got.Scores[name], w)
		}
		for i, wf := range want.Features[name] {
			if g := got.Features[name][i]; math.Abs(g-wf) > 1e-3*max(1, math.Abs(wf)) {
				t.Errorf("%s: %s = %.5f, golden %.5f", name, handNames[i], g, wf)
			}
		}
	}
	if len(want.Scores) != len(inputs) {
		t.Errorf("golden file has %d inputs, want %d", len(want.Scores), len(inputs))
	}
}

// SyntheticActivity is Synthetic with the voice activity of the prepared
// recording, the one the speech recogniser's gate then reads.
func TestSyntheticActivity(t *testing.T) {
	d := newDetector(t)
	pcm := gridAudio(t, "bbaf2n")
	want, err := d.Synthetic(pcm, media.SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	got, act, err := d.SyntheticActivity(pcm, media.SampleRate)
	if err != nil || got != want {
		t.Fatalf("SyntheticActivity %v, %v; Synthetic %v", got, err, want)
	}
	x, err := Prepare(pcm, media.SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	if own, err := d.front.VoiceActivity(x); err != nil || !reflect.DeepEqual(act, own) {
		t.Fatalf("activity %d values, want the front end's on the prepared recording (%d, %v)", len(act), len(own), err)
	}
}

// Too little voice is ErrNoSpeech, not a verdict.
func TestNoSpeech(t *testing.T) {
	d := newDetector(t)
	noise := tone(16000, 2, 0)
	var x uint32 = 1
	for i := range noise {
		x = x*1664525 + 1013904223
		noise[i] = float32(int32(x>>16)%7) / 32768
	}
	if _, err := d.Synthetic(noise, 16000); !errors.Is(err, ErrNoSpeech) {
		t.Errorf("faint noise: %v, want ErrNoSpeech", err)
	}
	if _, err := d.Synthetic(make([]float32, 40000), 16000); !errors.Is(err, ErrNoSpeech) {
		t.Errorf("zeros: %v, want ErrNoSpeech", err)
	}
}

// nopFront is a front end that hears no voice, for tests of the paths
// that do not need the models.
type nopFront struct{}

func (nopFront) PaddedEmbeddingsMel(pcm []int16, step int) ([][speech.EmbeddingDim]float32, [][32]float32, error) {
	return make([][speech.EmbeddingDim]float32, len(pcm)/1280), make([][32]float32, len(pcm)/160), nil
}
func (nopFront) VoiceActivity(pcm []int16) ([]float32, error) {
	return make([]float32, len(pcm)/speech.ActivityChunk), nil
}

func TestFeaturesNeedVoice(t *testing.T) {
	x, err := Prepare(tone(16000, 2, 0.3), 16000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Features(nopFront{}, x); !errors.Is(err, ErrNoSpeech) {
		t.Errorf("no voiced frames: %v, want ErrNoSpeech", err)
	}
	if _, err := Features(nopFront{}, x[:100]); !errors.Is(err, ErrInput) {
		t.Errorf("100 samples: %v, want ErrInput", err)
	}
}

// BenchmarkSynthetic3s is the cost of the check on a 3 s clip (a GRID
// sentence): level normalisation, band limiting, voice activity, mel,
// embeddings, pitch and the classifier.
func BenchmarkSynthetic3s(b *testing.B) {
	d := newDetector(b)
	pcm := gridAudio(b, "bbaf2n")
	b.ReportAllocs()
	c0 := cputime.Process()
	for b.Loop() {
		if _, err := d.Synthetic(pcm, media.SampleRate); err != nil {
			b.Fatal(err)
		}
	}
	cputime.ReportPerOp(b, c0)
}
