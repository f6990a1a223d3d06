package livenesseval

import (
	"fmt"
	"math"
	"time"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

// The learned lip-sync candidates of eval-liveness (-parts
// lipsync-learned): small linear audio-visual models fitted on the GRID
// clips, each checked strictly by leaving one clip out. In the fold of
// clip k the model is fitted on the other nine clips only, and so is its
// threshold: lvRule applied to scores that are themselves held out (for
// each training clip j, a model fitted on the eight others scores j's
// genuine pair and j's swapped pairs with the other training clips). The
// held-out clip's genuine pair and its 18 swapped pairs are then decided,
// so every swapped pair is tested in the folds of both its clips (180
// trials), as in lvCrossValidate. Nothing here is random: the fits are
// closed-form or Newton steps, so a run gives the same numbers every time.

// lvLearnGrid is the mouth grid (columns x rows) of the pixel models.
const lvLearnGridW, lvLearnGridH = 16, 8

// lvLearnEdges are 8 mel-spaced audio bands over 100-7000 Hz.
func lvLearnEdges() []float64 {
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	inv := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	const n = 8
	lo, hi := mel(100), mel(7000)
	var e []float64
	for i := 0; i <= n; i++ {
		e = append(e, inv(lo+(hi-lo)*float64(i)/n))
	}
	return e
}

// lvLearnData holds every clip's per-frame changes (all series are
// ChangeSeries of the frame measures, one row per frame change).
type lvLearnData struct {
	names []string
	// grid: the 16 x 8 mouth grid, divided by the clip's RMS change.
	grid [][][]float64
	// quad: the grey spread (standard deviation of the grid cells) in
	// each quarter of the region, divided by the clip's RMS change.
	quad [][][]float64
	// con: the region's contrast (Check's mouth measure), standardised
	// per clip; conCtx: the same at t-2..t+2.
	con, conCtx [][][]float64
	// bands[v][a][l]: clip a's audio at clip v's frame times and small
	// lag l: 8 mel bands; band13: the 1-3 kHz band (Check's).
	bands, band13 [][][][][]float64
	// far[v][s]: clip v's own audio shifted far (lvLearnFar), 1-3 kHz
	// band then the 8 bands: hard negatives for the windowed model.
	far [][][][]float64
	// def[v][a]: Check's score with DefaultConfig.
	def [][]float64
}

// lvLearnLags are Check's default lags; lvLearnTrainLag (40 ms) is the
// audio delay the generative models are fitted at.
func lvLearnLags() []time.Duration {
	var l []time.Duration
	for d := lipsync.DefaultConfig.MinLag; d <= lipsync.DefaultConfig.MaxLag; d += lipsync.DefaultConfig.LagStep {
		l = append(l, d)
	}
	return l
}

const lvLearnTrainLag = 2

// lvLearnFar are the shifts of a clip's own audio used as hard negatives.
func lvLearnFar() []time.Duration {
	var s []time.Duration
	for d := 240 * time.Millisecond; d <= 720*time.Millisecond; d += 160 * time.Millisecond {
		s = append(s, d, -d)
	}
	return s
}

// lvChanges turns per-frame rows into rows of ChangeSeries per column (a
// NaN measure repeats the previous frame's).
func lvChanges(rows [][]float64) [][]float64 {
	if len(rows) < 2 {
		return nil
	}
	d := len(rows[0])
	out := make([][]float64, len(rows)-1)
	for i := range out {
		out[i] = make([]float64, d)
	}
	col := make([]float64, len(rows))
	for j := 0; j < d; j++ {
		for t, r := range rows {
			col[t] = r[j]
			if math.IsNaN(col[t]) {
				col[t] = 0
				if t > 0 {
					col[t] = col[t-1]
				}
			}
		}
		for t, v := range lipsync.ChangeSeries(col) {
			out[t][j] = v
		}
	}
	return out
}

// lvScaleRMS divides rows by their root mean square entry.
func lvScaleRMS(rows [][]float64) [][]float64 {
	var ss float64
	var n int
	for _, r := range rows {
		for _, v := range r {
			ss += v * v
			n++
		}
	}
	s := math.Sqrt(ss/float64(max(1, n))) + 1e-9
	for _, r := range rows {
		for j := range r {
			r[j] /= s
		}
	}
	return rows
}

func lvColumn(rows [][]float64, j int) []float64 {
	out := make([]float64, len(rows))
	for t, r := range rows {
		out[t] = r[j]
	}
	return out
}

// lvLearnPrepare measures every clip: the mouth grid, the quarters'
// spread, the contrast and the audio bands at every pairing.
func lvLearnPrepare(names []string, clips []*media.Clip, keys [][]int, lms [][]*lipsync.Landmarks) *lvLearnData {
	n := len(clips)
	d := &lvLearnData{names: names}
	lags, far := lvLearnLags(), lvLearnFar()
	edges := lvLearnEdges()
	times := make([][]time.Duration, n)
	var inputs []lipsync.Input
	for v, c := range clips {
		rois := liveness.MouthRegions(len(c.Frames), keys[v], lms[v])
		g := gridSeries(c.Frames, rois, lvLearnGridW, lvLearnGridH)
		quad := make([][]float64, len(g))
		for t, row := range g {
			quad[t] = lvQuarterSpread(row)
		}
		in := liveness.LipSyncInput(c, keys[v], lms[v])
		inputs = append(inputs, in)
		times[v] = in.Times
		con := make([][]float64, len(in.Times))
		for t := range con {
			con[t] = []float64{in.Contrast[t]}
		}
		cc := lvChanges(con)
		m, s := lipsync.MeanStd(lvColumn(cc, 0))
		ctx := make([][]float64, len(cc))
		for t := range cc {
			cc[t][0] = (cc[t][0] - m) / (s + 1e-9)
		}
		for t := range cc {
			for k := -2; k <= 2; k++ {
				ctx[t] = append(ctx[t], cc[min(max(t+k, 0), len(cc)-1)][0])
			}
		}
		d.grid = append(d.grid, lvScaleRMS(lvChanges(g)))
		d.quad = append(d.quad, lvScaleRMS(lvChanges(quad)))
		d.con = append(d.con, cc)
		d.conCtx = append(d.conCtx, ctx)
	}
	audioAt := func(a int, ts []time.Duration, ls []time.Duration) (bands, band13 [][][]float64) {
		au := clips[a].Audio
		b := bandEnergies(au.Samples, au.Rate, ts, ls, lipsync.DefaultConfig.Window, edges)
		b13 := bandEnergies(au.Samples, au.Rate, ts, ls, lipsync.DefaultConfig.Window, []float64{lipsync.DefaultConfig.BandLow, lipsync.DefaultConfig.BandHigh})
		for l := range ls {
			bands = append(bands, lvChanges(b[l]))
			band13 = append(band13, lvChanges(b13[l]))
		}
		return bands, band13
	}
	d.bands, d.band13 = make([][][][][]float64, n), make([][][][][]float64, n)
	d.def = make([][]float64, n)
	for v := range clips {
		d.bands[v], d.band13[v] = make([][][][]float64, n), make([][][][]float64, n)
		d.def[v] = make([]float64, n)
		for a := range clips {
			d.bands[v][a], d.band13[v][a] = audioAt(a, times[v], lags)
			in := inputs[v]
			in.Audio, in.Rate = clips[a].Audio.Samples, clips[a].Audio.Rate
			d.def[v][a] = lipsync.Check(in, lipsync.DefaultConfig).Score
		}
		fb, f13 := audioAt(v, times[v], far)
		var rows [][][]float64
		for s := range far {
			r := make([][]float64, len(fb[s]))
			for t := range r {
				r[t] = append(append([]float64{}, f13[s][t]...), fb[s][t]...)
			}
			rows = append(rows, r)
		}
		d.far = append(d.far, rows)
	}
	return d
}

// lvQuarterSpread is the standard deviation of the grid cells in each
// quarter (2 x 2) of the region.
func lvQuarterSpread(row []float64) []float64 {
	out := make([]float64, 4)
	for q := range out {
		var v []float64
		for y := (q / 2) * lvLearnGridH / 2; y < (q/2+1)*lvLearnGridH/2; y++ {
			for x := (q % 2) * lvLearnGridW / 2; x < (q%2+1)*lvLearnGridW/2; x++ {
				v = append(v, row[y*lvLearnGridW+x])
			}
		}
		_, out[q] = lipsync.MeanStd(v)
	}
	return out
}

// lvView names which visual rows and which audio rows a model relates.
type lvView struct {
	vis func(v int) [][]float64
	aud func(v, a, lag int) [][]float64
}

func (d *lvLearnData) view(vis, aud string) lvView {
	vw := lvView{}
	switch vis {
	case "grid":
		vw.vis = func(v int) [][]float64 { return d.grid[v] }
	case "contrast":
		vw.vis = func(v int) [][]float64 { return d.con[v] }
	case "contrast-context":
		vw.vis = func(v int) [][]float64 { return d.conCtx[v] }
	}
	switch aud {
	case "bands":
		vw.aud = func(v, a, l int) [][]float64 { return d.bands[v][a][l] }
	case "1-3 kHz":
		vw.aud = func(v, a, l int) [][]float64 { return d.band13[v][a][l] }
	}
	return vw
}

// lvSync is a linear sync model: visual rows times wx and audio rows
// times wy give c paired series; the score is their mean correlation at
// the best small lag.
type lvSync struct {
	wx, wy [][]float64 // D x c, K x c
}

func lvProject(rows [][]float64, w [][]float64, c int) []float64 {
	out := make([]float64, len(rows))
	for t, r := range rows {
		var s float64
		for j, v := range r {
			s += v * w[j][c]
		}
		out[t] = s
	}
	return out
}

func (m *lvSync) score(vw lvView, v, a int, lags int) float64 {
	c := len(m.wx[0])
	x := vw.vis(v)
	pv := make([][]float64, c)
	for i := range pv {
		pv[i] = lvProject(x, m.wx, i)
	}
	best := math.Inf(-1)
	for l := 0; l < lags; l++ {
		y := vw.aud(v, a, l)
		var r float64
		for i := range pv {
			r += lipsync.Pearson(pv[i], lvProject(y, m.wy, i))
		}
		best = max(best, r/float64(c))
	}
	return best
}

// lvCovariances are the centred covariances of the training clips' own
// visual and audio rows at the training lag.
func lvCovariances(vw lvView, train []int) (cxx, cyy, cxy [][]float64) {
	var xs, ys [][]float64
	for _, c := range train {
		x, y := vw.vis(c), vw.aud(c, c, lvLearnTrainLag)
		xs, ys = append(xs, x[:min(len(x), len(y))]...), append(ys, y[:min(len(x), len(y))]...)
	}
	cov := func(a, b [][]float64) [][]float64 {
		ma, mb := lvColMeans(a), lvColMeans(b)
		out := lvZeros(len(ma), len(mb))
		for t := range a {
			for i := range ma {
				di := a[t][i] - ma[i]
				if di == 0 {
					continue
				}
				row := out[i]
				for j := range mb {
					row[j] += di * (b[t][j] - mb[j])
				}
			}
		}
		for i := range out {
			for j := range out[i] {
				out[i][j] /= float64(len(a))
			}
		}
		return out
	}
	return cov(xs, xs), cov(ys, ys), cov(xs, ys)
}

func lvColMeans(rows [][]float64) []float64 {
	m := make([]float64, len(rows[0]))
	for _, r := range rows {
		for j, v := range r {
			m[j] += v / float64(len(rows))
		}
	}
	return m
}

func lvZeros(r, c int) [][]float64 {
	m := make([][]float64, r)
	for i := range m {
		m[i] = make([]float64, c)
	}
	return m
}

// lvRidge adds r times the mean variance to the diagonal (a copy).
func lvRidge(c [][]float64, r float64) [][]float64 {
	var tr float64
	for i := range c {
		tr += c[i][i]
	}
	out := lvZeros(len(c), len(c))
	for i := range c {
		copy(out[i], c[i])
		out[i][i] += r*tr/float64(len(c)) + 1e-12
	}
	return out
}

// lvFitCCA is regularised canonical correlation analysis: the c pairs of
// directions whose projections of the genuine training rows correlate
// most, with rx and ry shrinking each side's covariance towards a
// multiple of the identity (the grid has 128 columns and nine clips give
// about 660 rows).
func lvFitCCA(vw lvView, train []int, rx, ry float64, c int) *lvSync {
	cxx, cyy, cxy := lvCovariances(vw, train)
	d, k := len(cxx), len(cyy)
	lx, ly := lvCholesky(lvRidge(cxx, rx)), lvCholesky(lvRidge(cyy, ry))
	// M = Lx^-1 Cxy Ly^-T; its right singular vectors give the audio
	// directions, its left ones the visual directions.
	m := lvZeros(d, k)
	for i := 0; i < d; i++ {
		m[i] = lvSolveLower(ly, cxy[i])
	}
	for j := 0; j < k; j++ {
		col := lvSolveLower(lx, lvColumn(m, j))
		for i := range col {
			m[i][j] = col[i]
		}
	}
	mtm := lvZeros(k, k)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			for r := 0; r < d; r++ {
				mtm[i][j] += m[r][i] * m[r][j]
			}
		}
	}
	_, vecs := lvEigen(mtm)
	c = min(c, k)
	s := &lvSync{wx: lvZeros(d, c), wy: lvZeros(k, c)}
	for i := 0; i < c; i++ {
		vi := lvColumn(vecs, i)
		u := make([]float64, d)
		for r := 0; r < d; r++ {
			for j := 0; j < k; j++ {
				u[r] += m[r][j] * vi[j]
			}
		}
		a, b := lvSolveUpper(lx, u), lvSolveUpper(ly, vi)
		for r := range a {
			s.wx[r][i] = a[r]
		}
		for j := range b {
			s.wy[j][i] = b[j]
		}
	}
	return s
}

