package synthvoice

import (
	"fmt"
	"math"

	"github.com/trustid/trustid/internal/bufpool"
	"github.com/trustid/trustid/liveness/speech"
)

// Analysis geometry.
const (
	melHop     = 160 // samples per mel frame at 16 kHz (10 ms), fixed by melspectrogram.onnx
	embStep    = speech.EmbeddingStep
	pitchRate  = 8000
	pitchWin   = 240 // 30 ms correlation window at 8 kHz
	pitchHop   = 80  // 10 ms
	pitchMinLg = pitchRate / 400
	pitchMaxLg = pitchRate / 60
	// Frames more than gateDB below the loudest 10 ms frame are not
	// analysed for pitch (silence and breath).
	gateDB = 35.0
)

// handNames are the signal features after the embedding statistics.
var handNames = []string{
	"emb_step_mean",   // mean cosine distance between consecutive voiced embeddings
	"emb_step_sd",     // its spread
	"flatness_mean",   // spectral flatness of voiced mel frames (0..1)
	"flatness_sd",     //
	"flux_mean",       // mean |change| of the log-mel spectrum per 10 ms
	"tilt_mean",       // upper minus lower mel bins (log10 units)
	"mod_2_8",         // share of the envelope's modulation energy at 2-8 Hz
	"mod_8_25",        // ... at 8-25 Hz
	"f0_jitter",       // mean relative F0 change between consecutive 10 ms frames
	"f0_sd_semitones", // F0 spread
	"f0_accel",        // mean |second difference of log2 F0| (cents)
	"hnr_mean",        // harmonics-to-noise ratio from the autocorrelation peak (dB)
	"hnr_sd",          //
	"shimmer",         // mean |level change| between consecutive voiced frames (dB)
	"pitched_ratio",   // share of loud frames with a clear pitch
}

// FeatureNames lists the features in the order Features returns them.
func FeatureNames() []string {
	names := make([]string, 0, 2*speech.EmbeddingDim+len(handNames))
	for i := range speech.EmbeddingDim {
		names = append(names, fmt.Sprintf("emb_mean_%02d", i))
	}
	for i := range speech.EmbeddingDim {
		names = append(names, fmt.Sprintf("emb_sd_%02d", i))
	}
	return append(names, handNames...)
}

// Features computes the classifier's inputs for a recording Prepare made
// (16 kHz, level-normalised). It returns ErrNoSpeech when fewer than three
// 80 ms embedding frames are centred on voice.
func Features(front Frontend, pcm []int16) ([]float64, error) {
	f, _, err := FeaturesActivity(front, pcm)
	return f, err
}

// FeaturesActivity is Features, also returning the voice activity it found
// on pcm (with ErrNoSpeech too; nil when it failed before).
func FeaturesActivity(front Frontend, pcm []int16) (_ []float64, act []float32, _ error) {
	if len(pcm) < int(MinDuration.Seconds()*speech.SampleRate) || len(pcm) > int(MaxDuration.Seconds()*speech.SampleRate) {
		return nil, nil, fmt.Errorf("%w: %d samples at 16 kHz", ErrInput, len(pcm))
	}
	act, err := front.VoiceActivity(pcm)
	if err != nil {
		return nil, nil, fmt.Errorf("synthvoice: voice activity: %w", err)
	}
	voicedAt := func(sample int) bool {
		i := sample / speech.ActivityChunk
		return sample >= 0 && i < len(act) && act[i] >= speech.VoiceThreshold
	}
	emb, mel, err := front.PaddedEmbeddingsMel(pcm, embStep)
	if err != nil {
		return nil, act, fmt.Errorf("synthvoice: embeddings: %w", err)
	}
	var sel []int
	for t := range emb {
		if voicedAt(speech.FrameCentreSample(t, embStep)) {
			sel = append(sel, t)
		}
	}
	if len(sel) < minVoicedFrames {
		return nil, act, fmt.Errorf("%w: %d voiced frames", ErrNoSpeech, len(sel))
	}
	out := make([]float64, 0, len(FeatureNames()))
	mean := make([]float64, speech.EmbeddingDim)
	sd := make([]float64, speech.EmbeddingDim)
	for _, t := range sel {
		for i, v := range emb[t] {
			mean[i] += float64(v)
		}
	}
	for i := range mean {
		mean[i] /= float64(len(sel))
	}
	for _, t := range sel {
		for i, v := range emb[t] {
			d := float64(v) - mean[i]
			sd[i] += d * d
		}
	}
	for i := range sd {
		sd[i] = math.Sqrt(sd[i] / float64(len(sel)))
	}
	out = append(append(out, mean...), sd...)

	var steps []float64
	for k := 1; k < len(sel); k++ {
		if sel[k] == sel[k-1]+1 {
			steps = append(steps, cosineDistance(emb[sel[k-1]][:], emb[sel[k]][:]))
		}
	}
	m, s := meanSD(steps)
	out = append(out, m, s)

	out = append(out, melFeatures(mel, func(j int) bool { return voicedAt(j*melHop + 200) })...)
	lo, err := speech.Resample(pcm, speech.SampleRate, pitchRate)
	if err != nil {
		return nil, act, fmt.Errorf("synthvoice: %w", err)
	}
	out = append(out, pitchFeatures(lo)...)
	return out, act, nil
}

