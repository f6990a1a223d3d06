package synthvoice

import (
	"math"
	"testing"
)

// pitchFeaturesRef is pitchFeatures as first written (fdea2be): every
// window's sums taken directly in float64.
func pitchFeaturesRef(x []int16) []float64 {
	n := (len(x) - pitchWin - pitchMaxLg) / pitchHop
	if n < 3 {
		return make([]float64, 7)
	}
	f := make([]float64, len(x))
	for i, v := range x {
		f[i] = float64(v)
	}
	level := make([]float64, n)
	loud := -math.MaxFloat64
	for k := range n {
		var e float64
		for _, v := range f[k*pitchHop : k*pitchHop+pitchWin] {
			e += v * v
		}
		level[k] = 10 * math.Log10(e/pitchWin+1)
		loud = max(loud, level[k])
	}
	f0 := make([]float64, n) // 0 = unpitched
	hnr := make([]float64, n)
	gated := 0
	r := make([]float64, pitchMaxLg+2)
	for k := range n {
		if level[k] < loud-gateDB {
			continue
		}
		gated++
		s := k * pitchHop
		a := f[s : s+pitchWin]
		var ea float64
		for _, v := range a {
			ea += v * v
		}
		best := -1.0
		for lag := pitchMinLg - 1; lag <= pitchMaxLg+1; lag++ {
			b := f[s+lag : s+lag+pitchWin]
			var xy, eb float64
			for i, v := range a {
				xy += v * b[i]
				eb += b[i] * b[i]
			}
			r[lag] = 0
			if ea > 0 && eb > 0 {
				r[lag] = xy / math.Sqrt(ea*eb)
			}
			if lag >= pitchMinLg && lag <= pitchMaxLg {
				best = max(best, r[lag])
			}
		}
		if best < 0.5 {
			continue
		}
		// The first local peak close to the best one: the period, not a
		// multiple of it.
		for lag := pitchMinLg; lag <= pitchMaxLg; lag++ {
			if r[lag] >= 0.85*best && r[lag] >= r[lag-1] && r[lag] >= r[lag+1] {
				den := r[lag-1] - 2*r[lag] + r[lag+1]
				off := 0.0
				if den < 0 {
					off = 0.5 * (r[lag-1] - r[lag+1]) / den
				}
				f0[k] = pitchRate / (float64(lag) + off)
				rr := min(max(r[lag], 0.01), 0.999)
				hnr[k] = 10 * math.Log10(rr/(1-rr))
				break
			}
		}
	}
	var jit, semis, accel, hn, shim []float64
	pitched := 0
	for k := range n {
		if f0[k] == 0 {
			continue
		}
		pitched++
		semis = append(semis, 12*math.Log2(f0[k]))
		hn = append(hn, hnr[k])
		if k > 0 && f0[k-1] > 0 {
			d := math.Abs(f0[k]-f0[k-1]) / ((f0[k] + f0[k-1]) / 2)
			if d < 0.2 { // larger jumps are tracking errors
				jit = append(jit, d)
				shim = append(shim, math.Abs(level[k]-level[k-1]))
			}
		}
		if k > 1 && f0[k-1] > 0 && f0[k-2] > 0 {
			a := math.Log2(f0[k]) - 2*math.Log2(f0[k-1]) + math.Log2(f0[k-2])
			if math.Abs(a) < 0.3 {
				accel = append(accel, 1200*math.Abs(a))
			}
		}
	}
	jm, _ := meanSD(jit)
	_, ss := meanSD(semis)
	am, _ := meanSD(accel)
	hm, hs := meanSD(hn)
	sm, _ := meanSD(shim)
	ratio := 0.0
	if gated > 0 {
		ratio = float64(pitched) / float64(gated)
	}
	return []float64{jm, ss, am, hm, hs, sm, ratio}
}

// pitchInputs are 8 kHz recordings for the pitch features: tones, vowels
// with jitter, noise, silence with a burst, full-scale square waves (the
// largest sums), and lengths around the frame count's steps.
func pitchInputs() map[string][]int16 {
	in := map[string][]int16{}
	var x uint32 = 11
	rnd := func() float64 {
		x = x*1664525 + 1013904223
		return float64(int32(x>>8)) / float64(1<<23)
	}
	for _, secs := range []float64{0.02, 0.05, 0.1, 1, 3, 12} {
		n := int(secs * pitchRate)
		tone := make([]int16, n)
		vowel := make([]int16, n)
		noise := make([]int16, n)
		square := make([]int16, n)
		burst := make([]int16, n)
		var ph float64
		for i := range n {
			tone[i] = int16(12000 * math.Sin(2*math.Pi*180*float64(i)/pitchRate))
			f := 120 + 30*math.Sin(2*math.Pi*3*float64(i)/pitchRate) + 2*rnd()
			ph += 2 * math.Pi * f / pitchRate
			vowel[i] = int16(8000*math.Sin(ph) + 4000*math.Sin(2*ph+1) + 2000*math.Sin(3*ph) + 300*rnd())
			noise[i] = int16(20000 * rnd())
			square[i] = 32767
			if (i/23)%2 == 0 {
				square[i] = -32768
			}
			if i > n/3 && i < n/3+800 {
				burst[i] = vowel[i]
			} else {
				burst[i] = int16(3 * rnd())
			}
		}
		for name, v := range map[string][]int16{"tone": tone, "vowel": vowel, "noise": noise, "square": square, "burst": burst} {
			in[name+" "+pitchItoa(n)] = v
		}
	}
	for _, n := range []int{373, 452, 453, 532, 533, 612, 613, 8001, 8079} {
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(9000 * math.Sin(2*math.Pi*210*float64(i)/pitchRate))
		}
		in["short tone "+pitchItoa(n)] = v
	}
	return in
}

func pitchItoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// TestPitchFeaturesMatchReference: the running-sum and block computation
// gives the direct one's features bit for bit.
func TestPitchFeaturesMatchReference(t *testing.T) {
	for name, x := range pitchInputs() {
		got, want := pitchFeatures(x), pitchFeaturesRef(x)
		if len(got) != len(want) {
			t.Fatalf("%s: %d features, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
				t.Errorf("%s: %s = %v, reference %v", name, handNames[len(handNames)-7+i], got[i], want[i])
			}
		}
	}
}

func BenchmarkPitchFeatures3s(b *testing.B) {
	x := pitchInputs()["vowel 24000"]
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			pitchFeaturesRef(x)
		}
	})
	b.Run("blocks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pitchFeatures(x)
		}
	})
}
