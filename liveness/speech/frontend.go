package speech

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trustid/trustid/internal/onnx"
)

// Front-end geometry, fixed by the models.
const (
	melBins   = 32
	melHop    = 160 // samples per mel frame (10 ms)
	melWindow = 512 // the fewest samples the mel model takes
	embWindow = 76  // mel frames per embedding window (~0.775 s)
	embStride = 8   // mel frames between the model's outputs on a longer input
	// EmbeddingStep is the default hop between embeddings in 10 ms mel
	// frames (FrameDuration).
	EmbeddingStep = 8
	// EmbeddingDim is the width of one embedding.
	EmbeddingDim = 96
	// ActivityChunk is the number of samples per voice activity value
	// (ActivityHop at SampleRate).
	ActivityChunk = 512
	vadChunk      = ActivityChunk
	vadStateSize  = 2 * 1 * 64
	vadEncodedDim = 64 // channels of the VAD encoder's output
	// FrameDuration is the time between embeddings at EmbeddingStep.
	FrameDuration = EmbeddingStep * melHop * time.Second / SampleRate
)

// FrameCentreSample is the sample of a recording at which the window of
// embedding frame t of its PaddedEmbeddings (step mel frames apart) is
// centred; negative for windows centred in the leading padding. Training
// labels frames by it.
func FrameCentreSample(t, step int) int {
	return t*step*melHop + embWindow*melHop/2 - padSamples
}

// Frontend turns 16 kHz PCM into speech embeddings (one 96-d vector per
// 80 ms) and voice activity. It is safe for concurrent use: ONNX Runtime
// sessions may run concurrently and every call uses its own tensors.
type Frontend struct {
	mel, emb       *onnx.Session
	vadEnc, vadDec *onnx.Session // splitVAD
}

