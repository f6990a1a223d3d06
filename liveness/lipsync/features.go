package lipsync

import (
	"math"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

// Per-frame features for learned sync models (evaluated by
// `trustid eval-liveness -parts lipsync-learned`; not used by Check).

// GridSeries reads the mouth region roi[i] of each BGR frame as a w x h
// grid of mean grey levels (row-major; every pixel of the region falls in
// one cell), so that regions of any size give vectors of one length.
// Regions are clipped to the frame; a frame with an empty region, or a
// cell with no pixel, gives a row of NaN.
func GridSeries(frames []media.Frame, rois []Rect, w, h int) [][]float64 {
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

// BandEnergies is the audio energy (dB, as Check's) in each band
// edges[k]..edges[k+1] Hz, in a Hann window of length win centred on each
// time t+lag, for every lag: out[lag][time][band].
func BandEnergies(audio []int16, rate int, times []time.Duration, lags []time.Duration, win time.Duration, edges []float64) [][][]float64 {
	w := hann(int(win.Seconds() * float64(rate)))
	out := make([][][]float64, len(lags))
	for l := range out {
		out[l] = make([][]float64, len(times))
		for t := range out[l] {
			out[l][t] = make([]float64, max(0, len(edges)-1))
		}
	}
	for k := 0; k+1 < len(edges); k++ {
		x := BandPass(audio, rate, edges[k], edges[k+1])
		for l, lag := range lags {
			for t, e := range energyDB(x, rate, times, lag, w, false) {
				out[l][t][k] = e
			}
		}
	}
	return out
}

// ChangeSeries is the frame-to-frame change of the 3-tap smoothed series
// x, as Check correlates (one shorter than x).
func ChangeSeries(x []float64) []float64 { return diff(smooth(x)) }

// Pearson is the correlation of a and b (0 when either is constant).
func Pearson(a, b []float64) float64 { return pearson(a, b) }

// MeanStd is the mean and the population standard deviation of x (0, 0
// when x is empty).
func MeanStd(x []float64) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	return meanStd(x)
}
