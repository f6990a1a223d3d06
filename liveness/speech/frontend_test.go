package speech

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

// modelsDir returns $TRUSTID_MODELS, skipping (or failing in CI) when unset.
func modelsDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("TRUSTID_MODELS")
	if d != "" {
		if _, err := os.Stat(filepath.Join(d, "embedding_model.onnx")); err == nil {
			return d
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("TRUSTID_MODELS (%q) has no speech models", d)
	}
	t.Skipf("TRUSTID_MODELS (%q) has no speech models", d)
	return ""
}

// testFrontend is the front end on modelsDir's models, closed when the test
// ends.
func testFrontend(t testing.TB) *Frontend {
	t.Helper()
	f, err := NewFrontend(modelsDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// testdataDir returns $TRUSTID_TESTDATA/speech/fsdd, skipping (or failing in CI) when missing.
func fsddDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(os.Getenv("TRUSTID_TESTDATA"), "speech", "fsdd")
	if os.Getenv("TRUSTID_TESTDATA") != "" {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no FSDD under TRUSTID_TESTDATA (%q)", d)
	}
	t.Skipf("no FSDD under TRUSTID_TESTDATA (%q)", d)
	return ""
}

func TestFrontendShapes(t *testing.T) {
	f := testFrontend(t)
	b, err := os.ReadFile(filepath.Join(fsddDir(t), "4_george_0.wav"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := media.ReadWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := Resample(a.Samples, a.Rate, SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	pcm = append(make([]int16, 8000), append(pcm, make([]int16, 8000)...)...)
	mel, err := f.Mel(pcm)
	if err != nil {
		t.Fatal(err)
	}
	wantMel := len(pcm)/melHop - 3
	if d := len(mel) - wantMel; d < -2 || d > 2 {
		t.Errorf("mel frames = %d for %d samples, want about %d", len(mel), len(pcm), wantMel)
	}
	emb, err := f.Embeddings(pcm)
	if err != nil {
		t.Fatal(err)
	}
	if want := (len(mel)-embWindow)/EmbeddingStep + 1; len(emb) != want {
		t.Errorf("embeddings = %d, want %d", len(emb), want)
	}
	// A 40 ms hop gives every other window of the 80 ms one in between.
	emb4, err := f.EmbeddingsStep(pcm, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := (len(mel)-embWindow)/4 + 1; len(emb4) != want {
		t.Errorf("embeddings at step 4 = %d, want %d", len(emb4), want)
	}
	for i := range emb {
		for d := range EmbeddingDim {
			if diff := emb4[2*i][d] - emb[i][d]; diff > 1e-4 || diff < -1e-4 {
				t.Fatalf("step-4 window %d differs from step-8 window %d in dim %d: %v vs %v", 2*i, i, d, emb4[2*i][d], emb[i][d])
			}
		}
	}
	if _, err := f.EmbeddingsStep(pcm, 0); err == nil {
		t.Error("step 0 accepted")
	}
	vad, err := f.VoiceActivity(pcm)
	if err != nil {
		t.Fatal(err)
	}
	var voiced, lead int
	for i, p := range vad {
		if p > 0.5 {
			voiced++
		} else if voiced == 0 && i*vadChunk < 8000 {
			lead++
		}
	}
	if voiced == 0 || lead == 0 {
		t.Errorf("vad: %d voiced chunks, %d silent leading chunks; want both > 0 (%v)", voiced, lead, vad)
	}
	t.Logf("samples %d mel %d emb %d vad %d voiced %d", len(pcm), len(mel), len(emb), len(vad), voiced)
}

// TestPaddedEmbeddingsMel: the mel frames PaddedEmbeddingsMel cuts from the
// padded recording are Mel(pcm) bit for bit for recordings of 1 s or more
// (within float rounding for shorter ones), and its embeddings are
// PaddedEmbeddings', at lengths that are and are not whole hops.
func TestPaddedEmbeddingsMel(t *testing.T) {
	f := testFrontend(t)
	grid := gridAudio(t, "bbaf2n")
	var x uint32 = 3
	noise := make([]int16, 12*SampleRate)
	for i := range noise {
		x = x*1664525 + 1013904223
		noise[i] = int16(int32(x>>16)%6001 - 3000)
	}
	tests := []struct {
		name string
		pcm  []int16
		step int
		tol  float32
	}{
		{"grid 3 s", grid, EmbeddingStep, 0},
		{"grid 3 s, step 4", grid, 4, 0},
		{"grid cut to 1 s", grid[:SampleRate], EmbeddingStep, 0},
		{"grid cut to 1.23456 s", grid[:19753], EmbeddingStep, 0},
		{"grid from 0.4999 s", grid[7998:], EmbeddingStep, 0},
		{"noise 12 s", noise, EmbeddingStep, 0},
		{"noise 7.00006 s", noise[:112001], EmbeddingStep, 0},
		{"noise 0.1 s", noise[:1600], EmbeddingStep, 1e-5},
		{"noise 512 samples", noise[:512], EmbeddingStep, 1e-5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emb, mel, err := f.PaddedEmbeddingsMel(tc.pcm, tc.step)
			if err != nil {
				t.Fatal(err)
			}
			wantMel, err := f.Mel(tc.pcm)
			if err != nil {
				t.Fatal(err)
			}
			wantEmb, err := f.PaddedEmbeddings(tc.pcm, tc.step)
			if err != nil {
				t.Fatal(err)
			}
			if len(mel) != len(wantMel) || len(emb) != len(wantEmb) {
				t.Fatalf("%d mel frames and %d embeddings, want %d and %d", len(mel), len(emb), len(wantMel), len(wantEmb))
			}
			for i := range mel {
				for j := range mel[i] {
					if d := mel[i][j] - wantMel[i][j]; d > tc.tol || d < -tc.tol {
						t.Fatalf("mel frame %d bin %d: %v, Mel's %v", i, j, mel[i][j], wantMel[i][j])
					}
				}
			}
			for i := range emb {
				if emb[i] != wantEmb[i] {
					t.Fatalf("embedding %d differs from PaddedEmbeddings'", i)
				}
			}
		})
	}
	for _, n := range []int{0, 399, 511} {
		if _, _, err := f.PaddedEmbeddingsMel(noise[:n], EmbeddingStep); !errors.Is(err, ErrAudioLength) {
			t.Errorf("%d samples: %v, want ErrAudioLength", n, err)
		}
	}
}

func TestVADGain(t *testing.T) {
	tone := func(amp float64) []int16 {
		pcm := make([]int16, 16000)
		for i := range pcm {
			pcm[i] = int16(amp * math.Sin(float64(i)/10))
		}
		return pcm
	}
	clicky := tone(1000)
	clicky[100], clicky[200] = 32767, -32768 // under 0.1 % of the samples
	tests := []struct {
		name string
		pcm  []int16
		want float32
	}{
		{"silence", make([]int16, 16000), 1},
		{"loud is not attenuated", tone(20000), 1},
		{"quiet raised to half scale", tone(1000), 0.5 * 32768 / 1000},
		{"clicks ignored", clicky, 0.5 * 32768 / 1000},
		{"faint capped at 30 dB", tone(100), vadMaxGain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vadGain(tt.pcm); math.Abs(float64(got-tt.want)) > 0.02*float64(tt.want) {
				t.Errorf("gain %.3f, want %.3f", got, tt.want)
			}
		})
	}
}

// TestFrameGeometry: the exported frame geometry the lab labels training
// frames by agrees with the times the recogniser reports segments at.
func TestFrameGeometry(t *testing.T) {
	if FrameDuration != 80*time.Millisecond || ActivityHop != ActivityChunk*time.Second/SampleRate {
		t.Errorf("FrameDuration %v, ActivityHop %v for %d samples", FrameDuration, ActivityHop, ActivityChunk)
	}
	for _, step := range []int{4, EmbeddingStep} {
		for f := range 40 {
			c := FrameCentreSample(f, step)
			want := time.Duration(max(c, 0)) * time.Second / SampleRate
			if got := frameCentre(f, step); got != want {
				t.Errorf("step %d frame %d: segment time %v, centre sample %d (%v)", step, f, got, c, want)
			}
		}
	}
	if d := FrameCentreSample(1, EmbeddingStep) - FrameCentreSample(0, EmbeddingStep); d != int(FrameDuration*SampleRate/time.Second) {
		t.Errorf("frames %d samples apart, want %v", d, FrameDuration)
	}
}