// NewFrontend loads melspectrogram.onnx, embedding_model.onnx,
// silero_vad.onnx and libonnxruntime.so from dir (normally $TRUSTID_MODELS).
// Each session uses one intra-op thread: requests run in parallel instead.
func NewFrontend(dir string) (*Frontend, error) {
	open := func(name string, in, out []string, rewrite func([]byte) ([]byte, error)) (*onnx.Session, error) {
		cfg := onnx.Config{
			Library: filepath.Join(dir, onnx.LibraryName),
			Model:   filepath.Join(dir, name),
			Inputs:  in, Outputs: out,
			IntraOpThreads: 1, InterOpThreads: 1,
			// See onnx.Config.NoMemPattern: ONNX Runtime 1.17.1 replayed a
			// wrong plan for an inlined VAD graph.
			NoMemPattern: name == vadModelName,
		}
		if rewrite != nil {
			b, err := os.ReadFile(cfg.Model)
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %w: %w", ErrModel, onnx.ErrNotFound, err)
			}
			if err != nil {
				return nil, fmt.Errorf("speech: load %s: %w", name, err)
			}
			if cfg.ModelData, err = rewrite(b); err != nil {
				return nil, err
			}
		}
		s, err := onnx.Open(cfg)
		if errors.Is(err, onnx.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrModel, err)
		}
		if err != nil {
			return nil, fmt.Errorf("speech: load %s: %w", name, err)
		}
		return s, nil
	}
	f := &Frontend{}
	var err error
	// Names and shapes as ONNX Runtime reports them for the pinned files:
	// melspectrogram input [-1,-1] -> output [-1,1,-1,32];
	// embedding input_1 [-1,76,32,1] -> conv2d_19 [-1,1,1,96], loaded
	// rewritten to [1,T,32,1] -> [1,96,(T-76)/8+1,1] (embgraph.go);
	// silero_vad is the v4 graph: input [1,512], sr [1] int64, h and c
	// [2,1,64] -> output [1,1], hn, cn (not v5's single state tensor),
	// loaded as its 16 kHz path cut in two (vadgraph.go): the encoder
	// input [n,512] -> result.43 [n,64,t], and the LSTMs and decoder
	// result.43 [1,64,t], h, c -> output, hn, cn.
	if f.mel, err = open("melspectrogram.onnx", []string{"input"}, []string{"output"}, nil); err != nil {
		return nil, err
	}
	if f.emb, err = open("embedding_model.onnx", []string{embInputName}, []string{embOutputName}, convolutionalEmbedding); err != nil {
		f.Close()
		return nil, err
	}
	half := func(dec bool) func([]byte) ([]byte, error) {
		return func(b []byte) ([]byte, error) {
			m, err := splitVAD(b)
			if dec {
				return m.dec, err
			}
			return m.enc, err
		}
	}
	if f.vadEnc, err = open(vadModelName, []string{vadInputName}, []string{vadEncoded}, half(false)); err != nil {
		f.Close()
		return nil, err
	}
	if f.vadDec, err = open(vadModelName, []string{vadEncoded, "h", "c"}, []string{vadSteps, "hn", "cn"}, half(true)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the sessions.
func (f *Frontend) Close() error {
	var errs []error
	for _, s := range []*onnx.Session{f.mel, f.emb, f.vadEnc, f.vadDec} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// Mel returns the log-mel frames of pcm (10 ms hop, 32 bins), already
// scaled by x/10+2 as openWakeWord does before the embedding model.
func (f *Frontend) Mel(pcm []int16) ([][melBins]float32, error) {
	if len(pcm) < 400 {
		return nil, fmt.Errorf("%w: %d samples", ErrAudioLength, len(pcm))
	}
	inp := float32Bufs.Get(len(pcm))
	defer float32Bufs.Put(inp)
	in := *inp
	for i, s := range pcm {
		in[i] = float32(s) // int16 scale, not normalised to ±1
	}
	outs, err := f.mel.Run(onnx.Tensor{Shape: []int64{1, int64(len(in))}, Float: in})
	if err != nil {
		return nil, fmt.Errorf("speech: mel: %w", err)
	}
	sh := outs[0].Shape
	if len(sh) != 4 || sh[3] != melBins {
		return nil, fmt.Errorf("speech: mel output shape %v", sh)
	}
	data := outs[0].Float
	frames := make([][melBins]float32, sh[2])
	for i := range frames {
		for j := range melBins {
			frames[i][j] = data[i*melBins+j]/10 + 2
		}
	}
	return frames, nil
}

// Embeddings returns one 96-d embedding per 80 ms: window i covers mel
// frames [8i, 8i+76), i.e. audio from 80i ms to about 80i+775 ms.
func (f *Frontend) Embeddings(pcm []int16) ([][EmbeddingDim]float32, error) {
	return f.EmbeddingsStep(pcm, EmbeddingStep)
}

// PaddedEmbeddings returns the embeddings the recogniser scores for a
// recording: those of pcm with padSamples of silence before and after it
// (so that windows can centre on its first and last digits), step mel
// frames apart. Training uses it so the head learns on exactly these.
func (f *Frontend) PaddedEmbeddings(pcm []int16, step int) ([][EmbeddingDim]float32, error) {
	return f.EmbeddingsStep(padded(pcm), step)
}

// PaddedEmbeddingsMel is PaddedEmbeddings that also returns Mel(pcm), for
// a caller that needs both (pcm at least melWindow samples). The mel model
// is frame-local (a frame depends only on its own samples), so the frames
// of pcm are those of the padded recording from padSamples/melHop on: bit
// for bit for a recording of 1 s or more, within 2e-6 for shorter ones,
// where ONNX Runtime sums a short input in another order
// (TestPaddedEmbeddingsMel). They are computed once, not twice.
func (f *Frontend) PaddedEmbeddingsMel(pcm []int16, step int) ([][EmbeddingDim]float32, [][melBins]float32, error) {
	if step < 1 || step > embWindow {
		return nil, nil, fmt.Errorf("speech: embedding step %d", step)
	}
	if len(pcm) < melWindow {
		return nil, nil, fmt.Errorf("%w: %d samples", ErrAudioLength, len(pcm))
	}
	mel, err := f.Mel(padded(pcm))
	if err != nil {
		return nil, nil, err
	}
	emb, err := f.embeddings(mel, step)
	if err != nil {
		return nil, nil, err
	}
	const skip = padSamples / melHop
	return emb, mel[skip : len(mel)-skip], nil
}

// EmbeddingsStep is Embeddings with step mel frames (10 ms each) between
// windows: window i covers mel frames [step*i, step*i+76).
func (f *Frontend) EmbeddingsStep(pcm []int16, step int) ([][EmbeddingDim]float32, error) {
	if step < 1 || step > embWindow {
		return nil, fmt.Errorf("speech: embedding step %d", step)
	}
	mel, err := f.Mel(pcm)
	if err != nil {
		return nil, err
	}
	return f.embeddings(mel, step)
}

// embeddings runs the embedding model on mel frames, step frames apart.
func (f *Frontend) embeddings(mel [][melBins]float32, step int) ([][EmbeddingDim]float32, error) {
	if len(mel) < embWindow {
		return nil, fmt.Errorf("%w: %d mel frames, need %d", ErrAudioLength, len(mel), embWindow)
	}
	n := (len(mel)-embWindow)/step + 1
	out := make([][EmbeddingDim]float32, n)
	// The model computes the windows embStride mel frames apart in one run
	// (embgraph.go): one run per residue of the windows' starts modulo
	// embStride, over the mel frames from the first such window to the end
	// of the last (a single run at the default step).
	for r := range embStride {
		first, last := -1, -1
		for w := range n {
			if (w*step)%embStride == r {
				if first < 0 {
					first = w
				}
				last = w
			}
		}
		if first < 0 {
			continue
		}
		from, to := first*step, last*step+embWindow
		in := make([]float32, (to-from)*melBins)
		for k := from; k < to; k++ {
			copy(in[(k-from)*melBins:], mel[k][:])
		}
		outs, err := f.emb.Run(onnx.Tensor{Shape: []int64{1, int64(to - from), melBins, 1}, Float: in})
		if err != nil {
			return nil, fmt.Errorf("speech: embedding: %w", err)
		}
		m := (to-from-embWindow)/embStride + 1
		if sh := outs[0].Shape; len(sh) != 4 || sh[0] != 1 || sh[1] != EmbeddingDim || sh[2] != int64(m) || sh[3] != 1 {
			return nil, fmt.Errorf("speech: embedding output shape %v, want [1 %d %d 1]", sh, EmbeddingDim, m)
		}
		data := outs[0].Float // [channel][time]
		for w := first; w <= last; w++ {
			if (w*step)%embStride != r {
				continue
			}
			t := (w*step - from) / embStride
			for c := range EmbeddingDim {
				out[w][c] = data[c*m+t]
			}
		}
	}
	return out, nil
}

// VoiceActivity returns Silero VAD's speech probability per 512-sample
// (32 ms) chunk of 16 kHz pcm, level-normalised first (vadGain); a trailing
// partial chunk is zero-padded.
func (f *Frontend) VoiceActivity(pcm []int16) ([]float32, error) {
	return f.voiceActivity(pcm, vadGain(pcm))
}

// RawVoiceActivity is VoiceActivity without the level normalisation: the
// recording is seen at its recorded level (the committed head's training
// labels were made so).
func (f *Frontend) RawVoiceActivity(pcm []int16) ([]float32, error) {
	return f.voiceActivity(pcm, 1)
}

// voiceActivity runs the VAD on pcm scaled by gain: the encoder on every
// chunk at once, then the LSTMs and the decoder chunk by chunk.
func (f *Frontend) voiceActivity(pcm []int16, gain float32) ([]float32, error) {
	n := (len(pcm) + vadChunk - 1) / vadChunk
	if n == 0 {
		return []float32{}, nil
	}
	cp := float32Bufs.Get(n * vadChunk)
	defer float32Bufs.Put(cp)
	chunks := *cp
	gain /= 32768 // Silero takes ±1
	for i, v := range pcm {
		chunks[i] = float32(v) * gain
	}
	clear(chunks[len(pcm):]) // the last chunk zero-padded
	enc, err := f.vadEnc.Run(onnx.Tensor{Shape: []int64{int64(n), vadChunk}, Float: chunks})
	if err != nil {
		return nil, fmt.Errorf("speech: vad encoder: %w", err)
	}
	sh := enc[0].Shape
	if len(sh) != 3 || sh[0] != int64(n) || sh[1] != vadEncodedDim || sh[2] < 1 {
		return nil, fmt.Errorf("speech: vad encoder output shape %v", sh)
	}
	// The LSTMs carry their state from chunk to chunk, so the decoder runs
	// once over all the chunks' steps as one sequence ([1,64,n*t]: what n
	// runs of one chunk each compute), then each chunk's probability is
	// the mean of its steps' (the exported graph's ReduceMean).
	t := int(sh[2])
	steps := n * t
	x := make([]float32, vadEncodedDim*steps)
	for i := range n {
		for ch := range vadEncodedDim {
			copy(x[ch*steps+i*t:ch*steps+(i+1)*t], enc[0].Float[(i*vadEncodedDim+ch)*t:(i*vadEncodedDim+ch+1)*t])
		}
	}
	zero := make([]float32, vadStateSize)
	out, err := f.vadDec.Run(onnx.Tensor{Shape: []int64{1, vadEncodedDim, int64(steps)}, Float: x},
		onnx.Tensor{Shape: []int64{2, 1, 64}, Float: zero}, onnx.Tensor{Shape: []int64{2, 1, 64}, Float: zero})
	if err != nil {
		return nil, fmt.Errorf("speech: vad: %w", err)
	}
	if len(out[0].Float) != steps {
		return nil, fmt.Errorf("speech: vad decoder output shape %v", out[0].Shape)
	}
	probs := make([]float32, n)
	for i := range n {
		var sum float32
		for _, p := range out[0].Float[i*t : (i+1)*t] {
			sum += p
		}
		probs[i] = sum / float32(t)
	}
	return probs, nil
}

// VAD level normalisation: Silero misses quiet speech (one FSDD speaker
// records at a median peak of 2 % of full scale and was marked 0 s voiced),
// as a browser's automatic gain control would not let happen. The detector
// therefore sees the recording scaled so that its loud end (the 99.9th
// percentile of |sample|, so a click does not set it) sits at vadTarget of
// full scale, with at most vadMaxGain: silence stays silence and faint noise
// is not raised to speech level.
const (
	vadTarget  = 0.5
	vadMaxGain = 32.0 // 30 dB
)

// vadGain returns the factor that brings pcm's level to vadTarget (1 for
// recordings already that loud: it never attenuates).
func vadGain(pcm []int16) float32 {
	level := PeakLevel(pcm)
	if level == 0 {
		return 1
	}
	return float32(min(max(vadTarget*32768/float64(level), 1), vadMaxGain))
}

// PeakLevel is the loud end of a recording: the 99.9th percentile of
// |sample| (so a click does not set it), 0 for silence.
//
// It is the (len/1000+1)-th largest |sample|, kept in a min-heap of that
// many levels on the stack: most samples are below the heap's least and
// cost one comparison, and nothing is allocated (one histogram of every
// level was 256 kB on the heap per call). Recordings of 512000 samples or
// more (32 s at 16 kHz) fall back to the histogram. The same value either way
// (TestPeakLevelMatchesFullHistogram).
func PeakLevel(pcm []int16) int {
	k := len(pcm)/1000 + 1
	var buf [512]int32
	if k > len(buf) {
		return peakLevelHistogram(pcm)
	}
	h := buf[:0]
	for _, v := range pcm {
		a := int32(abs16(v))
		switch {
		case len(h) < k:
			h = append(h, a)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if h[p] <= h[i] {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
		case a > h[0]:
			h[0] = a
			for i := 0; ; {
				l, m := 2*i+1, i
				if l < len(h) && h[l] < h[m] {
					m = l
				}
				if r := l + 1; r < len(h) && h[r] < h[m] {
					m = r
				}
				if m == i {
					break
				}
				h[m], h[i] = h[i], h[m]
				i = m
			}
		}
	}
	if len(h) < k {
		return 0 // fewer samples than the rank (an empty recording)
	}
	return int(h[0])
}

// peakLevelHistogram is PeakLevel by one histogram of every level.
func peakLevelHistogram(pcm []int16) int {
	hist := make([]int, 32769)
	for _, v := range pcm {
		hist[abs16(v)]++
	}
	skip := len(pcm) / 1000
	for a := len(hist) - 1; a > 0; a-- {
		if skip -= hist[a]; skip < 0 {
			return a
		}
	}
	return 0
}

func abs16(v int16) int {
	a := int(v)
	if a < 0 {
		return -a
	}
	return a
}
