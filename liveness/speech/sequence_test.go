package speech

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// posteriors turns a frame script ("O" = other, "0"-"9" digits, "?x" = a
// frame where digit x and other are equally likely) into log posteriors:
// the scripted class gets 0.9, the rest share 0.1.
func posteriors(script ...string) [][NumClasses]float64 {
	out := make([][NumClasses]float64, len(script))
	for t, s := range script {
		p := make([]float64, NumClasses)
		for c := range p {
			p[c] = 0.1 / (NumClasses - 1)
		}
		switch {
		case s == "O":
			p[Other] = 0.9
		case len(s) == 2 && s[0] == '?':
			for c := range p {
				p[c] = 0.02 / (NumClasses - 2)
			}
			p[s[1]-'0'] = 0.49
			p[Other] = 0.49
		default:
			p[s[0]-'0'] = 0.9
		}
		for c := range p {
			out[t][c] = math.Log(p[c])
		}
	}
	return out
}

func split(s string) []string { return strings.Fields(s) }

func TestScoreSequence(t *testing.T) {
	tests := []struct {
		name       string
		frames     string
		expected   string
		wantDigits string
		wantMatch  bool
		wantSpans  [][2]int // of the expected alignment; nil = not checked
	}{
		{"with pauses", "O O 4 4 4 O 2 2 2 O 9 9 9 O 1 1 1 O", "4291", "4291", true,
			[][2]int{{2, 5}, {6, 9}, {10, 13}, {14, 17}}},
		{"run together", "O 4 4 4 2 2 2 9 9 9 1 1 1 O", "4291", "4291", true,
			[][2]int{{1, 4}, {4, 7}, {7, 10}, {10, 13}}},
		{"run together, no silence at all", "4 4 2 2 9 9 1 1", "4291", "4291", true, nil},
		{"uncertain edges", "O ?4 4 4 ?4 2 2 ?2 O 9 9 1 1 ?1 O", "4291", "4291", true, nil},
		{"repeated digit run together", "O 3 3 3 3 3 3 7 7 7 1 1 1 O", "3371", "3371", true, nil},
		{"one digit wrong", "O 4 4 4 O 2 2 2 O 9 9 9 O 1 1 1 O", "4281", "4291", false, nil},
		{"first digit wrong", "O 4 4 4 O 2 2 2 O 9 9 9 O 1 1 1 O", "5291", "4291", false, nil},
		{"other digits entirely", "O 4 4 4 O 2 2 2 O 9 9 9 O 1 1 1 O", "7350", "4291", false, nil},
		{"order swapped", "O 4 4 4 2 2 2 9 9 9 1 1 1 O", "2491", "4291", false, nil},
		{"digit missing", "O 4 4 4 O 2 2 2 O 9 9 9 O O O", "4291", "", false, nil},
		{"silence only", "O O O O O O O O O O O O", "4291", "", false, nil},
		{"too few frames", "4 2 9", "4291", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := ParseDigits(tt.expected)
			if err != nil {
				t.Fatal(err)
			}
			s := ScoreSequence(posteriors(split(tt.frames)...), exp, 2)
			if got := s.Margin() > 0; got != tt.wantMatch {
				t.Errorf("margin = %.2f, match = %v, want %v", s.Margin(), got, tt.wantMatch)
			}
			if tt.wantDigits != "" {
				if got := digitString(s.Best().Digits); got != tt.wantDigits {
					t.Errorf("decoded %s, want %s", got, tt.wantDigits)
				}
			}
			if !tt.wantMatch && tt.wantDigits != "" && digitString(s.Other.Digits) != tt.wantDigits {
				t.Errorf("best other = %s, want %s", digitString(s.Other.Digits), tt.wantDigits)
			}
			if tt.wantMatch && slices.Equal(s.Other.Digits, exp) {
				t.Errorf("the competing string equals the expected one")
			}
			if tt.wantSpans != nil && !slices.Equal(s.Expected.Spans, tt.wantSpans) {
				t.Errorf("spans = %v, want %v", s.Expected.Spans, tt.wantSpans)
			}
		})
	}
}

// TestScoreSequenceExhaustive checks the flag trick against brute force: the
// expected path's score equals the best alignment of that one string, and
// Other equals the best over all other strings and Far the best over
// strings at least two digits away.
func TestScoreSequenceExhaustive(t *testing.T) {
	lp := posteriors(split("O 1 1 ?2 2 O 1 1 1 1 O")...)
	exp := []int{1, 2, 1}
	for _, dur := range []struct {
		max     int
		overrun float64
	}{{1, 0}, {3, 1.5}} {
		s := ScoreSequenceDur(lp, exp, 1, dur.max, dur.overrun)
		bestOther, bestFar := math.Inf(-1), math.Inf(-1)
		for a := range 10 {
			for b := range 10 {
				for c := range 10 {
					str := []int{a, b, c}
					v := ScoreSequenceDur(lp, str, 1, dur.max, dur.overrun).Expected.LogLik
					if slices.Equal(str, exp) {
						if math.Abs(v-s.Expected.LogLik) > 1e-9 {
							t.Errorf("max %d: expected loglik %.6f, brute force %.6f", dur.max, s.Expected.LogLik, v)
						}
						continue
					}
					bestOther = max(bestOther, v)
					diff := 0
					for i := range str {
						if str[i] != exp[i] {
							diff++
						}
					}
					if diff >= 2 {
						bestFar = max(bestFar, v)
					}
				}
			}
		}
		if math.Abs(bestOther-s.Other.LogLik) > 1e-9 {
			t.Errorf("max %d: other loglik %.6f, brute force %.6f", dur.max, s.Other.LogLik, bestOther)
		}
		if math.Abs(bestFar-s.Far.LogLik) > 1e-9 {
			t.Errorf("max %d: far loglik %.6f, brute force %.6f", dur.max, s.Far.LogLik, bestFar)
		}
		// The traced digits are the strings those likelihoods belong to.
		for name, p := range map[string]Path{"other": s.Other, "far": s.Far} {
			if v := ScoreSequenceDur(lp, p.Digits, 1, dur.max, dur.overrun).Expected.LogLik; math.Abs(v-p.LogLik) > 1e-9 {
				t.Errorf("max %d: %s path %v scores %.6f as expected, traced %.6f", dur.max, name, p.Digits, v, p.LogLik)
			}
		}
	}
}

// TestScoreSequenceDuration: two equal digits merged into one long run tie
// with splitting another run unless too-long digits pay.
func TestScoreSequenceDuration(t *testing.T) {
	lp := posteriors(split("O 6 6 6 6 O 8 8 8 8 O 3 3 3 3 3 3 3 3 3 3 O")...)
	tests := []struct {
		name       string
		expected   string
		maxFrames  int
		overrun    float64
		wantMargin func(float64) bool
	}{
		{"no duration model: tie", "6833", 2, 0, func(m float64) bool { return m == 0 }},
		{"duration model: the long run is split", "6833", 7, 2, func(m float64) bool { return m > 1 }},
		{"duration model: a wrong split still loses", "6883", 7, 2, func(m float64) bool { return m < -1 }},
		{"duration model: wrong digit loses", "6831", 7, 2, func(m float64) bool { return m < -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := ParseDigits(tt.expected)
			if err != nil {
				t.Fatal(err)
			}
			s := ScoreSequenceDur(lp, exp, 2, tt.maxFrames, tt.overrun)
			if !tt.wantMargin(s.Margin()) {
				t.Errorf("margin = %.3f (other %s)", s.Margin(), digitString(s.Other.Digits))
			}
		})
	}
}
