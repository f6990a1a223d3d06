package speechlab

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/trustid/trustid/liveness/synthvoice"
)

// SVFitConfig is the classifier's training setting.
type SVFitConfig struct {
	Hidden int     // 0 = logistic regression
	L2     float64 // weight decay on every weight (not the biases)
	Iters  int
	LR     float64
	Seed   int64
}

func (c *SVFitConfig) defaults() {
	if c.Iters == 0 {
		c.Iters = 600
	}
	if c.LR == 0 {
		c.LR = 0.03
	}
}

// svWeights gives each class half of the weight and, within a class, each
// source (corpus or engine) an equal share, so FSDD's many utterances do
// not stand for all real speech.
func svWeights(items []SVItem) []float64 {
	count := map[[2]any]int{}
	sources := map[bool]map[string]bool{false: {}, true: {}}
	for _, it := range items {
		count[[2]any{it.Synthetic, it.Source}]++
		sources[it.Synthetic][it.Source] = true
	}
	w := make([]float64, len(items))
	for i, it := range items {
		w[i] = 0.5 / float64(len(sources[it.Synthetic])) / float64(count[[2]any{it.Synthetic, it.Source}])
	}
	return w
}

// SVFit trains the classifier on items with full-batch Adam on the
// weighted logistic loss plus L2. The arithmetic of the forward pass is
// synthvoice.Model's own (Standardise, HiddenOut, LogitStd).
func SVFit(items []SVItem, c SVFitConfig) *synthvoice.Model {
	c.defaults()
	n, d := len(items), len(items[0].X)
	m := &synthvoice.Model{Features: synthvoice.FeatureNames(), Mean: make([]float64, d), Scale: make([]float64, d)}
	for _, it := range items {
		for j, v := range it.X {
			m.Mean[j] += v
		}
	}
	for j := range m.Mean {
		m.Mean[j] /= float64(n)
	}
	for _, it := range items {
		for j, v := range it.X {
			m.Scale[j] += (v - m.Mean[j]) * (v - m.Mean[j])
		}
	}
	for j := range m.Scale {
		m.Scale[j] = math.Sqrt(m.Scale[j] / float64(n))
		if m.Scale[j] < 1e-9 {
			m.Scale[j] = 1
		}
	}
	z := make([][]float64, n)
	y := make([]float64, n)
	for i, it := range items {
		z[i] = m.Standardise(it.X)
		if it.Synthetic {
			y[i] = 1
		}
	}
	w := svWeights(items)
	rng := NewRand(c.Seed)
	// Parameters flattened: hidden rows, hidden biases, output weights, bias.
	in := d
	if c.Hidden > 0 {
		m.Hidden = make([][]float64, c.Hidden)
		m.HiddenBias = make([]float64, c.Hidden)
		for k := range m.Hidden {
			m.Hidden[k] = make([]float64, d)
			for j := range m.Hidden[k] {
				m.Hidden[k][j] = rng.NormFloat64() * math.Sqrt(2/float64(d))
			}
		}
		in = c.Hidden
	}
	m.W = make([]float64, in)
	if c.Hidden > 0 {
		for k := range m.W {
			m.W[k] = rng.NormFloat64() * math.Sqrt(1/float64(in))
		}
	}
	params := func() []*float64 {
		var p []*float64
		for k := range m.Hidden {
			for j := range m.Hidden[k] {
				p = append(p, &m.Hidden[k][j])
			}
		}
		for k := range m.HiddenBias {
			p = append(p, &m.HiddenBias[k])
		}
		for k := range m.W {
			p = append(p, &m.W[k])
		}
		return append(p, &m.Bias)
	}()
	decay := make([]bool, len(params)) // which parameters take L2
	for i := range decay {
		decay[i] = true
	}
	decay[len(decay)-1] = false
	for k := range m.HiddenBias {
		decay[c.Hidden*d+k] = false
	}
	mom, vel := make([]float64, len(params)), make([]float64, len(params))
	grad := make([]float64, len(params))
	const b1, b2, eps = 0.9, 0.999, 1e-8
	for it := 1; it <= c.Iters; it++ {
		clear(grad)
		for i := range z {
			var h []float64
			if c.Hidden > 0 {
				h = m.HiddenOut(z[i])
			}
			g := w[i] * (synthvoice.Sigmoid(m.LogitStd(z[i])) - y[i]) // dLoss/dlogit
			off := 0
			if c.Hidden > 0 {
				off = c.Hidden*d + c.Hidden
				for k := range m.Hidden {
					if h[k] <= 0 {
						continue
					}
					gk := g * m.W[k]
					row := grad[k*d : (k+1)*d]
					for j, v := range z[i] {
						row[j] += gk * v
					}
					grad[c.Hidden*d+k] += gk
				}
				for k, v := range h {
					grad[off+k] += g * v
				}
			} else {
				for j, v := range z[i] {
					grad[j] += g * v
				}
			}
			grad[len(grad)-1] += g
		}
		for k, p := range params {
			gk := grad[k]
			if decay[k] {
				gk += c.L2 * *p
			}
			mom[k] = b1*mom[k] + (1-b1)*gk
			vel[k] = b2*vel[k] + (1-b2)*gk*gk
			mh := mom[k] / (1 - math.Pow(b1, float64(it)))
			vh := vel[k] / (1 - math.Pow(b2, float64(it)))
			*p -= c.LR * mh / (math.Sqrt(vh) + eps)
		}
	}
	return m
}

