package speechlab

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
)

// Clip is one spoken digit at 16 kHz with the span where it is voiced.
type Clip struct {
	Group        string // speaker or synthetic voice; utterances use one group
	Digit        int
	PCM          []int16
	VStart, VEnd int // voiced samples [VStart, VEnd)
	Synthetic    bool
}

// FSDDSpeakers are the speakers of the shared FSDD folder.
var FSDDSpeakers = []string{"george", "jackson", "nicolas", "theo"}

// LoadFSDD reads dir/D_SPEAKER_N.wav for the given speakers, resamples to
// 16 kHz and finds each clip's voiced span with front's VAD. Clips come back
// sorted by name, so the order does not depend on the file system.
func LoadFSDD(front *speech.Frontend, dir string, speakers []string) ([]Clip, error) {
	want := map[string]bool{}
	for _, s := range speakers {
		want[s] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("speech: fsdd: %w", err)
	}
	var names []string
	for _, e := range ents {
		parts := strings.Split(strings.TrimSuffix(e.Name(), ".wav"), "_")
		if len(parts) == 3 && strings.HasSuffix(e.Name(), ".wav") && want[parts[1]] {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var clips []Clip
	for _, n := range names {
		parts := strings.Split(strings.TrimSuffix(n, ".wav"), "_")
		d, err := strconv.Atoi(parts[0])
		if err != nil || d < 0 || d > 9 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("speech: fsdd: %w", err)
		}
		a, err := media.ReadWAV(b)
		if err != nil {
			return nil, fmt.Errorf("speech: fsdd %s: %w", n, err)
		}
		pcm, err := speech.Resample(a.Samples, a.Rate, speech.SampleRate)
		if err != nil {
			return nil, err
		}
		c, err := newClip(front, "fsdd:"+parts[1], d, pcm, false)
		if err != nil {
			return nil, fmt.Errorf("speech: fsdd %s: %w", n, err)
		}
		clips = append(clips, c)
	}
	if len(clips) == 0 {
		return nil, fmt.Errorf("speech: fsdd: no clips of %v in %s", speakers, dir)
	}
	return clips, nil
}

// SynthesizeClips says every digit with every voice.
func SynthesizeClips(ctx context.Context, front *speech.Frontend, voices []Voice, dir, cache string) ([]Clip, error) {
	var clips []Clip
	for _, v := range voices {
		for d, w := range DigitWords {
			pcm, err := Synthesize(ctx, v, w, dir, cache)
			if err != nil {
				return nil, err
			}
			c, err := newClip(front, v.Name, d, pcm, true)
			if err != nil {
				return nil, fmt.Errorf("speech: %s %q: %w", v.Name, w, err)
			}
			clips = append(clips, c)
		}
	}
	return clips, nil
}

// newClip finds the voiced span: the union of what Silero VAD marks (run
// on the clip with 0.5 s of silence before it, since the VAD's recurrent
// state needs a moment and FSDD clips start with the word) and the 10 ms
// blocks within 35 dB of the loudest (clean clips: catches weak consonants
// the VAD leaves out). The VAD sees the clip at its recorded level (no
// VoiceActivity normalisation): the energy span already covers quiet
// speakers, and the committed head's labels were made so.
func newClip(front *speech.Frontend, group string, digit int, pcm []int16, synthetic bool) (Clip, error) {
	const lead = 8192 // 16 VAD chunks
	act, err := front.RawVoiceActivity(append(make([]int16, lead), pcm...))
	if err != nil {
		return Clip{}, err
	}
	c := Clip{Group: group, Digit: digit, PCM: pcm, Synthetic: synthetic}
	c.VStart, c.VEnd = energySpan(pcm)
	for i, p := range act {
		if p < speech.VoiceThreshold {
			continue
		}
		s, e := max(i*speech.ActivityChunk-lead, 0), min((i+1)*speech.ActivityChunk-lead, len(pcm))
		if e <= s {
			continue
		}
		if c.VEnd <= c.VStart {
			c.VStart, c.VEnd = s, e
			continue
		}
		c.VStart, c.VEnd = min(c.VStart, s), max(c.VEnd, e)
	}
	if c.VEnd <= c.VStart {
		return Clip{}, speech.ErrNoSpeech
	}
	return c, nil
}

// energySpan is the span of 10 ms blocks within 35 dB of the loudest one.
func energySpan(pcm []int16) (int, int) {
	const blk = 160
	var e []float64
	var mx float64
	for i := 0; i+blk <= len(pcm); i += blk {
		var s float64
		for _, v := range pcm[i : i+blk] {
			s += float64(v) * float64(v)
		}
		e = append(e, s)
		mx = max(mx, s)
	}
	first, last := -1, -1
	for i, s := range e {
		if mx > 0 && s >= mx*3.16e-4 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0
	}
	return first * blk, (last + 1) * blk
}

// Span is where one digit is voiced in an utterance, in samples.
type Span struct {
	Digit      int
	Start, End int
}

// Concat builds an utterance from clips: lead samples of silence, then each
// clip placed so that its voiced part starts gaps[i] samples after the
// previous clip's voiced part ended (negative gaps overlap; the clips are
// added, not cut), then tail samples of silence.
func Concat(clips []Clip, gaps []int, lead, tail int) ([]int16, []Span) {
	offs := make([]int, len(clips))
	pos := lead // where the next voiced part starts
	lo := 0
	for i, c := range clips {
		if i > 0 {
			pos += gaps[i-1]
		}
		offs[i] = pos - c.VStart
		lo = min(lo, offs[i])
		pos = offs[i] + c.VEnd
	}
	// Shift everything right if a clip's unvoiced head would start before 0.
	end := 0
	for i, c := range clips {
		offs[i] -= lo
		end = max(end, offs[i]+len(c.PCM))
	}
	lastVoiced := offs[len(clips)-1] + clips[len(clips)-1].VEnd
	n := max(end, lastVoiced+tail)
	acc := make([]float64, n)
	spans := make([]Span, len(clips))
	for i, c := range clips {
		for j, v := range c.PCM {
			acc[offs[i]+j] += float64(v)
		}
		spans[i] = Span{Digit: c.Digit, Start: offs[i] + c.VStart, End: offs[i] + c.VEnd}
	}
	out := make([]int16, n)
	for i, v := range acc {
		out[i] = clip16(v)
	}
	return out, spans
}

// labelReach extends each voiced span when labelling frames: a 775 ms
// embedding window centred up to one frame outside a digit still holds all
// of it, and marking those frames "other" taught the head to miss digits.
const labelReach = int(speech.FrameDuration * speech.SampleRate / time.Second)

// FrameLabels labels embedding frame t of an utterance's PaddedEmbeddings
// with the digit whose voiced span, extended by labelReach on both sides,
// contains the centre of the frame's window (speech.FrameCentreSample;
// where extended spans overlap, the digit whose span centre is nearer
// wins), or speech.Other.
func FrameLabels(frames int, spans []Span) []int {
	return frameLabels(frames, spans, speech.EmbeddingStep)
}

// frameLabels is FrameLabels for embeddings step mel frames apart.
func frameLabels(frames int, spans []Span, step int) []int {
	labels := make([]int, frames)
	for t := range labels {
		c := speech.FrameCentreSample(t, step)
		labels[t] = speech.Other
		best := math.MaxInt
		for _, s := range spans {
			if c >= s.Start-labelReach && c < s.End+labelReach {
				if d := abs(c - (s.Start+s.End)/2); d < best {
					best, labels[t] = d, s.Digit
				}
			}
		}
	}
	return labels
}

// clip16 rounds v to the nearest int16, saturating (as liveness/speech's
// resampler does).
func clip16(v float64) int16 {
	v = math.Round(v)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// speechPower is the mean square of pcm over the spans (the active speech).
func speechPower(pcm []int16, spans []Span) float64 {
	var s float64
	var n int
	for _, sp := range spans {
		for _, v := range pcm[max(sp.Start, 0):min(sp.End, len(pcm))] {
			s += float64(v) * float64(v)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// AddNoise adds white or pink Gaussian noise at snrDB relative to the power
// of the voiced spans.
func AddNoise(rng *rand.Rand, pcm []int16, spans []Span, snrDB float64, pink bool) []int16 {
	p := speechPower(pcm, spans)
	noise := make([]float64, len(pcm))
	// Paul Kellet's economy pink filter over white noise.
	var b0, b1, b2 float64
	var np float64
	for i := range noise {
		w := rng.NormFloat64()
		if pink {
			b0 = 0.99765*b0 + w*0.0990460
			b1 = 0.96300*b1 + w*0.2965164
			b2 = 0.57000*b2 + w*1.0526913
			w = b0 + b1 + b2 + w*0.1848
		}
		noise[i] = w
		np += w * w
	}
	if np == 0 || p == 0 {
		return append([]int16(nil), pcm...)
	}
	np /= float64(len(noise))
	g := math.Sqrt(p / np / math.Pow(10, snrDB/10))
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		out[i] = clip16(float64(v) + g*noise[i])
	}
	return out
}

// Reverb adds a simple room: a sparse impulse response of random echoes
// with an exponential decay to -60 dB at rt60 seconds, mixed at wet.
func Reverb(rng *rand.Rand, pcm []int16, rt60, wet float64) []int16 {
	const taps = 160
	L := int(rt60 * speech.SampleRate)
	type tap struct {
		d int
		g float64
	}
	ir := make([]tap, taps)
	var e float64
	for i := range ir {
		d := 1 + rng.IntN(max(L, 2))
		g := rng.NormFloat64() * math.Pow(10, -3*float64(d)/float64(L))
		ir[i] = tap{d, g}
		e += g * g
	}
	norm := wet / math.Sqrt(e)
	out := make([]float64, len(pcm))
	for i, v := range pcm {
		out[i] += float64(v)
	}
	for _, t := range ir {
		g := t.g * norm
		for i := 0; i+t.d < len(pcm); i++ {
			out[i+t.d] += g * float64(pcm[i])
		}
	}
	// Keep the level of the dry signal.
	var pin, pout float64
	for i, v := range pcm {
		pin += float64(v) * float64(v)
		pout += out[i] * out[i]
	}
	s := 1.0
	if pout > 0 {
		s = math.Sqrt(pin / pout)
	}
	res := make([]int16, len(pcm))
	for i, v := range out {
		res[i] = clip16(v * s)
	}
	return res
}

// Gain scales pcm by g with clipping.
func Gain(pcm []int16, g float64) []int16 {
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		out[i] = clip16(float64(v) * g)
	}
	return out
}

// BandLimit8k passes pcm through 8 kHz and back, as telephone-band and
// FSDD audio is.
func BandLimit8k(pcm []int16) []int16 {
	lo, err := speech.Resample(pcm, speech.SampleRate, 8000)
	if err != nil {
		return pcm
	}
	hi, err := speech.Resample(lo, 8000, speech.SampleRate)
	if err != nil {
		return pcm
	}
	if len(hi) < len(pcm) {
		hi = append(hi, make([]int16, len(pcm)-len(hi))...)
	}
	return hi[:len(pcm)]
}
