// Package faceeval is the lab's face evaluation (`trustid-lab eval-face`
// and `calibrate-face`; the service never imports it). Its protocol part is
// free of OpenCV: the LFW pairs file format, 10-fold accuracy with the threshold chosen on the
// other nine folds, equal error rate, true-accept rate at a false-accept
// rate, and a reader for the PGM images of the ORL set.
package faceeval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Pair is one line of a pairs file, as image paths relative to the image
// root.
type Pair struct {
	A, B string
	Same bool
	// Set is the LFW set (fold) of the line, counted from 0: the standard
	// file is 10 sets, each a block of same-person lines followed by a block
	// of different-person lines, so a set starts wherever a same-person line
	// follows a different-person line. A filtered file keeps the sets.
	Set int
	// Population the pair belongs to ("" when the line names none).
	Population string
	// Paths: the line gave image paths (any folder layout), not LFW names.
	Paths bool
}

// ErrPairs reports a malformed pairs file.
var ErrPairs = errors.New("eval: bad pairs file")

// LFWPath is the path of image n of a person under the root.
func LFWPath(name string, n int) string {
	return filepath.Join(name, fmt.Sprintf("%s_%04d.jpg", name, n))
}

// ParsePairs reads the LFW pairs format: "name n1 n2" for a same-person
// pair, "name1 n1 name2 n2" for a different-person pair; an optional
// "folds size" header line is skipped. A line whose second field is not a
// number gives paths instead, in any folder layout:
//
//	PATH_A PATH_B same|diff [POPULATION]
//
// (1 and 0 also name same and diff); the optional population groups the
// pairs in eval-face's per_population table. Lines starting with # are
// comments.
func ParsePairs(r io.Reader) ([]Pair, error) {
	var out []Pair
	sc := bufio.NewScanner(r)
	line, set := 0, 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) >= 3 && len(f) <= 4 && !isNumber(f[1]) {
			p, err := pathPair(f, line)
			if err != nil {
				return nil, err
			}
			if p.Same && len(out) > 0 && !out[len(out)-1].Same {
				set++
			}
			p.Set = set
			out = append(out, p)
			continue
		}
		num := func(s string) (int, error) {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > 9999 {
				return 0, fmt.Errorf("%w: line %d: bad image number %q", ErrPairs, line, s)
			}
			return n, nil
		}
		switch len(f) {
		case 2:
			if line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%w: line %d: 2 fields", ErrPairs, line)
		case 3:
			a, err := num(f[1])
			if err != nil {
				return nil, err
			}
			b, err := num(f[2])
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && !out[len(out)-1].Same {
				set++
			}
			out = append(out, Pair{A: LFWPath(f[0], a), B: LFWPath(f[0], b), Same: true, Set: set})
		case 4:
			a, err := num(f[1])
			if err != nil {
				return nil, err
			}
			b, err := num(f[3])
			if err != nil {
				return nil, err
			}
			out = append(out, Pair{A: LFWPath(f[0], a), B: LFWPath(f[2], b), Set: set})
		default:
			return nil, fmt.Errorf("%w: line %d: %d fields", ErrPairs, line, len(f))
		}
		if strings.ContainsAny(f[0], `/\`) || (len(f) == 4 && strings.ContainsAny(f[2], `/\`)) || f[0] == ".." {
			return nil, fmt.Errorf("%w: line %d: path in a name", ErrPairs, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// pathPair parses "PATH_A PATH_B same|diff [POPULATION]".
func pathPair(f []string, line int) (Pair, error) {
	p := Pair{A: filepath.Clean(f[0]), B: filepath.Clean(f[1]), Paths: true}
	switch strings.ToLower(f[2]) {
	case "same", "1":
		p.Same = true
	case "diff", "different", "0":
	default:
		return p, fmt.Errorf("%w: line %d: third field %q is not same or diff", ErrPairs, line, f[2])
	}
	if len(f) == 4 {
		p.Population = f[3]
	}
	if p.A == p.B {
		return p, fmt.Errorf("%w: line %d: an image paired with itself", ErrPairs, line)
	}
	return p, nil
}

// Fold is the accuracy on one held-out fold.
type Fold struct {
	Threshold float64 `json:"threshold"`
	Accuracy  float64 `json:"accuracy"`
}

// KFold splits the pairs in file order into k contiguous folds of equal
// size, picks on the other k-1 folds the threshold with the best accuracy
// (score >= threshold means "same"), and tests it on the held-out fold.
func KFold(scores []float64, same []bool, k int) (mean, std float64, folds []Fold) {
	if len(scores) == 0 || k <= 0 {
		return 0, 0, nil
	}
	return KFoldBy(scores, same, ContiguousFolds(len(scores), k))
}

// ContiguousFolds assigns n items in order to k contiguous folds of equal
// size (the folds KFold uses).
func ContiguousFolds(n, k int) []int {
	fold := make([]int, n)
	for i := range k {
		for j := n * i / k; j < n*(i+1)/k; j++ {
			fold[j] = i
		}
	}
	return fold
}

// KFoldBy is KFold with the fold of each pair given (0..k-1, for example
// Pair.Set, the LFW protocol's own folds); the mean is over folds.
func KFoldBy(scores []float64, same []bool, fold []int) (mean, std float64, folds []Fold) {
	k := 0
	for _, f := range fold {
		k = max(k, f+1)
	}
	for i := range k {
		var trS, teS []float64
		var trY, teY []bool
		for j, f := range fold {
			if f == i {
				teS, teY = append(teS, scores[j]), append(teY, same[j])
			} else {
				trS, trY = append(trS, scores[j]), append(trY, same[j])
			}
		}
		if len(teS) == 0 {
			continue
		}
		thr := BestThreshold(trS, trY)
		folds = append(folds, Fold{thr, Accuracy(teS, teY, thr)})
	}
	if len(folds) == 0 {
		return 0, 0, nil
	}
	for _, f := range folds {
		mean += f.Accuracy / float64(len(folds))
	}
	for _, f := range folds {
		std += (f.Accuracy - mean) * (f.Accuracy - mean) / float64(len(folds))
	}
	return mean, math.Sqrt(std), folds
}

// Accuracy is the fraction of pairs classified right at thr.
func Accuracy(scores []float64, same []bool, thr float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	ok := 0
	for i, s := range scores {
		if (s >= thr) == same[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(scores))
}

// BestThreshold maximises accuracy over thresholds placed midway between
// consecutive distinct scores.
func BestThreshold(scores []float64, same []bool) float64 {
	type p struct {
		s    float64
		same bool
	}
	ps := make([]p, len(scores))
	pos := 0
	for i := range scores {
		ps[i] = p{scores[i], same[i]}
		if same[i] {
			pos++
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].s < ps[j].s })
	// threshold below everything: all "same"
	correct := pos
	best, bestThr := correct, ps[0].s-1e-6
	for i := 0; i < len(ps); i++ {
		// moving the threshold above ps[i] flips it to "different"
		if ps[i].same {
			correct--
		} else {
			correct++
		}
		if i+1 < len(ps) && ps[i+1].s == ps[i].s {
			continue
		}
		thr := ps[i].s + 1e-6
		if i+1 < len(ps) {
			thr = (ps[i].s + ps[i+1].s) / 2
		}
		if correct > best {
			best, bestThr = correct, thr
		}
	}
	return bestThr
}

// ThresholdAtFAR is the lowest threshold at which at most far of the
// impostor scores are accepted (score >= threshold). ok is false when there
// are too few impostors to resolve far (fewer than 1/far).
func ThresholdAtFAR(impostor []float64, far float64) (thr float64, ok bool) {
	if len(impostor) == 0 {
		return math.Inf(1), false
	}
	s := append([]float64(nil), impostor...)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	allowed := int(math.Floor(far * float64(len(s))))
	ok = float64(len(s))*far >= 1
	if allowed >= len(s) {
		return s[len(s)-1], ok
	}
	// accept at most `allowed` impostors: threshold just above s[allowed]
	return math.Nextafter(s[allowed], math.Inf(1)), ok
}

// Rate is the fraction of scores >= thr.
func Rate(scores []float64, thr float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	n := 0
	for _, s := range scores {
		if s >= thr {
			n++
		}
	}
	return float64(n) / float64(len(scores))
}

// EER is the equal error rate and its threshold: the point where the
// false-reject rate of genuine scores meets the false-accept rate of
// impostor scores (the mean of the two at the closest crossing).
func EER(genuine, impostor []float64) (eer, thr float64) {
	if len(genuine) == 0 || len(impostor) == 0 {
		return 0, 0
	}
	g := append([]float64(nil), genuine...)
	im := append([]float64(nil), impostor...)
	sort.Float64s(g)
	sort.Float64s(im)
	cand := append(append([]float64(nil), g...), im...)
	sort.Float64s(cand)
	best := math.Inf(1)
	for _, t := range cand {
		frr := float64(sort.SearchFloat64s(g, t)) / float64(len(g))           // genuine below t
		far := float64(len(im)-sort.SearchFloat64s(im, t)) / float64(len(im)) // impostors >= t
		if d := math.Abs(frr - far); d < best {
			best, eer, thr = d, (frr+far)/2, t
		}
	}
	return eer, thr
}

// ErrPGM reports an unreadable PGM image.
var ErrPGM = errors.New("eval: bad PGM")

// ReadPGM reads a binary 8-bit PGM (P5), as the ORL faces are stored.
func ReadPGM(data []byte) (w, h int, pix []byte, err error) {
	fields := make([]int, 0, 3)
	i := 0
	if len(data) < 2 || data[0] != 'P' || data[1] != '5' {
		return 0, 0, nil, fmt.Errorf("%w: not P5", ErrPGM)
	}
	i = 2
	for len(fields) < 3 {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
			i++
		}
		if i < len(data) && data[i] == '#' {
			for i < len(data) && data[i] != '\n' {
				i++
			}
			continue
		}
		j := i
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		if j == i || j-i > 6 {
			return 0, 0, nil, fmt.Errorf("%w: header", ErrPGM)
		}
		v, _ := strconv.Atoi(string(data[i:j]))
		fields = append(fields, v)
		i = j
	}
	if i >= len(data) {
		return 0, 0, nil, fmt.Errorf("%w: no pixels", ErrPGM)
	}
	i++ // single whitespace after maxval
	w, h, maxv := fields[0], fields[1], fields[2]
	if w <= 0 || h <= 0 || maxv <= 0 || maxv > 255 || w*h > 1<<26 {
		return 0, 0, nil, fmt.Errorf("%w: %dx%d max %d", ErrPGM, w, h, maxv)
	}
	if len(data)-i < w*h {
		return 0, 0, nil, fmt.Errorf("%w: truncated", ErrPGM)
	}
	return w, h, data[i : i+w*h], nil
}
