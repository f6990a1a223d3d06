package livenesseval

import (
	"math"
	"sort"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/viseme"
)

// Slot sync (an experiment of #17, reported by eval-liveness -manifest, not
// part of the decision; liveness/RESULTS.md): in each digit slot, does the mouth open and close with this
// slot's sound, or with sound elsewhere in the clip? The energy lip sync
// (liveness/lipsync) and the silent-mouth share judge the clip as a whole,
// and a dub that swaps one word's frames (or one word's audio) for
// another's keeps the sentence's rhythm: every word is one or two
// syllables, so the whole-clip measures barely move. Inside the slot the
// swap shows: the slot's mouth track follows the audio envelope of the word
// it was filmed with, which now sits somewhere else in the clip.
//
// For each slot (widened by syncPad), SlotSync correlates the inner-lip
// opening with the audio's 40 ms log energy sampled at the frame times
// shifted by an offset, for every offset within syncReach. The slot's
// score is the best correlation at offsets within syncNear (the lips lead
// or trail the sound by a frame or two) minus the best at offsets farther
// than syncFar: positive when the mouth agrees with its own sound more than
// with any other stretch of the clip.
const (
	syncPad       = 80 * time.Millisecond
	syncNear      = 80 * time.Millisecond
	syncFar       = 240 * time.Millisecond
	syncReach     = 1200 * time.Millisecond
	syncMinFrames = 6
)

// SlotSyncResult is SlotSync's outcome.
type SlotSyncResult struct {
	// Score is the least slot score (NaN when no slot was scored) and
	// Slots the number of slots scored.
	Score float64
	Slots int
	// Own and Elsewhere are the two correlations of the slot with the
	// least score; Offset is where its best correlation over all offsets
	// lies (positive: the matching sound comes later than the mouth).
	Own, Elsewhere float64
	Offset         time.Duration
}

// SlotSync scores the digit slots of in (see the comment above). Frames
// without a mouth measure are left out of each correlation.
func SlotSync(in viseme.Input) SlotSyncResult {
	res := SlotSyncResult{Score: math.NaN()}
	n := min(len(in.Times), len(in.Shapes))
	if n < 2 || in.Rate <= 0 || len(in.Audio) == 0 {
		return res
	}
	var dts []time.Duration
	for i := 1; i < n; i++ {
		dts = append(dts, in.Times[i]-in.Times[i-1])
	}
	sort.Slice(dts, func(a, b int) bool { return dts[a] < dts[b] })
	step := dts[len(dts)/2]
	if step <= 0 {
		return res
	}
	audioEnd := time.Duration(float64(len(in.Audio)) / float64(in.Rate) * float64(time.Second))
	reach := int(syncReach / step)
	for k, sl := range in.Slots {
		if k >= len(in.Digits) {
			break
		}
		var idx []int
		for i := range n {
			t := in.Times[i]
			if s := in.Shapes[i]; s.OK && !math.IsNaN(s.Opening) && t >= sl.Start-syncPad && t <= sl.End+syncPad {
				idx = append(idx, i)
			}
		}
		if len(idx) < syncMinFrames {
			continue
		}
		open := make([]float64, len(idx))
		for j, i := range idx {
			open[j] = in.Shapes[i].Opening
		}
		if _, sd := lipsync.MeanStd(open); sd == 0 {
			continue // a still mouth says nothing about sync
		}
		env := make([]float64, len(idx))
		own, other := math.Inf(-1), math.Inf(-1)
		best, bestOff := math.Inf(-1), time.Duration(0)
		for o := -reach; o <= reach; o++ {
			off := time.Duration(o) * step
			ok := true
			for j, i := range idx {
				t := in.Times[i] + off
				if t < 0 || t > audioEnd {
					ok = false
					break
				}
				env[j] = viseme.LogEnergy(in.Audio, in.Rate, t)
			}
			if !ok {
				continue
			}
			r := lipsync.Pearson(open, env)
			if r > best {
				best, bestOff = r, off
			}
			switch a := off.Abs(); {
			case a <= syncNear:
				own = max(own, r)
			case a > syncFar:
				other = max(other, r)
			}
		}
		if math.IsInf(own, -1) || math.IsInf(other, -1) {
			continue
		}
		res.Slots++
		if s := own - other; math.IsNaN(res.Score) || s < res.Score {
			res.Score, res.Own, res.Elsewhere, res.Offset = s, own, other, bestOff
		}
	}
	return res
}

// mfAUC is the probability that a genuine clip's slot sync exceeds an
// attack clip's (ties count half), over all clips of the attack type and
// over those the decision accepted, with the counts behind each.
type mfAUC struct {
	All           float64 `json:"all"`
	Attacks       int     `json:"attacks"`
	Accepted      float64 `json:"accepted"`
	AcceptedCount int     `json:"accepted_count"`
	Genuine       int     `json:"genuine"`
}

// slotSyncAUC is mfAUC per attack type (clips with a scored slot only;
// NaN-free: an empty side gives 0 counts and a rate of 0).
func slotSyncAUC(clips []mfClip) map[string]mfAUC {
	var gen []float64
	for _, c := range clips {
		if c.Label == "genuine" && c.SyncSlots > 0 {
			gen = append(gen, c.SlotSync)
		}
	}
	auc := func(att []float64) float64 {
		if len(gen) == 0 || len(att) == 0 {
			return 0
		}
		var s float64
		for _, g := range gen {
			for _, a := range att {
				switch {
				case g > a:
					s++
				case g == a:
					s += 0.5
				}
			}
		}
		return lvRound(s / float64(len(gen)*len(att)))
	}
	all, acc := map[string][]float64{}, map[string][]float64{}
	for _, c := range clips {
		if c.Label == "genuine" || c.SyncSlots == 0 {
			continue
		}
		all[c.Label] = append(all[c.Label], c.SlotSync)
		if c.Pass {
			acc[c.Label] = append(acc[c.Label], c.SlotSync)
		}
	}
	out := map[string]mfAUC{}
	for l, v := range all {
		out[l] = mfAUC{All: auc(v), Attacks: len(v), Accepted: auc(acc[l]), AcceptedCount: len(acc[l]), Genuine: len(gen)}
	}
	return out
}
