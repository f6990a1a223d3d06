package speechlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/trustid/trustid/liveness/speech"
)

// TrainConfig configures TrainHead.
type TrainConfig struct {
	Front         *speech.Frontend
	FSDDDir       string
	TrainSpeakers []string // FSDD speakers to train on; the rest are held out
	Seed          int64
	// Synthetic speech: espeak-ng voices drawn (flite and festival voices
	// are all used when installed); 0 disables synthetic speech.
	EspeakVoices int
	// Utterances built per FSDD speaker and per synthetic voice.
	FSDDUtterances, SynthUtterances int
	Epochs, Hidden, Context         int
	LearningRate, WeightDecay       float64
	ScratchDir                      string  // for synthesiser output
	TTSCache                        string  // optional cache of synthesiser output
	SpeedPerturb                    bool    // speed-perturb 60 % of utterances by 0.88-1.12
	SegmentDecay                    float64 // segment head weight decay (0: DefaultSegmentDecay)
	// Step is the embedding hop in 10 ms mel frames (0: 8, i.e. 80 ms);
	// Stride the distance between the head's context frames (0: 1).
	Step, Stride int
	// RunTogether is the share of training utterances whose digits run
	// together (0: 0.4).
	RunTogether float64
	Log         *slog.Logger
	Command     string // recorded in the head's metadata
}

