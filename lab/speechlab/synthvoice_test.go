package speechlab

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/trustid/trustid/liveness/synthvoice"
)

func TestSVThreshold(t *testing.T) {
	real := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95}
	tests := []struct {
		name string
		frr  float64
		want int // real scores at or above the threshold
	}{
		{"none", 0, 0},
		{"under one in ten", 0.05, 0},
		{"one in ten", 0.1, 1},
		{"three in ten", 0.3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := svThreshold(real, tc.frr)
			n := 0
			for _, s := range real {
				if s >= th {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("threshold %v rejects %d real, want %d", th, n, tc.want)
			}
		})
	}
}

func svCorpusFixture() []SVItem {
	d := len(synthvoice.FeatureNames())
	var items []SVItem
	add := func(src, group string, synth bool, shift float64, n int) {
		for i := range n {
			x := make([]float64, d)
			for j := range x {
				x[j] = math.Sin(float64(i*7+j)) * 0.5
			}
			x[0] += shift
			x[d-1] -= shift
			items = append(items, SVItem{Source: src, Group: group, Synthetic: synth, Aug: "clean", X: x})
		}
	}
	for _, s := range []string{"fsdd:a", "fsdd:b", "fsdd:c", "fsdd:d"} {
		add(srcFSDD, s, false, -1, 10)
	}
	for _, g := range []string{"grid:g1", "grid:g2"} {
		add(srcGRID, g, false, -1, 5)
	}
	for _, v := range []string{"flite:kal:1.0", "flite:kal:0.85", "flite:slt:1.0"} {
		add(srcFlite, v, true, 1, 6)
	}
	for _, v := range []string{"espeak-ng:en-us:s150:p50", "espeak-ng:en-gb:s150:p50"} {
		add(srcEspeak, v, true, 1, 6)
	}
	add(srcDub, "dub:g1:w0.4", true, 1, 4)
	add(srcDub, "dub:g2:w0.7", true, 1, 4)
	return items
}

func TestSVFitSeparates(t *testing.T) {
	items := svCorpusFixture()
	for _, hidden := range []int{0, 4} {
		m := SVFit(items, SVFitConfig{Hidden: hidden, L2: 0.01, Iters: 300, Seed: 1})
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		var pos, neg []float64
		for _, it := range items {
			if it.Synthetic {
				pos = append(pos, m.Prob(it.X))
			} else {
				neg = append(neg, m.Prob(it.X))
			}
		}
		if auc := svAUC(pos, neg); auc < 0.99 {
			t.Errorf("hidden %d: AUC %v on a separable set", hidden, auc)
		}
	}
}

func TestSVFoldsKeepGroupsWhole(t *testing.T) {
	items := svCorpusFixture()
	real := svRealFolds(items, 4)
	var all []string
	for _, f := range real {
		all = append(all, f...)
	}
	slices.Sort(all)
	if want := []string{"fsdd:a", "fsdd:b", "fsdd:c", "fsdd:d", "grid:g1", "grid:g2"}; !slices.Equal(all, want) {
		t.Fatalf("real folds %v: every real group exactly once, want %v", real, want)
	}
	voices := svVoiceFolds(items, real)
	for i, f := range voices {
		for _, v := range f {
			if g, ok := strings.CutPrefix(v, "dub:"); ok && !slices.Contains(real[i], "grid:"+g) {
				t.Errorf("dub voice %s in fold %d, but grid:%s is held out in another fold", v, i, g)
			}
		}
	}
	// flite:kal at two rates is one voice: held out together.
	for _, f := range voices {
		tr, te := svSplit(items, svFold{Voices: f})
		for _, a := range te {
			for _, b := range tr {
				if a.Synthetic && b.Synthetic && svVoice(a.Group) == svVoice(b.Group) {
					t.Fatalf("voice %s on both sides of a fold", svVoice(a.Group))
				}
			}
		}
	}
	if svVoice("dub:bbaf2n:w0.4") != "dub:bbaf2n" || svVoice("flite:kal:0.85") != "flite:kal" {
		t.Error("svVoice")
	}
	m, oof := SVTrainWithThreshold(items, SVFitConfig{L2: 0.01, Iters: 200, Seed: 1}, 0.01)
	if len(oof) != 50 {
		t.Errorf("%d out-of-fold real scores, want every real recording once (50)", len(oof))
	}
	if m.Threshold <= 0 || m.Threshold >= 1 {
		t.Errorf("threshold %v", m.Threshold)
	}
}

func TestSVWithout(t *testing.T) {
	items := []SVItem{
		{Source: srcGRID, Group: "grid:aaa"},
		{Source: srcGRID, Group: "grid:bbb"},
		{Source: srcFSDD, Group: "fsdd:aaa"},
		{Source: srcDub, Group: "dub:aaa:w0.4", Synthetic: true, Refiltered: true, Contour: "aaa"},
		{Source: srcDub, Group: "dub:bbb:w0.4", Synthetic: true, Refiltered: true, Contour: "bbb"},
		{Source: srcEspeak, Group: "espeak-ng:en", Synthetic: true, Refiltered: true, Contour: "aaa"},
		{Source: srcEspeak, Group: "espeak-ng:en", Synthetic: true},
		{Source: srcFlite, Group: "flite:kal", Synthetic: true},
	}
	groups := func(items []SVItem) string {
		var g []string
		for _, it := range items {
			g = append(g, it.Source+"/"+it.Group+"/"+it.Contour)
		}
		return strings.Join(g, " ")
	}
	if got, want := groups(SVWithout(items, []string{"aaa"}, nil)),
		"grid/grid:bbb/ fsdd/fsdd:aaa/ dub/dub:bbb:w0.4/bbb espeak-ng/espeak-ng:en/ flite/flite:kal/"; got != want {
		t.Errorf("speaker out:\n got %s\nwant %s", got, want)
	}
	if got, want := groups(SVWithout(items, nil, SVDubEngines)),
		"grid/grid:aaa/ grid/grid:bbb/ fsdd/fsdd:aaa/ espeak-ng/espeak-ng:en/aaa espeak-ng/espeak-ng:en/"; got != want {
		t.Errorf("engines out:\n got %s\nwant %s", got, want)
	}
	if len(SVWithout(items, nil, nil)) != len(items) {
		t.Error("nothing held out must keep everything")
	}
}
