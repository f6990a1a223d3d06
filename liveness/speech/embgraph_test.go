package speech

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/onnx"
	"github.com/trustid/trustid/liveness/media"
)

// windowEmbeddings is the embedding computation as exported: the original
// model (time length fixed at 76) run on each window, batched.
func windowEmbeddings(t *testing.T, dir string, mel [][melBins]float32, step int) [][EmbeddingDim]float32 {
	t.Helper()
	s, err := onnx.Open(onnx.Config{
		Library: filepath.Join(dir, onnx.LibraryName), Model: filepath.Join(dir, "embedding_model.onnx"),
		Inputs: []string{embInputName}, Outputs: []string{embOutputName}, IntraOpThreads: 1, InterOpThreads: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := (len(mel)-embWindow)/step + 1
	in := make([]float32, n*embWindow*melBins)
	for w := range n {
		for k := range embWindow {
			copy(in[(w*embWindow+k)*melBins:], mel[w*step+k][:])
		}
	}
	outs, err := s.Run(onnx.Tensor{Shape: []int64{int64(n), embWindow, melBins, 1}, Float: in})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][EmbeddingDim]float32, n)
	for i := range out {
		copy(out[i][:], outs[0].Float[i*EmbeddingDim:])
	}
	return out
}

// TestConvolutionalEmbeddingsMatchWindows: the rewritten model run once
// over the recording gives every window's embedding as the exported model
// does on that window alone (within float rounding), at the default step
// and at steps that need several runs.
func TestConvolutionalEmbeddingsMatchWindows(t *testing.T) {
	dir := modelsDir(t)
	f := testFrontend(t)
	var clips [][]int16
	for _, name := range []string{"4_george_0.wav", "7_jackson_12.wav", "0_theo_3.wav"} {
		b, err := os.ReadFile(filepath.Join(fsddDir(t), name))
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
		clips = append(clips, padded(pcm))
	}
	// A 3 s noisy recording as well: every window differs.
	noise := make([]int16, 3*SampleRate)
	x := uint32(1)
	for i := range noise {
		x = x*1664525 + 1013904223
		noise[i] = int16(int32(x>>16)%4000 - 2000)
	}
	clips = append(clips, noise)
	var worst float64
	for ci, pcm := range clips {
		mel, err := f.Mel(pcm)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []int{EmbeddingStep, 4, 3, 20} {
			got, err := f.EmbeddingsStep(pcm, step)
			if err != nil {
				t.Fatal(err)
			}
			want := windowEmbeddings(t, dir, mel, step)
			if len(got) != len(want) {
				t.Fatalf("clip %d step %d: %d embeddings, want %d", ci, step, len(got), len(want))
			}
			for w := range want {
				for d := range EmbeddingDim {
					diff := math.Abs(float64(got[w][d] - want[w][d]))
					worst = max(worst, diff)
					if diff > 1e-6*max(1, math.Abs(float64(want[w][d]))) {
						t.Fatalf("clip %d step %d window %d dim %d: %v, window alone %v", ci, step, w, d, got[w][d], want[w][d])
					}
				}
			}
		}
	}
	t.Logf("largest difference from the window-by-window embeddings: %g", worst)
}

func TestConvolutionalEmbeddingRefusesOtherGraphs(t *testing.T) {
	dir := modelsDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "embedding_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convolutionalEmbedding(b); err != nil {
		t.Fatalf("the pinned model: %v", err)
	}
	for name, m := range map[string][]byte{
		"mel model": mustRead(t, filepath.Join(dir, "melspectrogram.onnx")),
		"garbage":   []byte{0xff, 0xff, 0xff},
		"empty":     nil,
	} {
		if _, err := convolutionalEmbedding(m); !errors.Is(err, ErrModel) {
			t.Errorf("%s: err = %v, want ErrModel", name, err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
