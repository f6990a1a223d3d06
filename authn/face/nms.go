package face

import "sort"

type candidate struct {
	box   Box
	raw   Box // unclamped (Detection.Raw)
	score float32
}

func iou(a, b Box) float32 {
	x1, y1 := max(a.X1, b.X1), max(a.Y1, b.Y1)
	x2, y2 := min(a.X2, b.X2), min(a.Y2, b.Y2)
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	u := a.Area() + b.Area() - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// nms is greedy non-maximum suppression: visit candidates best score first
// and drop any whose IoU with an already kept box exceeds thr.
func nms(c []candidate, thr float32) []candidate {
	sort.SliceStable(c, func(i, j int) bool { return c[i].score > c[j].score })
	keep := c[:0:0]
	for _, x := range c {
		ok := true
		for _, k := range keep {
			if iou(x.box, k.box) > thr {
				ok = false
				break
			}
		}
		if ok {
			keep = append(keep, x)
		}
	}
	return keep
}
