package speech

import "math"

// Path is one alignment of a digit string to frames.
type Path struct {
	LogLik float64  // sum over frames of the log posterior of the state's class
	Digits []int    // one per slot
	Spans  [][2]int // per slot, frames [start, end)
}

// SequenceScore is the outcome of aligning frame posteriors to digit strings
// of a fixed length.
type SequenceScore struct {
	Expected Path // best alignment of the expected digits
	Other    Path // best alignment of any string that differs in >= 1 digit
	Far      Path // best alignment of any string that differs in >= 2 digits
}

// Best returns the better of Expected and Other: the decoded string.
func (s SequenceScore) Best() Path {
	if s.Other.LogLik > s.Expected.LogLik {
		return s.Other
	}
	return s.Expected
}

// Margin is Expected.LogLik - Other.LogLik.
// It is -Inf when the expected string cannot be aligned at all (too few
// frames) and +Inf when nothing else can.
func (s SequenceScore) Margin() float64 { return s.marginTo(s.Other) }

// FarMargin is Expected.LogLik - Far.LogLik: how much the expected string
// beats every string at least two digits away from it. A recording of the
// expected digits with one digit misheard still has a high FarMargin; a
// recording of unrelated digits does not. Infinite as Margin is.
func (s SequenceScore) FarMargin() float64 { return s.marginTo(s.Far) }

func (s SequenceScore) marginTo(other Path) float64 {
	switch {
	case math.IsInf(s.Expected.LogLik, -1):
		return math.Inf(-1)
	case math.IsInf(other.LogLik, -1):
		return math.Inf(1)
	}
	return s.Expected.LogLik - other.LogLik
}

// ScoreSequence aligns frame log posteriors (classes 0-9 digits, Other) to
// strings of len(expected) digits with a left-to-right model: optional
// Other frames, digit 1 (at least minFrames frames), optional Other, digit
// 2, ..., optional Other. A digit may follow the previous one directly, so
// run-together digits need no pause. One Viterbi pass over states that carry
// the number of digits that differ from expected so far (0, 1, or 2 meaning
// "2 or more") yields the best alignment of the expected string (count 0 at
// the end), of the best competing string (count 1 or 2) and of the best
// string at least two digits away (count 2), exactly, without enumerating
// strings.
func ScoreSequence(logp [][NumClasses]float64, expected []int, minFrames int) SequenceScore {
	return ScoreSequenceDur(logp, expected, minFrames, minFrames, 0)
}