// lvFitRidge predicts each audio column from the visual rows (ridge
// regression, rx as in lvFitCCA); the score is the mean correlation of
// the predicted and the actual audio columns.
func lvFitRidge(vw lvView, train []int, rx float64) *lvSync {
	cxx, cyy, cxy := lvCovariances(vw, train)
	d, k := len(cxx), len(cyy)
	l := lvCholesky(lvRidge(cxx, rx))
	s := &lvSync{wx: lvZeros(d, k), wy: lvZeros(k, k)}
	for j := 0; j < k; j++ {
		w := lvSolveUpper(l, lvSolveLower(l, lvColumn(cxy, j)))
		for r := range w {
			s.wx[r][j] = w[r]
		}
		s.wy[j][j] = 1
	}
	return s
}

// Small dense solvers are written here rather than taken from a linear
// algebra library: the evaluation needs a Cholesky factorisation and a
// symmetric eigen-decomposition of at most 128 x 128, which is not worth
// a new module for an evaluation command.

// lvCholesky returns the lower L with L L' = a (a symmetric positive
// definite).
func lvCholesky(a [][]float64) [][]float64 {
	n := len(a)
	l := lvZeros(n, n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			s := a[i][j]
			for k := 0; k < j; k++ {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				l[i][i] = math.Sqrt(max(s, 1e-300))
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	return l
}

// lvSolveLower solves L x = b.
func lvSolveLower(l [][]float64, b []float64) []float64 {
	x := make([]float64, len(b))
	for i := range b {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i][k] * x[k]
		}
		x[i] = s / l[i][i]
	}
	return x
}

