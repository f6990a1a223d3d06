package livenesseval

import (
	"math"
	"testing"
	"time"

	"github.com/trustid/trustid/liveness/lipsync"
	"github.com/trustid/trustid/liveness/media"
)

const rate = 16000

// drawFrame is a grey face with a dark mouth cavity (x 128..171) open by
// open (0..1), as liveness/lipsync's tests draw it.
func drawFrame(open float64) media.Frame {
	const w, h = 320, 240
	f := media.Frame{Width: w, Height: h, BGR: make([]byte, w*h*3)}
	half := open * 20
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 150.0
			if x >= 128 && x < 172 && float64(y) >= 200-half && float64(y) < 200+half {
				v = 30
			}
			b := byte(max(0, min(255, v)))
			o := (y*w + x) * 3
			f.BGR[o], f.BGR[o+1], f.BGR[o+2] = b, b, b
		}
	}
	return f
}

func TestGridSeries(t *testing.T) {
	open := drawFrame(1)
	// the cavity is x 128..171, y 180..219; in 4 x 4 cells of 20 x 25
	// pixels over 110..189 x 150..249, a corner cell is face grey and an
	// inner cell mostly cavity
	rois := []lipsync.Rect{{X0: 110, Y0: 150, X1: 190, Y1: 250}, {X0: -10, Y0: -10, X1: 0, Y1: 0}}
	g := gridSeries([]media.Frame{open, open}, rois, 4, 4)
	if len(g) != 2 || len(g[0]) != 16 {
		t.Fatalf("shape %d x %d", len(g), len(g[0]))
	}
	if c, m := g[0][0], g[0][5]; math.Abs(c-150) > 1 || m > 60 {
		t.Errorf("corner %.1f (want 150), middle %.1f (want dark)", c, m)
	}
	if !math.IsNaN(g[1][0]) {
		t.Errorf("empty region gave %v, want NaN", g[1][0])
	}
}

func TestBandEnergies(t *testing.T) {
	// a 2 kHz tone: the 1-3 kHz band holds its energy, 100-500 Hz does not
	x := make([]int16, rate)
	for i := range x {
		x[i] = int16(8000 * math.Sin(2*math.Pi*2000*float64(i)/rate))
	}
	times := []time.Duration{300 * time.Millisecond, 500 * time.Millisecond}
	e := bandEnergies(x, rate, times, []time.Duration{0, 40 * time.Millisecond}, 60*time.Millisecond, []float64{100, 500, 1000, 3000})
	if len(e) != 2 || len(e[0]) != 2 || len(e[0][0]) != 3 {
		t.Fatalf("shape %d x %d x %d", len(e), len(e[0]), len(e[0][0]))
	}
	for _, row := range e[1] {
		if row[2] < row[0]+30 {
			t.Errorf("1-3 kHz %.1f dB, 100-500 Hz %.1f dB: want the tone's band 30 dB above", row[2], row[0])
		}
	}
}
