package load

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"strings"
)

// Report is what a load run writes: the machine and configuration, the mix
// at each concurrency, and each operation alone (its CPU cost).
type Report struct {
	Date    string `json:"date"`
	Commit  string `json:"commit"`
	Machine string `json:"machine"`
	Setup   string `json:"setup"`
	Mix     []struct {
		Name   string `json:"name"`
		Weight int    `json:"weight"`
	} `json:"mix"`
	Levels []LevelResult `json:"levels"`
	// Alone: each operation by itself, so ServerCPUPerRequest is that
	// operation's server CPU cost.
	Alone []LevelResult `json:"alone"`
}

// SetMix records the mix's weights.
func (r *Report) SetMix(ops []Op) {
	r.Mix = r.Mix[:0]
	for _, o := range ops {
		r.Mix = append(r.Mix, struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		}{o.Name, o.Weight})
	}
}

// JSON is the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// SVG draws p50 (solid) and p99 (dashed) latency against throughput for
// every operation of the mix, one point per level, on a log latency axis.
func (r *Report) SVG() string {
	const w, h, left, right, top, bottom = 760, 460, 70, 190, 40, 64
	type pt struct{ x, y float64 }
	series := map[string][2][]pt{}
	var names []string
	maxX, minY, maxY := 1.0, math.Inf(1), 1.0
	for _, l := range r.Levels {
		for _, o := range l.Ops {
			if o.OK == 0 {
				continue
			}
			if _, ok := series[o.Name]; !ok {
				names = append(names, o.Name)
			}
			s := series[o.Name]
			s[0] = append(s[0], pt{o.Throughput, max(o.P50, 0.1)})
			s[1] = append(s[1], pt{o.Throughput, max(o.P99, 0.1)})
			series[o.Name] = s
			maxX = max(maxX, o.Throughput)
			minY = min(minY, max(o.P50, 0.1))
			maxY = max(maxY, o.P99)
		}
	}
	if math.IsInf(minY, 1) {
		minY = 0.1
	}
	lo, hi := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if hi <= lo {
		hi = lo + 1
	}
	maxX = niceCeil(maxX * 1.05)
	px := func(x float64) float64 { return left + x/maxX*(w-left-right) }
	py := func(y float64) float64 { return top + (hi-math.Log10(y))/(hi-lo)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString("Latency against throughput per operation (p50 solid, p99 dashed; one point per concurrency level)"))
	for e := lo; e <= hi; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s ms</text>`+"\n",
			left, y, w-right, y, left-6, y+4, fmtNum(math.Pow(10, e)))
	}
	for i := 0; i <= 5; i++ {
		x := maxX * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			px(x), top, px(x), h-bottom, px(x), h-bottom+16, fmtNum(x))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">throughput of the operation (requests/s)</text>`+"\n", (left+w-right)/2, h-bottom+36)
	for i, n := range names {
		c := colors[i%len(colors)]
		for k, dash := range []string{"", ` stroke-dasharray="6 4"`} {
			var d strings.Builder
			for j, p := range series[n][k] {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(p.x), py(p.y))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(p.x), py(p.y), c)
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(d.String()), c, dash)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+14, top+10+i*20, c, w-right+34, top+15+i*20, html.EscapeString(n))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10">%s</text>`+"\n", 10, h-6, html.EscapeString(r.Date+" "+r.Commit+"; "+r.Machine))
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
	return fmt.Sprintf("%g", v)
}