// melFeatures: flatness, flux and tilt over voiced frames, and the
// modulation spectrum of the whole recording's envelope. mel holds
// openWakeWord-scaled frames (log10 power + 2).
func melFeatures(mel [][32]float32, voiced func(j int) bool) []float64 {
	var flat, flux, tilt []float64
	env := make([]float64, len(mel))
	for j, fr := range mel {
		var sumP, sumL float64
		for _, v := range fr {
			l := float64(v) - 2
			sumL += l
			sumP += math.Pow(10, l)
		}
		env[j] = math.Log10(sumP + 1e-12)
		if !voiced(j) {
			continue
		}
		n := float64(len(fr))
		flat = append(flat, math.Pow(10, sumL/n)/(sumP/n))
		var lo, hi float64
		for b := range 8 {
			lo += float64(fr[b])
			hi += float64(fr[len(fr)-8+b])
		}
		tilt = append(tilt, (hi-lo)/8)
		if j > 0 && voiced(j-1) {
			var d float64
			for b := range fr {
				d += math.Abs(float64(fr[b] - mel[j-1][b]))
			}
			flux = append(flux, d/n)
		}
	}
	fm, fs := meanSD(flat)
	xm, _ := meanSD(flux)
	tm, _ := meanSD(tilt)
	m28, m825 := modulation(env)
	return []float64{fm, fs, xm, tm, m28, m825}
}

// modulation returns the shares of the envelope's modulation energy
// (0.5-25 Hz, DFT at 0.5 Hz steps of the mean-removed 100 Hz envelope) at
// 2-8 Hz (syllable rate) and 8-25 Hz.
func modulation(env []float64) (float64, float64) {
	if len(env) < 50 {
		return 0, 0
	}
	m, _ := meanSD(env)
	var total, syl, fast float64
	for f := 0.5; f <= 25; f += 0.5 {
		var re, im float64
		w := 2 * math.Pi * f / 100
		for j, v := range env {
			re += (v - m) * math.Cos(w*float64(j))
			im += (v - m) * math.Sin(w*float64(j))
		}
		p := re*re + im*im
		total += p
		switch {
		case f >= 2 && f <= 8:
			syl += p
		case f > 8:
			fast += p
		}
	}
	if total == 0 {
		return 0, 0
	}
	return syl / total, fast / total
}

// pitchFeatures measures F0 and periodicity on 8 kHz audio with a
// normalised autocorrelation per 10 ms frame (written by hand: a few dozen
// lines, and no pitch tracker is served for Go here).
//
// Every sum in it is of products of int16 samples: below 2^53 in
// magnitude, so exact in int64 and in float64 alike, and the same whatever
// the order of summing. That lets energies come from running sums and the
// correlations from 10 ms blocks (a 30 ms window is three of them, shared
// with the overlapping frames) at a third of the multiplications, with
// results bit for bit those of summing each window directly
// (TestPitchFeaturesMatchReference).
// int64Bufs holds pitchFeatures' scratch (the running energies, 384 kB for
// a 3 s recording, and the block correlations), reused instead of
// allocated per recording.
var int64Bufs bufpool.Pool[int64]