// lvSolveUpper solves L' x = b.
func lvSolveUpper(l [][]float64, b []float64) []float64 {
	x := make([]float64, len(b))
	for i := len(b) - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < len(b); k++ {
			s -= l[k][i] * x[k]
		}
		x[i] = s / l[i][i]
	}
	return x
}

// lvEigen is the eigen-decomposition of the symmetric a by cyclic Jacobi
// rotations: values in decreasing order, vectors as the matching columns.
func lvEigen(a0 [][]float64) ([]float64, [][]float64) {
	n := len(a0)
	a, v := lvZeros(n, n), lvZeros(n, n)
	for i := range a {
		copy(a[i], a0[i])
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, all float64
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i != j {
					off += a[i][j] * a[i][j]
				}
				all += a[i][j] * a[i][j]
			}
		}
		if off <= 1e-24*all {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				if a[p][q] == 0 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ {
					a[k][p], a[k][q] = c*a[k][p]-s*a[k][q], s*a[k][p]+c*a[k][q]
				}
				for k := 0; k < n; k++ {
					a[p][k], a[q][k] = c*a[p][k]-s*a[q][k], s*a[p][k]+c*a[q][k]
				}
				for k := 0; k < n; k++ {
					v[k][p], v[k][q] = c*v[k][p]-s*v[k][q], s*v[k][p]+c*v[k][q]
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for i := 1; i < n; i++ {
		for j := i; j > 0 && a[idx[j]][idx[j]] > a[idx[j-1]][idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	vals, vecs := make([]float64, n), lvZeros(n, n)
	for c, i := range idx {
		vals[c] = a[i][i]
		for k := 0; k < n; k++ {
			vecs[k][c] = v[k][i]
		}
	}
	return vals, vecs
}

// lvLogistic fits logistic regression with an L2 penalty lambda on the
// weights (not the bias), genuine and swapped examples weighted to count
// equally, by Newton steps. w[0] is the bias.
func lvLogistic(x [][]float64, y []bool, lambda float64) []float64 {
	d := len(x[0]) + 1
	w := make([]float64, d)
	var npos, nneg float64
	for _, p := range y {
		if p {
			npos++
		} else {
			nneg++
		}
	}
	xb := make([]float64, d)
	for it := 0; it < 50; it++ {
		h, g := lvZeros(d, d), make([]float64, d)
		for i, row := range x {
			xb[0] = 1
			copy(xb[1:], row)
			var z float64
			for j := range xb {
				z += w[j] * xb[j]
			}
			p := 1 / (1 + math.Exp(-z))
			cw, t := 0.5/nneg, 0.0
			if y[i] {
				cw, t = 0.5/npos, 1
			}
			for j := range xb {
				g[j] += cw * (p - t) * xb[j]
				for k := 0; k <= j; k++ {
					h[j][k] += cw * p * (1 - p) * xb[j] * xb[k]
				}
			}
		}
		for j := 0; j < d; j++ {
			if j > 0 {
				g[j] += lambda * w[j]
				h[j][j] += lambda
			}
			h[j][j] += 1e-9
			for k := 0; k < j; k++ {
				h[k][j] = h[j][k]
			}
		}
		l := lvCholesky(h)
		step := lvSolveUpper(l, lvSolveLower(l, g))
		var n2 float64
		for j := range w {
			w[j] -= step[j]
			n2 += step[j] * step[j]
		}
		if n2 < 1e-16 {
			break
		}
	}
	return w
}

func lvLogit(w, f []float64) float64 {
	z := w[0]
	for j, v := range f {
		z += w[j+1] * v
	}
	return z
}

// lvPairSeries are the (visual, audio) series pairs whose correlations
// the discriminative models weigh: the contrast with the 1-3 kHz band and
// each of the 8 bands, and each quarter's spread with the 1-3 kHz band.
// An audio index 0 is the 1-3 kHz band, 1..8 the bands; a visual index 0
// is the contrast, 1..4 the quarters.
var lvPairSeries = [][2]int{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {0, 7}, {0, 8}, {1, 0}, {2, 0}, {3, 0}, {4, 0}}

func (d *lvLearnData) visSeries(v, i, s, e int) []float64 {
	if i == 0 {
		return lvColumn(d.con[v], 0)[s:e]
	}
	return lvColumn(d.quad[v], i-1)[s:e]
}

func lvAudioSeries(band13, bands [][]float64, j, s, e int) []float64 {
	if j == 0 {
		return lvColumn(band13, 0)[s:e]
	}
	return lvColumn(bands, j-1)[s:e]
}

// pairFeatures are the correlations of lvPairSeries over frames [s, e),
// each at its best small lag.
func (d *lvLearnData) pairFeatures(v, a, s, e int) []float64 {
	f := make([]float64, len(lvPairSeries))
	for k, p := range lvPairSeries {
		f[k] = math.Inf(-1)
		for l := range d.bands[v][a] {
			f[k] = max(f[k], lipsync.Pearson(d.visSeries(v, p[0], s, e), lvAudioSeries(d.band13[v][a][l], d.bands[v][a][l], p[1], s, e)))
		}
	}
	return f
}

// farFeatures are the same correlations with clip v's own audio shifted
// by lvLearnFar()[sh].
func (d *lvLearnData) farFeatures(v, sh, s, e int) []float64 {
	rows := d.far[v][sh]
	f := make([]float64, len(lvPairSeries))
	for k, p := range lvPairSeries {
		f[k] = lipsync.Pearson(d.visSeries(v, p[0], s, e), lvColumn(rows, p[1])[s:e])
	}
	return f
}

// lvLearner is one candidate: Fit returns a scorer of (video, audio)
// pairs fitted on the train clips only.
type lvLearner struct {
	Name string
	Fit  func(train []int) func(v, a int) float64
}

// lvLearners are the candidates: generative (CCA, ridge) and
// discriminative (logistic regression) models, and the default score for
// reference.
func lvLearners(d *lvLearnData) []lvLearner {
	nl := len(lvLearnLags())
	syncL := func(name string, vw lvView, fit func(train []int) *lvSync, def float64) lvLearner {
		return lvLearner{name, func(train []int) func(v, a int) float64 {
			m := fit(train)
			return func(v, a int) float64 {
				s := m.score(vw, v, a, nl)
				if def > 0 {
					s = (s + def*d.def[v][a]) / (1 + def)
				}
				return s
			}
		}}
	}
	grid, con, ctx := d.view("grid", "bands"), d.view("contrast", "bands"), d.view("contrast-context", "1-3 kHz")
	ls := []lvLearner{
		{"default (fixed, not learned)", func([]int) func(v, a int) float64 { return func(v, a int) float64 { return d.def[v][a] } }},
		syncL("CCA: mouth grid 16x8 / 8 bands, rx 3, 1 component", grid, func(tr []int) *lvSync { return lvFitCCA(grid, tr, 3, 1, 1) }, 0),
		syncL("CCA: mouth grid 16x8 / 8 bands, rx 3, 2 components", grid, func(tr []int) *lvSync { return lvFitCCA(grid, tr, 3, 1, 2) }, 0),
		syncL("CCA: mouth grid 16x8 / 8 bands, rx 30, 1 component", grid, func(tr []int) *lvSync { return lvFitCCA(grid, tr, 30, 1, 1) }, 0),
		syncL("CCA: mouth grid 16x8 / 8 bands, rx 3, 1 component, averaged with the default score", grid, func(tr []int) *lvSync { return lvFitCCA(grid, tr, 3, 1, 1) }, 1),
		syncL("ridge: mouth grid 16x8 -> 8 bands, rx 10", grid, func(tr []int) *lvSync { return lvFitRidge(grid, tr, 10) }, 0),
		syncL("CCA: contrast / 8 bands (learned band weights), ry 1", con, func(tr []int) *lvSync { return lvFitCCA(con, tr, 0.01, 1, 1) }, 0),
		syncL("CCA: contrast at t-2..t+2 / 1-3 kHz (learned temporal filter)", ctx, func(tr []int) *lvSync { return lvFitCCA(ctx, tr, 0.01, 0.01, 1) }, 0),
	}
	T := len(d.con[0])
	pair := make([][][]float64, len(d.names))
	for v := range pair {
		pair[v] = make([][]float64, len(d.names))
		for a := range pair[v] {
			pair[v][a] = d.pairFeatures(v, a, 0, T)
		}
	}
	ls = append(ls, lvLearner{"logistic regression on 13 correlations (whole clip), lambda 0.1", func(train []int) func(v, a int) float64 {
		var x [][]float64
		var y []bool
		for _, v := range train {
			for _, a := range train {
				x, y = append(x, pair[v][a]), append(y, v == a)
			}
		}
		w := lvLogistic(x, y, 0.1)
		return func(v, a int) float64 { return lvLogit(w, pair[v][a]) }
	}})
	// windowed: windows of win frames every 4 frames; genuine windows,
	// swapped windows (other training clips' audio) and, with hard, the
	// clip's own audio shifted far; a pair's score is the mean logit over
	// its windows.
	for _, w := range lvWindowed {
		ls = append(ls, lvWindowLearner(d, w.frames, w.lambda, w.hard))
	}
	return ls
}

// lvWindowed are the windowed logistic-regression candidates: 32 frames
// (1.28 s) with lambda 1, with and without hard negatives, then other
// penalties and window lengths from 0.8 to 2.24 s, to show how much the
// result depends on them.
var lvWindowed = []struct {
	frames int
	lambda float64
	hard   bool
}{{32, 1, false}, {32, 1, true}, {32, 0.1, false}, {32, 10, false}, {24, 1, false}, {48, 1, false}, {24, 1, true}, {48, 1, true}, {28, 1, false}, {36, 1, false}, {40, 1, false}, {20, 1, false}, {56, 1, false}}

func lvWindowLearner(d *lvLearnData, win int, lambda float64, hard bool) lvLearner {
	const hop = 4
	T := len(d.con[0])
	var starts []int
	for s := 0; s+win <= T; s += hop {
		starts = append(starts, s)
	}
	n := len(d.names)
	wf := make([][][][]float64, n)
	ff := make([][][][]float64, n)
	for v := range wf {
		wf[v] = make([][][]float64, n)
		for a := range wf[v] {
			for _, s := range starts {
				wf[v][a] = append(wf[v][a], d.pairFeatures(v, a, s, s+win))
			}
		}
		for sh := range d.far[v] {
			var rows [][]float64
			for _, s := range starts {
				rows = append(rows, d.farFeatures(v, sh, s, s+win))
			}
			ff[v] = append(ff[v], rows)
		}
	}
	name := fmt.Sprintf("logistic regression on 13 correlations in %.2f s windows, lambda %g", float64(win)*0.04, lambda)
	if hard {
		name += ", own audio shifted 240-720 ms as extra negatives"
	}
	return lvLearner{name, func(train []int) func(v, a int) float64 {
		var x [][]float64
		var y []bool
		for _, v := range train {
			for _, a := range train {
				for i := range starts {
					x, y = append(x, wf[v][a][i]), append(y, v == a)
				}
			}
			if hard {
				for _, rows := range ff[v] {
					for _, r := range rows {
						x, y = append(x, r), append(y, false)
					}
				}
			}
		}
		w := lvLogistic(x, y, lambda)
		return func(v, a int) float64 {
			var m float64
			for _, f := range wf[v][a] {
				m += lvLogit(w, f)
			}
			return m / float64(len(starts))
		}
	}}
}

// lvNestedFold is one candidate in one outer fold.
type lvNestedFold struct {
	threshold float64
	cost      float64 // inner rejection rate + acceptance rate at threshold
	innerAUC  float64
	genuine   float64   // held-out genuine score
	swapped   []float64 // held-out swapped scores (its video with the others' audio, then the reverse)
}

func lvNestedRun(n int, l lvLearner) []lvNestedFold {
	var folds []lvNestedFold
	for k := 0; k < n; k++ {
		folds = append(folds, lvNestedRunFold(n, l, k))
	}
	return folds
}

// lvNestedRunFold is the fold of held-out clip k.
func lvNestedRunFold(n int, l lvLearner, k int) lvNestedFold {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	train := lvWithout(all, k)
	// held-out scores of the training clips: each training clip's pairs
	// scored by a model fitted without it (nor k), so every training
	// pair is scored twice, in the folds of both its clips
	var gen, sw []float64
	for _, j := range train {
		inner := l.Fit(lvWithout(train, j))
		gen = append(gen, inner(j, j))
		for _, o := range lvWithout(train, j) {
			sw = append(sw, inner(j, o), inner(o, j))
		}
	}
	t := lvRuleThresholdOf(gen, sw)
	fr, fa := lvErrors(gen, sw, t)
	f := lvNestedFold{threshold: t, cost: float64(fr)/float64(len(gen)) + float64(fa)/float64(len(sw)), innerAUC: lvAUC(gen, sw)}
	m := l.Fit(train)
	f.genuine = m(k, k)
	for _, o := range train {
		f.swapped = append(f.swapped, m(k, o))
	}
	for _, o := range train {
		f.swapped = append(f.swapped, m(o, k))
	}
	return f
}

func lvWithout(all []int, x int) []int {
	var out []int
	for _, c := range all {
		if c != x {
			out = append(out, c)
		}
	}
	return out
}

// lvLearnedSummary turns a candidate's (or the selection's) folds into
// an lvCVSummary; pick names the candidate of each fold.
func lvLearnedSummary(names []string, folds []lvNestedFold, pick []string, candidates int) lvCVSummary {
	tally := lvTally{sum: lvCVSummary{Candidates: candidates}}
	for k, f := range folds {
		tally.add(lvCVFold{HeldOut: names[k], Config: pick[k], TrainAUC: lvRound(f.innerAUC)}, f.genuine, f.swapped, f.threshold)
	}
	return tally.summary()
}

// lvLearned is the JSON of -parts lipsync-learned.
type lvLearned struct {
	Protocol string `json:"protocol"`
	Rule     string `json:"threshold_rule"`
	// Candidates: each candidate's leave-one-clip-out result (nested).
	Candidates []lvLearnedCandidate `json:"candidates"`
	// Selection: in each fold, the learned candidate (not the default)
	// with the lowest inner cost (rejection + acceptance rate of the
	// held-out training scores at its threshold; ties: higher inner AUC).
	Selection lvCVSummary `json:"selection_cv"`
	// SelectionWindowed: the same among the windowed logistic
	// regressions only (window length, penalty and negatives chosen in
	// each fold).
	SelectionWindowed lvCVSummary `json:"selection_cv_windowed"`
}

type lvLearnedCandidate struct {
	Name string `json:"name"`
	// FitAUC, FitRejected and FitAccepted: the model fitted on all ten
	// clips, scored on the same clips (of 10 and 90) at the rule's
	// threshold on those scores: optimistic, for comparison only.
	FitAUC          float64     `json:"fit_all_clips_auc"`
	FitRejected     int         `json:"fit_all_clips_genuine_rejected"`
	FitAccepted     int         `json:"fit_all_clips_swapped_accepted"`
	GenuineRejected int         `json:"genuine_rejected"`
	SwappedAccepted int         `json:"swapped_accepted"`
	SwappedTested   int         `json:"swapped_tested"`
	MarginAUC       float64     `json:"margin_auc"`
	Folds           lvCVSummary `json:"folds"`
}

const lvLearnedProtocol = "leave one clip out; in each fold the model is fitted on the nine other clips and its threshold set by the rule on their held-out scores (each training clip's pairs scored by a model fitted on the eight others); the held-out clip's genuine pair and 18 swapped pairs are decided"

// lvLipSyncLearned fits and cross-validates every learned candidate.
func lvLipSyncLearned(names []string, clips []*media.Clip, keys [][]int, lms [][]*lipsync.Landmarks) *lvLearned {
	d := lvLearnPrepare(names, clips, keys, lms)
	ls := lvLearners(d)
	out := &lvLearned{Protocol: lvLearnedProtocol, Rule: lvRule}
	all := make([]int, len(names))
	for i := range all {
		all[i] = i
	}
	runs := make([][]lvNestedFold, len(ls))
	for i, l := range ls {
		runs[i] = lvNestedRun(len(names), l)
		pick := make([]string, len(names))
		for k := range pick {
			pick[k] = l.Name
		}
		s := lvLearnedSummary(names, runs[i], pick, 1)
		c := lvLearnedCandidate{Name: l.Name, GenuineRejected: s.GenuineRejected,
			SwappedAccepted: s.SwappedAccepted, SwappedTested: s.SwappedTested, MarginAUC: s.MarginAUC, Folds: s}
		m := l.Fit(all)
		var gen, sw []float64
		for _, v := range all {
			for _, a := range all {
				if v == a {
					gen = append(gen, m(v, a))
				} else {
					sw = append(sw, m(v, a))
				}
			}
		}
		c.FitAUC = lvRound(lvAUC(gen, sw))
		c.FitRejected, c.FitAccepted = lvErrors(gen, sw, lvRuleThresholdOf(gen, sw))
		out.Candidates = append(out.Candidates, c)
	}
	folds, pick := lvSelect(runs[1:], ls[1:])
	out.Selection = lvLearnedSummary(names, folds, pick, len(ls)-1)
	w := len(ls) - len(lvWindowed)
	folds, pick = lvSelect(runs[w:], ls[w:])
	out.SelectionWindowed = lvLearnedSummary(names, folds, pick, len(lvWindowed))
	return out
}

// lvSelect picks, in each fold, the candidate with the lowest inner cost
// (ties: the higher inner AUC, then the first).
func lvSelect(runs [][]lvNestedFold, ls []lvLearner) ([]lvNestedFold, []string) {
	var folds []lvNestedFold
	var pick []string
	for k := range runs[0] {
		b := 0
		for i := range runs {
			f, g := runs[i][k], runs[b][k]
			if f.cost < g.cost || (f.cost == g.cost && f.innerAUC > g.innerAUC) {
				b = i
			}
		}
		folds, pick = append(folds, runs[b][k]), append(pick, ls[b].Name)
	}
	return folds, pick
}