// ScoreSequenceDur is ScoreSequence with a duration model: a digit lasting
// more than maxFrames pays overrun nats per extra frame. Without it, when
// the posteriors show no "other" between two equal digits ("6 8 3 3" as one
// long run of 3), splitting any run costs nothing and "6 8 8 3" ties with
// the truth; the penalty makes the alignment split the run that is too long
// for one digit.
func ScoreSequenceDur(logp [][NumClasses]float64, expected []int, minFrames, maxFrames int, overrun float64) SequenceScore {
	n := len(expected)
	T := len(logp)
	m := max(minFrames, 1)
	M := max(maxFrames, m) // duration chain length; exits from j >= m
	// State layout: silence sil(k, f) for k = 0..n, then digit states
	// dig(k, d, j, f) for slot k = 1..n, digit d, duration step j = 1..M.
	const nf = 3 // difference counts 0, 1, >= 2
	nSil := (n + 1) * nf
	sil := func(k, f int) int { return k*nf + f }
	dig := func(k, d, j, f int) int { return nSil + (((k-1)*10+d)*M+(j-1))*nf + f }
	S := nSil + n*10*M*nf
	negInf := math.Inf(-1)
	cur := make([]float64, S)
	nxt := make([]float64, S)
	back := make([]int32, T*S)
	for i := range cur {
		cur[i] = negInf
	}
	if T == 0 || n == 0 {
		return SequenceScore{Expected: Path{LogLik: negInf}, Other: Path{LogLik: negInf}, Far: Path{LogLik: negInf}}
	}
	flagOf := func(k, d, f int) int {
		if d != expected[k-1] {
			return min(f+1, nf-1)
		}
		return f
	}
	// t = 0
	cur[sil(0, 0)] = logp[0][Other]
	for d := range 10 {
		cur[dig(1, d, 1, flagOf(1, d, 0))] = logp[0][d]
	}
	for i := range S {
		back[i] = -1
	}
	for t := 1; t < T; t++ {
		for i := range nxt {
			nxt[i] = negInf
		}
		bp := back[t*S : (t+1)*S]
		for i := range bp {
			bp[i] = -1
		}
		relax := func(to, from int) {
			if v := cur[from]; v > nxt[to] {
				nxt[to] = v
				bp[to] = int32(from)
			}
		}
		for k := 0; k <= n; k++ {
			for f := range nf {
				to := sil(k, f)
				relax(to, to)
				if k >= 1 {
					for d := range 10 {
						for j := m; j <= M; j++ {
							relax(to, dig(k, d, j, f))
						}
					}
				}
			}
		}
		for k := 1; k <= n; k++ {
			for d := range 10 {
				for f := range nf {
					// Entering slot k: from silence k-1 or the end of any
					// digit of slot k-1.
					to := dig(k, d, 1, flagOf(k, d, f))
					relax(to, sil(k-1, f))
					if k >= 2 {
						for d2 := range 10 {
							for j := m; j <= M; j++ {
								relax(to, dig(k-1, d2, j, f))
							}
						}
					}
					for j := 2; j <= M; j++ {
						relax(dig(k, d, j, f), dig(k, d, j-1, f))
					}
					last := dig(k, d, M, f)
					if v := cur[last] - overrun; v > nxt[last] {
						nxt[last] = v
						bp[last] = int32(last)
					}
				}
			}
		}
		for k := 0; k <= n; k++ {
			for f := range nf {
				if i := sil(k, f); nxt[i] > negInf {
					nxt[i] += logp[t][Other]
				}
			}
		}
		for k := 1; k <= n; k++ {
			for d := range 10 {
				for j := 1; j <= M; j++ {
					for f := range nf {
						if i := dig(k, d, j, f); nxt[i] > negInf {
							nxt[i] += logp[t][d]
						}
					}
				}
			}
		}
		cur, nxt = nxt, cur
	}
	// decode turns a state index back into (is digit, slot, digit).
	decode := func(s int) (bool, int, int) {
		if s < nSil {
			return false, s / nf, 0
		}
		r := (s - nSil) / nf
		r /= M
		return true, r/10 + 1, r % 10
	}
	trace := func(f int) Path {
		best, bi := negInf, -1
		for _, s := range []int{sil(n, f)} {
			if cur[s] > best {
				best, bi = cur[s], s
			}
		}
		for d := range 10 {
			for j := m; j <= M; j++ {
				if s := dig(n, d, j, f); cur[s] > best {
					best, bi = cur[s], s
				}
			}
		}
		p := Path{LogLik: best, Digits: make([]int, n), Spans: make([][2]int, n)}
		if bi < 0 {
			return p
		}
		for k := range p.Spans {
			p.Spans[k] = [2]int{-1, -1}
		}
		s := bi
		for t := T - 1; t >= 0; t-- {
			if isDig, k, d := decode(s); isDig {
				p.Digits[k-1] = d
				if p.Spans[k-1][1] < 0 {
					p.Spans[k-1][1] = t + 1
				}
				p.Spans[k-1][0] = t
			}
			if t > 0 {
				s = int(back[t*S+s])
			}
		}
		return p
	}
	out := SequenceScore{Expected: trace(0), Other: trace(1), Far: trace(2)}
	if out.Far.LogLik > out.Other.LogLik {
		out.Other = out.Far
	}
	return out
}