// svThreshold is the score at and above which a recording is judged
// synthetic so that at most frr of the real scores reach it (ties broken
// against rejection: the threshold sits just above the real score it must
// not reject).
func svThreshold(real []float64, frr float64) float64 {
	if len(real) == 0 {
		return 0.5
	}
	s := slices.Clone(real)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	k := int(math.Floor(frr * float64(len(s))))
	if k >= len(s) {
		return 0
	}
	t := math.Nextafter(s[k], 2)
	return min(max(t, 1e-6), 1-1e-9)
}

// svFold says which groups a fold holds out.
type svFold struct {
	Engines []string // synthetic sources held out
	Voices  []string // synthetic voices held out (svVoice of the group)
	Real    []string // real groups held out
}

// svVoice is a synthetic group's voice without its rate, pitch or envelope
// weight ("flite:kal:0.85" -> "flite:kal", "dub:bbaf2n:w0.4" ->
// "dub:bbaf2n"): folds that leave voices out leave them out at every
// setting.
func svVoice(group string) string {
	p := strings.SplitN(group, ":", 3)
	if len(p) < 2 {
		return group
	}
	return p[0] + ":" + p[1]
}

// svVoiceFolds spreads the synthetic voices of each engine over k folds in
// sorted order, except the dub, whose voice on GRID clip X goes with the
// fold that holds out the real clip grid:X (the dub is that speaker's
// contour).
func svVoiceFolds(items []SVItem, real [][]string) [][]string {
	k := len(real)
	byEngine := map[string][]string{}
	seen := map[string]bool{}
	for _, it := range items {
		if v := svVoice(it.Group); it.Synthetic && !seen[v] {
			seen[v] = true
			byEngine[it.Source] = append(byEngine[it.Source], v)
		}
	}
	folds := make([][]string, k)
	for _, e := range slices.Sorted(maps.Keys(byEngine)) {
		vs := byEngine[e]
		sort.Strings(vs)
		for i, v := range vs {
			f := i % k
			if e == srcDub {
				for j := range real {
					if slices.Contains(real[j], "grid:"+strings.TrimPrefix(v, srcDub+":")) {
						f = j
					}
				}
			}
			folds[f] = append(folds[f], v)
		}
	}
	return folds
}

// svRealFolds splits the real groups into k folds, within each source by
// sorted group name (so the FSDD speakers, the GRID speakers and the
// action-clip speakers are each spread over the folds).
func svRealFolds(items []SVItem, k int) [][]string {
	bySrc := map[string][]string{}
	seen := map[string]bool{}
	for _, it := range items {
		if !it.Synthetic && !seen[it.Group] {
			seen[it.Group] = true
			bySrc[it.Source] = append(bySrc[it.Source], it.Group)
		}
	}
	folds := make([][]string, k)
	srcs := make([]string, 0, len(bySrc))
	for s := range bySrc {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		g := bySrc[s]
		sort.Strings(g)
		for i, name := range g {
			folds[i%k] = append(folds[i%k], name)
		}
	}
	return folds
}

// svEngines lists the synthetic sources present, sorted.
func svEngines(items []SVItem) []string {
	var e []string
	for _, it := range items {
		if it.Synthetic && !slices.Contains(e, it.Source) {
			e = append(e, it.Source)
		}
	}
	sort.Strings(e)
	return e
}

func (f svFold) holds(it SVItem) bool {
	if it.Synthetic {
		return slices.Contains(f.Engines, it.Source) || slices.Contains(f.Voices, svVoice(it.Group))
	}
	return slices.Contains(f.Real, it.Group)
}

func svSplit(items []SVItem, f svFold) (train, test []SVItem) {
	for _, it := range items {
		if f.holds(it) {
			test = append(test, it)
		} else {
			train = append(train, it)
		}
	}
	return train, test
}

// svInnerFolds are the folds that choose a threshold inside a training
// set: each holds out one of its engines (in turn) and a share of its real
// groups, every real group exactly once.
func svInnerFolds(items []SVItem) []svFold {
	eng := svEngines(items)
	k := max(len(eng), 3)
	real := svRealFolds(items, k)
	folds := make([]svFold, k)
	for i := range folds {
		folds[i] = svFold{Engines: []string{eng[i%len(eng)]}, Real: real[i]}
	}
	return folds
}

// SVTrainWithThreshold fits a model on items and sets its threshold from
// out-of-fold scores of the same items (inner folds leaving engines and
// real speakers out): the threshold never sees the data a model is
// evaluated on. It returns the out-of-fold real scores too.
func SVTrainWithThreshold(items []SVItem, c SVFitConfig, frr float64) (*synthvoice.Model, []float64) {
	var oofReal []float64
	for _, f := range svInnerFolds(items) {
		tr, te := svSplit(items, f)
		m := SVFit(tr, c)
		for _, it := range te {
			if !it.Synthetic {
				oofReal = append(oofReal, m.Prob(it.X))
			}
		}
	}
	m := SVFit(items, c)
	m.Threshold = svThreshold(oofReal, frr)
	return m, oofReal
}