func pitchFeatures(x []int16) []float64 {
	n := (len(x) - pitchWin - pitchMaxLg) / pitchHop
	if n < 3 {
		return make([]float64, 7)
	}
	// sq[i] is the energy of x[:i].
	sqp := int64Bufs.Get(len(x) + 1)
	defer int64Bufs.Put(sqp)
	sq := *sqp
	sq[0] = 0
	for i, v := range x {
		sq[i+1] = sq[i] + int64(v)*int64(v)
	}
	energy := func(from int) int64 { return sq[from+pitchWin] - sq[from] }
	level := make([]float64, n)
	loud := -math.MaxFloat64
	for k := range n {
		level[k] = 10 * math.Log10(float64(energy(k*pitchHop))/pitchWin+1)
		loud = max(loud, level[k])
	}
	const (
		lag0   = pitchMinLg - 1 // the lags correlated, with one each side
		lags   = pitchMaxLg + 1 - lag0 + 1
		blocks = pitchWin / pitchHop
	)
	// block[j*lags+l] is the correlation of the 10 ms block j with itself
	// lag0+l samples on; done[j] says it is computed.
	bp := int64Bufs.Get((n + blocks) * lags)
	defer int64Bufs.Put(bp)
	block := *bp // each entry is written before it is read (done)
	done := make([]bool, n+blocks)
	f0 := make([]float64, n) // 0 = unpitched
	hnr := make([]float64, n)
	gated := 0
	r := make([]float64, pitchMaxLg+2)
	for k := range n {
		if level[k] < loud-gateDB {
			continue
		}
		gated++
		for j := k; j < k+blocks; j++ {
			if done[j] {
				continue
			}
			done[j] = true
			a := x[j*pitchHop : (j+1)*pitchHop]
			row := block[j*lags : (j+1)*lags]
			for l := range row {
				b := x[j*pitchHop+lag0+l:]
				b = b[:len(a)]
				var xy int64
				for i, v := range a {
					xy += int64(int32(v) * int32(b[i]))
				}
				row[l] = xy
			}
		}
		s := k * pitchHop
		ea := float64(energy(s))
		best := -1.0
		for lag := lag0; lag <= pitchMaxLg+1; lag++ {
			l := lag - lag0
			xy := block[k*lags+l] + block[(k+1)*lags+l] + block[(k+2)*lags+l]
			eb := float64(energy(s + lag))
			r[lag] = 0
			if ea > 0 && eb > 0 {
				r[lag] = float64(xy) / math.Sqrt(ea*eb)
			}
			if lag >= pitchMinLg && lag <= pitchMaxLg {
				best = max(best, r[lag])
			}
		}
		if best < 0.5 {
			continue
		}
		// The first local peak close to the best one: the period, not a
		// multiple of it.
		for lag := pitchMinLg; lag <= pitchMaxLg; lag++ {
			if r[lag] >= 0.85*best && r[lag] >= r[lag-1] && r[lag] >= r[lag+1] {
				den := r[lag-1] - 2*r[lag] + r[lag+1]
				off := 0.0
				if den < 0 {
					off = 0.5 * (r[lag-1] - r[lag+1]) / den
				}
				f0[k] = pitchRate / (float64(lag) + off)
				rr := min(max(r[lag], 0.01), 0.999)
				hnr[k] = 10 * math.Log10(rr/(1-rr))
				break
			}
		}
	}
	var jit, semis, accel, hn, shim []float64
	pitched := 0
	for k := range n {
		if f0[k] == 0 {
			continue
		}
		pitched++
		semis = append(semis, 12*math.Log2(f0[k]))
		hn = append(hn, hnr[k])
		if k > 0 && f0[k-1] > 0 {
			d := math.Abs(f0[k]-f0[k-1]) / ((f0[k] + f0[k-1]) / 2)
			if d < 0.2 { // larger jumps are tracking errors
				jit = append(jit, d)
				shim = append(shim, math.Abs(level[k]-level[k-1]))
			}
		}
		if k > 1 && f0[k-1] > 0 && f0[k-2] > 0 {
			a := math.Log2(f0[k]) - 2*math.Log2(f0[k-1]) + math.Log2(f0[k-2])
			if math.Abs(a) < 0.3 {
				accel = append(accel, 1200*math.Abs(a))
			}
		}
	}
	jm, _ := meanSD(jit)
	_, ss := meanSD(semis)
	am, _ := meanSD(accel)
	hm, hs := meanSD(hn)
	sm, _ := meanSD(shim)
	ratio := 0.0
	if gated > 0 {
		ratio = float64(pitched) / float64(gated)
	}
	return []float64{jm, ss, am, hm, hs, sm, ratio}
}

func cosineDistance(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 1
	}
	return 1 - ab/math.Sqrt(aa*bb)
}

// meanSD is the mean and population standard deviation (0, 0 when empty).
func meanSD(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	var q float64
	for _, x := range v {
		q += (x - m) * (x - m)
	}
	return m, math.Sqrt(q / float64(len(v)))
}
