package viseme

// Sparse measuring (#21). The face mesh on every frame was the costliest
// stage of a decision. Between two frames a few tens of milliseconds apart
// the mouth moves smoothly except where the lips shut, so a tracker may
// measure every few frames, ask Refine which frames in between the checks
// need measured (where a closure may hide, or the face was lost), measure
// those, and fill the rest with Interpolate.

// RefineLevel: a gap between two measured frames is measured in full when
// its ends' openings lie on either side of this fraction of the measured
// openings' 90th percentile: lips closing or opening cross it near a
// closure (a frame is closed under ClosedFraction, 0.15, of the voiced
// frames' 90th percentile). Chosen on the ten GRID clips, every frame
// measured against every third (liveness/RESULTS.md, "Sparse mouth
// tracking"): at 0.15 the closed-frame counts of 13 of the 100 video and
// audio pairings crossed MaxClosed, at 0.2 5 (all at the mouth's rest before
// or after the sentence, where the opening hovers at the closure
// threshold), at 0.25 and 0.35 4, with 31, 34 and 38 of 75 frames measured.
const RefineLevel = 0.2

// Refine returns, ascending, the frames the tracker did not measure
// (measured false) that lie in a gap the checks need measured: between two
// measured frames where either has no mouth measure or whose openings lie
// on either side of RefineLevel of the measured openings' 90th percentile;
// and any unmeasured frame before the first or after the last measured
// one. With no measured frame with a mouth it returns nil: there is
// nothing to place the mouth from.
func Refine(shapes []Shape, measured []bool) []int {
	n := min(len(shapes), len(measured))
	var open []float64
	for i := range n {
		if s := shapes[i]; measured[i] && s.OK {
			open = append(open, s.Opening)
		}
	}
	if len(open) == 0 {
		return nil
	}
	level := RefineLevel * quantile(open, 0.9)
	needs := func(a, b Shape) bool {
		return !a.OK || !b.OK || (a.Opening < level) != (b.Opening < level)
	}
	var out []int
	prev := -1
	for i := range n + 1 {
		if i < n && !measured[i] {
			continue
		}
		if i-prev > 1 && (prev < 0 || i == n || needs(shapes[prev], shapes[i])) {
			for k := prev + 1; k < i; k++ {
				out = append(out, k)
			}
		}
		prev = i
	}
	return out
}

// Interpolate fills each frame not measured (measured false) linearly, by
// frame index, between the nearest measured frames on either side: OK
// only when both are. Frames with no measured frame on one side are left
// without a measure.
func Interpolate(shapes []Shape, measured []bool) {
	n := min(len(shapes), len(measured))
	prev := -1
	for i := range n {
		if !measured[i] {
			continue
		}
		if prev >= 0 && i-prev > 1 {
			a, b := shapes[prev], shapes[i]
			for k := prev + 1; k < i; k++ {
				if !a.OK || !b.OK {
					shapes[k] = Shape{}
					continue
				}
				f := float64(k-prev) / float64(i-prev)
				shapes[k] = Shape{Opening: a.Opening + f*(b.Opening-a.Opening), Width: a.Width + f*(b.Width-a.Width), OK: true}
			}
		}
		prev = i
	}
}
