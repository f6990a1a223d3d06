package speech

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/cputime"
	"github.com/trustid/trustid/internal/onnx"
	"github.com/trustid/trustid/liveness/media"
)

// exportedVAD opens the exported VAD graph (shapes free, sr an input), as
// the front end ran it before splitVAD.
func exportedVAD(t testing.TB, dir string) *onnx.Session {
	t.Helper()
	s, err := onnx.Open(onnx.Config{
		Library: filepath.Join(dir, onnx.LibraryName), Model: filepath.Join(dir, "silero_vad.onnx"),
		Inputs: []string{"input", "sr", "h", "c"}, Outputs: []string{"output", "hn", "cn"}, IntraOpThreads: 1, InterOpThreads: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exportedVoiceActivity is voiceActivity on the exported graph s.
func exportedVoiceActivity(t testing.TB, s *onnx.Session, pcm []int16, gain float32) []float32 {
	t.Helper()
	n := (len(pcm) + vadChunk - 1) / vadChunk
	chunk := make([]float32, vadChunk)
	h := make([]float32, vadStateSize)
	c := make([]float32, vadStateSize)
	b, err := s.Bind([]onnx.Tensor{
		{Shape: []int64{1, vadChunk}, Float: chunk},
		{Shape: []int64{1}, Int64: []int64{SampleRate}},
		{Shape: []int64{2, 1, 64}, Float: h},
		{Shape: []int64{2, 1, 64}, Float: c},
	}, [][]int64{{1, 1}, {2, 1, 64}, {2, 1, 64}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	probs := make([]float32, n)
	gain /= 32768
	for i := range n {
		seg := pcm[i*vadChunk : min(len(pcm), (i+1)*vadChunk)]
		for j := range chunk {
			chunk[j] = 0
			if j < len(seg) {
				chunk[j] = float32(seg[j]) * gain
			}
		}
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		probs[i] = b.Output(0)[0]
		copy(h, b.Output(1))
		copy(c, b.Output(2))
	}
	return probs
}

// vadClips are recordings to compare VAD paths on: GRID sentences, FSDD
// digits and noise.
func vadClips(t *testing.T) map[string][]int16 {
	clips := map[string][]int16{"grid bbaf2n": gridAudio(t, "bbaf2n"), "grid swiz3n": gridAudio(t, "swiz3n")}
	for _, name := range []string{"4_george_0.wav", "7_jackson_12.wav", "0_theo_3.wav"} {
		b, err := os.ReadFile(filepath.Join(fsddDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		a, err := media.ReadWAV(b)
		if err != nil {
			t.Fatal(err)
		}
		if clips[name], err = Resample(a.Samples, a.Rate, SampleRate); err != nil {
			t.Fatal(err)
		}
	}
	noise := make([]int16, 3*SampleRate+100)
	var x uint32 = 5
	for i := range noise {
		x = x*1664525 + 1013904223
		noise[i] = int16(int32(x>>16)%2001 - 1000)
	}
	clips["noise"] = noise
	return clips
}

// TestSplitVADMatchesExported: the split VAD as the front end runs it (the
// encoder batched over the chunks) gives the exported graph's
// probabilities within float rounding and the same voiced/unvoiced call
// (VoiceThreshold) on every chunk, at the normalised and the recorded
// level; run one chunk at a time the halves give them bit for bit.
func TestSplitVADMatchesExported(t *testing.T) {
	dir := modelsDir(t)
	f := testFrontend(t)
	exported := exportedVAD(t, dir)
	var worst float64
	for name, pcm := range vadClips(t) {
		for _, gain := range []float32{1, vadGain(pcm)} {
			want := exportedVoiceActivity(t, exported, pcm, gain)
			got, err := f.voiceActivity(pcm, gain)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d chunks, want %d", name, len(got), len(want))
			}
			for i := range want {
				d := math.Abs(float64(got[i] - want[i]))
				worst = max(worst, d)
				if d > 1e-5 || (got[i] >= VoiceThreshold) != (want[i] >= VoiceThreshold) {
					t.Errorf("%s gain %v: chunk %d: %v, exported graph %v", name, gain, i, got[i], want[i])
				}
			}
			// The decoder over all the chunks' steps at once is its run
			// chunk by chunk with the state carried, bit for bit.
			for i, p := range stepByStepVoiceActivity(t, f, pcm, gain) {
				if p != got[i] {
					t.Fatalf("%s gain %v: chunk %d: decoder as one sequence %v, chunk by chunk %v", name, gain, i, got[i], p)
				}
			}
			if name != "grid bbaf2n" {
				continue
			}
			one := chunkByChunkVoiceActivity(t, f, pcm, gain)
			for i := range want {
				if one[i] != want[i] {
					t.Fatalf("%s gain %v: chunk %d: halves one chunk at a time %v, exported graph %v", name, gain, i, one[i], want[i])
				}
			}
		}
	}
	t.Logf("largest difference from the exported graph: %.3g", worst)
}

// stepByStepVoiceActivity runs the split VAD as the front end does but
// the decoder one chunk at a time, the LSTMs' state carried from run to
// run.
func stepByStepVoiceActivity(t *testing.T, f *Frontend, pcm []int16, gain float32) []float32 {
	n := (len(pcm) + vadChunk - 1) / vadChunk
	chunks := make([]float32, n*vadChunk)
	for i, v := range pcm {
		chunks[i] = float32(v) * (gain / 32768)
	}
	enc, err := f.vadEnc.Run(onnx.Tensor{Shape: []int64{int64(n), vadChunk}, Float: chunks})
	if err != nil {
		t.Fatal(err)
	}
	per := len(enc[0].Float) / n
	h := make([]float32, vadStateSize)
	c := make([]float32, vadStateSize)
	probs := make([]float32, n)
	for i := range n {
		x := onnx.Tensor{Shape: []int64{1, enc[0].Shape[1], enc[0].Shape[2]}, Float: enc[0].Float[i*per : (i+1)*per]}
		out, err := f.vadDec.Run(x, onnx.Tensor{Shape: []int64{2, 1, 64}, Float: h}, onnx.Tensor{Shape: []int64{2, 1, 64}, Float: c})
		if err != nil {
			t.Fatal(err)
		}
		var sum float32
		for _, p := range out[0].Float {
			sum += p
		}
		probs[i], h, c = sum/float32(len(out[0].Float)), out[1].Float, out[2].Float
	}
	return probs
}

// chunkByChunkVoiceActivity runs the split VAD with the encoder on one
// chunk at a time.
func chunkByChunkVoiceActivity(t *testing.T, f *Frontend, pcm []int16, gain float32) []float32 {
	n := (len(pcm) + vadChunk - 1) / vadChunk
	h := make([]float32, vadStateSize)
	c := make([]float32, vadStateSize)
	probs := make([]float32, n)
	chunk := make([]float32, vadChunk)
	for i := range n {
		seg := pcm[i*vadChunk : min(len(pcm), (i+1)*vadChunk)]
		for j := range chunk {
			chunk[j] = 0
			if j < len(seg) {
				chunk[j] = float32(seg[j]) * (gain / 32768)
			}
		}
		enc, err := f.vadEnc.Run(onnx.Tensor{Shape: []int64{1, vadChunk}, Float: chunk})
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.vadDec.Run(enc[0], onnx.Tensor{Shape: []int64{2, 1, 64}, Float: h}, onnx.Tensor{Shape: []int64{2, 1, 64}, Float: c})
		if err != nil {
			t.Fatal(err)
		}
		probs[i], h, c = out[0].Float[0], out[1].Float, out[2].Float
	}
	return probs
}

func TestSplitVADRefusesOtherGraphs(t *testing.T) {
	dir := modelsDir(t)
	emb, err := os.ReadFile(filepath.Join(dir, "embedding_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"embedding model": emb, "garbage": {0xff, 0xff, 0xff}, "empty": nil} {
		if _, err := splitVAD(b); !errors.Is(err, ErrModel) {
			t.Errorf("%s: err %v, want ErrModel", name, err)
		}
	}
}

// BenchmarkVoiceActivity3s is the VAD on the 3 s GRID clip, on the
// exported graph and as the front end runs it.
func BenchmarkVoiceActivity3s(b *testing.B) {
	dir := modelsDir(b)
	f := testFrontend(b)
	pcm := gridAudio(b, "bbaf2n")
	exported := exportedVAD(b, dir)
	b.Run("exported", func(b *testing.B) {
		c0 := cputime.Process()
		for b.Loop() {
			exportedVoiceActivity(b, exported, pcm, vadGain(pcm))
		}
		cputime.ReportPerOp(b, c0)
	})
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		c0 := cputime.Process()
		for b.Loop() {
			if _, err := f.VoiceActivity(pcm); err != nil {
				b.Fatal(err)
			}
		}
		cputime.ReportPerOp(b, c0)
	})
}
