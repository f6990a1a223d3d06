package synthvoice

import (
	"fmt"
	"math"
	"slices"
)

// Model is the classifier: features standardised by Mean and Scale, then
// either a logistic regression (Hidden empty: score = sigmoid(W·z + Bias))
// or one hidden ReLU layer (score = sigmoid(W·relu(Hidden·z + HiddenBias) +
// Bias)).
type Model struct {
	// Features names the inputs in order; it must equal FeatureNames().
	Features []string  `json:"features"`
	Mean     []float64 `json:"mean"`
	Scale    []float64 `json:"scale"`
	// Hidden is [units][features]; empty for logistic regression.
	Hidden     [][]float64 `json:"hidden,omitempty"`
	HiddenBias []float64   `json:"hidden_bias,omitempty"`
	// W has one weight per feature (logistic regression) or per unit.
	W    []float64 `json:"w"`
	Bias float64   `json:"bias"`
	// Threshold is the score at and above which a recording is judged
	// synthetic, chosen by the training command on out-of-fold scores of
	// its training data only (see Meta.ThresholdRule).
	Threshold float64 `json:"threshold"`
	Meta      Meta    `json:"meta"`
}

// Meta records how a model was made.
type Meta struct {
	Command       string         `json:"command"`
	Seed          int64          `json:"seed"`
	Date          string         `json:"date,omitempty"`
	ThresholdRule string         `json:"threshold_rule"`
	Examples      map[string]int `json:"examples"` // per source group
}

// Validate checks the model's shape against this package's features.
func (m *Model) Validate() error {
	names := FeatureNames()
	if !slices.Equal(m.Features, names) {
		return fmt.Errorf("%w: features differ from this build's (%d vs %d)", ErrModel, len(m.Features), len(names))
	}
	n := len(names)
	if len(m.Mean) != n || len(m.Scale) != n {
		return fmt.Errorf("%w: standardisation has %d/%d values, want %d", ErrModel, len(m.Mean), len(m.Scale), n)
	}
	in := n
	if len(m.Hidden) > 0 {
		if len(m.HiddenBias) != len(m.Hidden) {
			return fmt.Errorf("%w: %d hidden units, %d biases", ErrModel, len(m.Hidden), len(m.HiddenBias))
		}
		for _, row := range m.Hidden {
			if len(row) != n {
				return fmt.Errorf("%w: hidden row of %d, want %d", ErrModel, len(row), n)
			}
		}
		in = len(m.Hidden)
	}
	if len(m.W) != in {
		return fmt.Errorf("%w: %d output weights, want %d", ErrModel, len(m.W), in)
	}
	for _, v := range [][]float64{m.Mean, m.Scale, m.W, m.HiddenBias, {m.Bias, m.Threshold}} {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: non-finite parameter", ErrModel)
			}
		}
	}
	for _, s := range m.Scale {
		if s <= 0 {
			return fmt.Errorf("%w: non-positive scale", ErrModel)
		}
	}
	return nil
}

// Standardise returns (x - Mean) / Scale.
func (m *Model) Standardise(x []float64) []float64 {
	z := make([]float64, len(x))
	for i, v := range x {
		z[i] = (v - m.Mean[i]) / m.Scale[i]
	}
	return z
}

// Logit is the classifier's output before the sigmoid, on features x (not
// standardised). The lab trains on exactly this arithmetic.
func (m *Model) Logit(x []float64) float64 {
	return m.LogitStd(m.Standardise(x))
}

// LogitStd is Logit on standardised features.
func (m *Model) LogitStd(z []float64) float64 {
	in := z
	if len(m.Hidden) > 0 {
		in = m.HiddenOut(z)
	}
	s := m.Bias
	for i, w := range m.W {
		s += w * in[i]
	}
	return s
}

// HiddenOut is the hidden layer's ReLU output on standardised features.
func (m *Model) HiddenOut(z []float64) []float64 {
	h := make([]float64, len(m.Hidden))
	for j, row := range m.Hidden {
		s := m.HiddenBias[j]
		for i, w := range row {
			s += w * z[i]
		}
		h[j] = max(s, 0)
	}
	return h
}

// Prob is the score: sigmoid(Logit(x)).
func (m *Model) Prob(x []float64) float64 {
	return Sigmoid(m.Logit(x))
}

// Sigmoid is the logistic function, stable for large |v|.
func Sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}
