package challenge

import (
	"crypto/hmac"
	"fmt"
	"io"

	"github.com/trustid/trustid/liveness/action"
)

// GenerateActions draws a sequence of action.MinLength to action.MaxLength
// distinct actions from r, uniformly over the sequences of each length and
// with both lengths equally likely.
func GenerateActions(r io.Reader) (action.Sequence, error) {
	n, err := uniform(r, action.MaxLength-action.MinLength+1)
	if err != nil {
		return nil, err
	}
	pool := append([]action.Action(nil), action.All...)
	seq := make(action.Sequence, 0, action.MinLength+n)
	for len(seq) < action.MinLength+n {
		k, err := uniform(r, len(pool))
		if err != nil {
			return nil, err
		}
		seq = append(seq, pool[k])
		pool = append(pool[:k], pool[k+1:]...)
	}
	return seq, nil
}

// uniform draws an integer in [0, n) from r by rejection sampling (n <= 256).
func uniform(r io.Reader, n int) (int, error) {
	limit := 256 - 256%n
	var b [1]byte
	for tries := 0; tries < 1000; tries++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("challenge: random actions: %w", err)
		}
		if int(b[0]) < limit {
			return int(b[0]) % n, nil
		}
	}
	return 0, fmt.Errorf("challenge: random source kept failing rejection sampling")
}

// AllSequences lists every admissible action sequence (80 with 5 actions).
func AllSequences() []action.Sequence {
	var out []action.Sequence
	var rec func(prefix action.Sequence)
	rec = func(prefix action.Sequence) {
		if len(prefix) >= action.MinLength {
			out = append(out, append(action.Sequence(nil), prefix...))
		}
		if len(prefix) == action.MaxLength {
			return
		}
		for _, a := range action.All {
			used := false
			for _, p := range prefix {
				used = used || p == a
			}
			if !used {
				rec(append(prefix, a))
			}
		}
	}
	rec(nil)
	return out
}

// recoverActions finds the sequence whose keyed hash is code, testing every
// admissible sequence.
func (m *Manager) recoverActions(id string, code []byte) (action.Sequence, bool) {
	var found action.Sequence
	for _, s := range AllSequences() {
		if hmac.Equal(m.mac("code", id, s.String()), code) {
			found = s
		}
	}
	return found, found != nil
}
