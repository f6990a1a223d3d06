package livenesseval

import (
	"math"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// Per-frame features for learned sync models (`trustid-lab eval-liveness
// -parts lipsync-learned`); lipsync.Check does not use them.

// gridSeries reads the mouth region roi[i] of each BGR frame as a w x h
// grid of mean grey levels (row-major; every pixel of the region falls in
// one cell), so that regions of any size give vectors of one length.
// Regions are clipped to the frame; a frame with an empty region, or a
// cell with no pixel, gives a row of NaN.
func gridSeries(frames []media.Frame, rois []lipsync.Rect, w, h int) [][]float64 {
	out := make([][]float64, len(frames))
	sum := make([]float64, w*h)
	cnt := make([]int, w*h)
	for i, f := range frames {
		row := make([]float64, w*h)
		out[i] = row
		r := rois[i]
		x0, y0 := max(0, r.X0), max(0, r.Y0)
		x1, y1 := min(f.Width, r.X1), min(f.Height, r.Y1)
		if x1 <= x0 || y1 <= y0 || r.X1 <= r.X0 || r.Y1 <= r.Y0 || len(f.BGR) < f.Width*f.Height*3 {
			for j := range row {
				row[j] = math.NaN()
			}
			continue
		}
		clear(sum)
		clear(cnt)
		for y := y0; y < y1; y++ {
			cy := (y - r.Y0) * h / (r.Y1 - r.Y0)
			o := (y*f.Width + x0) * 3
			for x := x0; x < x1; x, o = x+1, o+3 {
				c := cy*w + (x-r.X0)*w/(r.X1-r.X0)
				sum[c] += 0.114*float64(f.BGR[o]) + 0.587*float64(f.BGR[o+1]) + 0.299*float64(f.BGR[o+2])
				cnt[c]++
			}
		}
		for j := range row {
			if cnt[j] == 0 {
				row[j] = math.NaN()
				continue
			}
			row[j] = sum[j] / float64(cnt[j])
		}
	}
	return out
}

// bandEnergies is the audio energy (dB, as Check's) in each band
// edges[k]..edges[k+1] Hz, in a Hann window of length win centred on each
// time t+lag, for every lag: out[lag][time][band].
func bandEnergies(audio []int16, rate int, times []time.Duration, lags []time.Duration, win time.Duration, edges []float64) [][][]float64 {
	w := hann(int(win.Seconds() * float64(rate)))
	out := make([][][]float64, len(lags))
	for l := range out {
		out[l] = make([][]float64, len(times))
		for t := range out[l] {
			out[l][t] = make([]float64, max(0, len(edges)-1))
		}
	}
	for k := 0; k+1 < len(edges); k++ {
		x := lipsync.BandPass(audio, rate, edges[k], edges[k+1])
		for l, lag := range lags {
			for t, e := range energyDB(x, rate, times, lag, w, false) {
				out[l][t][k] = e
			}
		}
	}
	return out
}

// hann and energyDB are copies of liveness/lipsync's (Check's audio
// energy), so the learned features and lvCheck measure the band energy as
// Check does; energyDB's wrap is lvOffset's (TestEnergyWrap).

// hann is a Hann window of n points, squared (it weights energies), and
// normalised to sum to 1.
func hann(n int) []float64 {
	w := make([]float64, max(1, n))
	var sum float64
	for i := range w {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/float64(len(w)))
		w[i] = h * h
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// energyDB is the windowed energy of x in dB (floored at -90) centred on
// each time t+lag; samples outside x count as silence, or with wrap, x is
// read circularly.
func energyDB(x []float64, rate int, times []time.Duration, lag time.Duration, win []float64, wrap bool) []float64 {
	out := make([]float64, len(times))
	for i, t := range times {
		start := int((t+lag).Seconds()*float64(rate)) - len(win)/2
		var e float64
		if wrap && len(x) > 0 {
			k := ((start % len(x)) + len(x)) % len(x)
			for j := range win {
				v := x[k]
				e += win[j] * v * v
				if k++; k == len(x) {
					k = 0
				}
			}
		}
		for j := max(0, -start); !wrap && j < len(win) && start+j < len(x); j++ {
			v := x[start+j]
			e += win[j] * v * v
		}
		out[i] = max(-90, 10*math.Log10(e+1e-12))
	}
	return out
}