func (c *TrainConfig) defaults() {
	if c.FSDDUtterances == 0 {
		c.FSDDUtterances = 400
	}
	if c.SynthUtterances == 0 {
		c.SynthUtterances = 12
	}
	if c.Epochs == 0 {
		c.Epochs = 20
	}
	if c.Hidden == 0 {
		c.Hidden = 64
	}
	if c.Context == 0 {
		c.Context = 2
	}
	if c.LearningRate == 0 {
		c.LearningRate = 1e-3
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = 1e-4
	}
	if c.Step == 0 {
		c.Step = speech.EmbeddingStep
	}
	if c.Stride == 0 {
		c.Stride = 1
	}
	if c.RunTogether == 0 {
		c.RunTogether = 0.4
	}
	if c.SegmentDecay == 0 {
		c.SegmentDecay = DefaultSegmentDecay
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// example is one utterance's embeddings and frame labels.
type example struct {
	emb    [][speech.EmbeddingDim]float32
	labels []int
	segs   [][2]int // per digit, its labelled frames
	digits []int
}

// DefaultSegmentDecay is the segment head's decoupled weight decay.
const DefaultSegmentDecay = 1e-3

// NewRand returns the package's seeded generator (PCG), so that training and
// evaluation are reproducible from one integer.
func NewRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// TrainHead builds training utterances (digits of one speaker or voice run
// together or with pauses, augmented with gain, 8 kHz band limiting, noise
// and reverberation), labels every 80 ms frame from the clips' voice
// activity, and trains the head with AdamW. Everything is drawn from one
// seeded generator and runs on one goroutine, so a seed gives the same head.
func TrainHead(ctx context.Context, c TrainConfig) (*speech.Head, error) {
	c.defaults()
	if c.Front == nil || len(c.TrainSpeakers) == 0 {
		return nil, errors.New("speech: train: front end and training speakers are required")
	}
	rng := NewRand(c.Seed)
	fsdd, err := LoadFSDD(c.Front, c.FSDDDir, c.TrainSpeakers)
	if err != nil {
		return nil, err
	}
	var synth []Clip
	if c.EspeakVoices > 0 {
		voices := SyntheticVoices(rng, c.EspeakVoices)
		c.Log.Info("synthesising digits", "voices", len(voices))
		if synth, err = SynthesizeClips(ctx, c.Front, voices, c.ScratchDir, c.TTSCache); err != nil {
			return nil, err
		}
	}
	var exs []example
	for _, g := range groupClips(append(fsdd, synth...)) {
		n := c.FSDDUtterances
		if g[0].Synthetic {
			n = c.SynthUtterances
		}
		for range n {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ex, err := trainingUtterance(rng, g, c)
			if err != nil {
				return nil, err
			}
			exs = append(exs, ex)
		}
		c.Log.Info("built utterances", "group", g[0].Group, "total", len(exs))
	}
	h := &speech.Head{Context: c.Context, Hidden: c.Hidden}
	if c.Step != speech.EmbeddingStep {
		h.Step = c.Step
	}
	if c.Stride != 1 {
		h.Stride = c.Stride
	}
	frames := fit(ctx, rng, h, exs, c)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The segment head draws from rng only after the frame head is fitted,
	// so the frame head is the same with or without it.
	h.Segment = fitSegments(ctx, rng, h, exs, c.SegmentDecay, func(epoch int, loss, acc float64) {
		c.Log.Info("segment epoch", "epoch", epoch, "loss", loss, "segment_acc", acc)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var held []string
	for _, s := range FSDDSpeakers {
		if !slices.Contains(c.TrainSpeakers, s) {
			held = append(held, s)
		}
	}
	h.Meta = speech.HeadMeta{Command: c.Command, Seed: c.Seed, TrainSpeakers: c.TrainSpeakers, HeldOut: held,
		Synthetic: len(synth), Examples: frames, Epochs: c.Epochs}
	return h, nil
}

// groupClips splits clips by Group, in order of first appearance.
func groupClips(clips []Clip) [][]Clip {
	idx := map[string]int{}
	var out [][]Clip
	for _, c := range clips {
		i, ok := idx[c.Group]
		if !ok {
			i = len(out)
			idx[c.Group] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], c)
	}
	return out
}

// trainingUtterance draws 1-5 digits of one group, joins them and augments.
func trainingUtterance(rng *rand.Rand, g []Clip, c TrainConfig) (example, error) {
	k := 1 + rng.IntN(5)
	clips := make([]Clip, k)
	for i := range clips {
		clips[i] = g[rng.IntN(len(g))]
	}
	gaps := make([]int, k-1)
	runTogether := rng.Float64() < c.RunTogether
	for i := range gaps {
		if runTogether {
			gaps[i] = int((-0.12 + 0.17*rng.Float64()) * speech.SampleRate)
		} else {
			gaps[i] = int((0.05 + 0.45*rng.Float64()) * speech.SampleRate)
		}
	}
	lead := int((0.05 + 0.45*rng.Float64()) * speech.SampleRate)
	tail := int((0.05 + 0.45*rng.Float64()) * speech.SampleRate)
	pcm, spans := Concat(clips, gaps, lead, tail)
	if c.SpeedPerturb && rng.Float64() < 0.6 {
		pcm, spans = speedPerturb(pcm, spans, 0.88+0.24*rng.Float64())
	}
	pcm = augment(rng, pcm, spans, clips[0].Synthetic)
	emb, err := c.Front.PaddedEmbeddings(pcm, c.Step)
	if err != nil {
		return example{}, err
	}
	digits := make([]int, len(spans))
	for i, s := range spans {
		digits[i] = s.Digit
	}
	return example{emb: emb, labels: frameLabels(len(emb), spans, c.Step), segs: frameSpansStep(len(emb), spans, c.Step), digits: digits}, nil
}

// speedPerturb plays pcm f times faster (tempo and pitch together, as
// Kaldi's speed perturbation does) by resampling, a cheap way to make more
// speakers out of few.
func speedPerturb(pcm []int16, spans []Span, f float64) ([]int16, []Span) {
	to := int(math.Round(speech.SampleRate/f/100)) * 100
	out, err := speech.Resample(pcm, speech.SampleRate, to)
	if err != nil {
		return pcm, spans
	}
	r := float64(to) / speech.SampleRate
	sp := make([]Span, len(spans))
	for i, s := range spans {
		sp[i] = Span{Digit: s.Digit, Start: int(float64(s.Start) * r), End: int(float64(s.End) * r)}
	}
	return out, sp
}

func augment(rng *rand.Rand, pcm []int16, spans []Span, synthetic bool) []int16 {
	if synthetic && rng.Float64() < 0.5 {
		pcm = BandLimit8k(pcm)
	}
	if rng.Float64() < 0.25 {
		pcm = Reverb(rng, pcm, 0.15+0.35*rng.Float64(), 0.2+0.4*rng.Float64())
	}
	pcm = Gain(pcm, math.Exp(math.Log(0.25)+rng.Float64()*math.Log(1.5/0.25)))
	if rng.Float64() < 0.7 {
		pcm = AddNoise(rng, pcm, spans, 5+25*rng.Float64(), rng.Float64() < 0.5)
	}
	return pcm
}

// fit standardises the embeddings and trains h with AdamW on mini-batches;
// it returns the number of training frames.
func fit(ctx context.Context, rng *rand.Rand, h *speech.Head, exs []example, c TrainConfig) int {
	// Standardisation statistics over all frames.
	h.Mean = make([]float32, speech.EmbeddingDim)
	h.Std = make([]float32, speech.EmbeddingDim)
	var n float64
	sum := make([]float64, speech.EmbeddingDim)
	sq := make([]float64, speech.EmbeddingDim)
	for _, ex := range exs {
		for _, e := range ex.emb {
			for d, v := range e {
				sum[d] += float64(v)
				sq[d] += float64(v) * float64(v)
			}
			n++
		}
	}
	for d := range speech.EmbeddingDim {
		m := sum[d] / n
		h.Mean[d] = float32(m)
		h.Std[d] = float32(math.Sqrt(max(sq[d]/n-m*m, 1e-8)))
	}
	var counts [speech.NumClasses]float64
	for _, ex := range exs {
		for _, y := range ex.labels {
			counts[y]++
		}
	}
	h.LogPrior = make([]float32, speech.NumClasses)
	for c := range counts {
		h.LogPrior[c] = float32(math.Log((counts[c] + 1) / (n + speech.NumClasses)))
	}
	type ref struct{ ex, t int }
	var refs []ref
	zs := make([][][speech.EmbeddingDim]float32, len(exs))
	for i, ex := range exs {
		zs[i] = h.Standardise(ex.emb)
		for t := range ex.labels {
			refs = append(refs, ref{i, t})
		}
	}
	in := h.In()
	h.W1 = make([]float32, h.Hidden*in)
	h.B1 = make([]float32, h.Hidden)
	h.W2 = make([]float32, speech.NumClasses*h.Hidden)
	h.B2 = make([]float32, speech.NumClasses)
	for i := range h.W1 {
		h.W1[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(in)))
	}
	for i := range h.W2 {
		h.W2[i] = float32(rng.NormFloat64() * math.Sqrt(1/float64(h.Hidden)))
	}
	params := [][]float32{h.W1, h.B1, h.W2, h.B2}
	decay := []bool{true, false, true, false}
	grads := make([][]float64, len(params))
	m1 := make([][]float64, len(params))
	m2 := make([][]float64, len(params))
	for i, p := range params {
		grads[i] = make([]float64, len(p))
		m1[i] = make([]float64, len(p))
		m2[i] = make([]float64, len(p))
	}
	const batch = 64
	const b1, b2, eps = 0.9, 0.999, 1e-8
	x := make([]float32, in)
	hid := make([]float32, h.Hidden)
	var logp [speech.NumClasses]float64
	dh := make([]float64, h.Hidden)
	step := 0
	for epoch := range c.Epochs {
		rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
		var loss float64
		var correct int
		for start := 0; start < len(refs); start += batch {
			if ctx.Err() != nil {
				return len(refs)
			}
			end := min(start+batch, len(refs))
			for _, g := range grads {
				clear(g)
			}
			for _, r := range refs[start:end] {
				h.FrameInput(x, zs[r.ex], r.t)
				h.Forward(x, hid, &logp)
				y := exs[r.ex].labels[r.t]
				loss -= logp[y]
				if argmax(logp[:]) == y {
					correct++
				}
				clear(dh)
				for k := range speech.NumClasses {
					g := math.Exp(logp[k])
					if k == y {
						g--
					}
					grads[3][k] += g
					w := h.W2[k*h.Hidden : (k+1)*h.Hidden]
					gw := grads[2][k*h.Hidden : (k+1)*h.Hidden]
					for j, a := range hid {
						gw[j] += g * float64(a)
						dh[j] += g * float64(w[j])
					}
				}
				for j := range h.Hidden {
					if hid[j] <= 0 {
						continue
					}
					g := dh[j]
					grads[1][j] += g
					gw := grads[0][j*in : (j+1)*in]
					for i, v := range x {
						gw[i] += g * float64(v)
					}
				}
			}
			step++
			bs := float64(end - start)
			lr := c.LearningRate * 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(c.Epochs)))
			c1 := 1 - math.Pow(b1, float64(step))
			c2 := 1 - math.Pow(b2, float64(step))
			for pi, p := range params {
				for i := range p {
					g := grads[pi][i] / bs
					m1[pi][i] = b1*m1[pi][i] + (1-b1)*g
					m2[pi][i] = b2*m2[pi][i] + (1-b2)*g*g
					u := (m1[pi][i] / c1) / (math.Sqrt(m2[pi][i]/c2) + eps)
					if decay[pi] {
						u += c.WeightDecay * float64(p[i])
					}
					p[i] -= float32(lr * u)
				}
			}
		}
		c.Log.Info("epoch", "epoch", epoch+1, "loss", loss/float64(len(refs)), "frame_acc", float64(correct)/float64(len(refs)))
	}
	return len(refs)
}

func argmax(v []float64) int {
	bi := 0
	for i, x := range v {
		if x > v[bi] {
			bi = i
		}
	}
	return bi
}

// WriteHead writes h as JSON to path.
func WriteHead(h *speech.Head, path string) error {
	b, err := h.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadHead reads a head written by WriteHead.
func ReadHead(path string) (*speech.Head, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", speech.ErrModel, err)
	}
	var h speech.Head
	if err := h.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return &h, nil
}
