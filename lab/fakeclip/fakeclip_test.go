package fakeclip

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func testdata(t *testing.T) string {
	t.Helper()
	d := os.Getenv("TRUSTID_TESTDATA")
	if d == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TRUSTID_TESTDATA not set")
		}
		t.Skip("TRUSTID_TESTDATA not set")
	}
	return d
}

// tone is a 300 Hz tone with the given amplitude per 10 ms frame.
func tone(amps []float64) []int16 { return toneAt(amps, 300) }

// toneAt is a sine of hz whose amplitude is amps[k] in the k-th 10 ms frame.
func toneAt(amps []float64, hz float64) []int16 {
	out := make([]int16, 0, len(amps)*Rate/100)
	for f, a := range amps {
		for i := 0; i < Rate/100; i++ {
			n := f*Rate/100 + i
			out = append(out, int16(a*math.Sin(2*math.Pi*hz*float64(n)/Rate)))
		}
	}
	return out
}

func TestWordSlots(t *testing.T) {
	// 0.5 s silence, four 300 ms words separated by 60 ms dips, 0.5 s silence.
	var amps []float64
	add := func(n int, a float64) {
		for i := 0; i < n; i++ {
			amps = append(amps, a)
		}
	}
	add(50, 10)
	for w := 0; w < 4; w++ {
		add(30, 8000)
		if w < 3 {
			add(6, 300)
		}
	}
	add(50, 10)
	slots, err := WordSlots(tone(amps), Rate, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 4 {
		t.Fatalf("%d slots", len(slots))
	}
	wantCuts := []float64{0.83, 1.19, 1.55} // the middle of each dip
	for i, c := range wantCuts {
		if math.Abs(slots[i].End-c) > 0.05 || slots[i+1].Start != slots[i].End {
			t.Errorf("cut %d at %.2f, want about %.2f (%v)", i, slots[i].End, c, slots)
		}
	}
	if slots[0].Start < 0.45 || slots[3].End > 1.95 {
		t.Errorf("speech region %v", slots)
	}
	if _, err := WordSlots(tone(make([]float64, 30)), Rate, 4); err == nil {
		t.Error("WordSlots found slots in 0.3 s of silence")
	}
}

func TestMatchEnvelope(t *testing.T) {
	var fa, ra []float64
	for i := 0; i < 20; i++ {
		fa = append(fa, 4000)
		ra = append(ra, []float64{100, 8000}[i/5%2])
	}
	// A tone inside the 1-3 kHz band whose contour is transferred.
	flat, ref := toneAt(fa, 1500), toneAt(ra, 1500)
	out := MatchEnvelope(flat, ref, Rate, 1)
	got, want := bandDB(out, Rate), bandDB(ref, Rate)
	for i := range got {
		// Frame gains are interpolated between frame centres, so the
		// frames next to a change blur.
		if i == 0 || i == len(got)-1 || ra[i-1] != ra[i] || ra[i+1] != ra[i] {
			continue
		}
		if (want[i] > 60) != (got[i] > 60) {
			t.Errorf("frame %d: %.1f dB, reference %.1f dB", i, got[i], want[i])
		}
	}
	same := MatchEnvelope(flat, ref, Rate, 0)
	for i := range flat {
		if same[i] != flat[i] {
			t.Fatal("weight 0 changed the signal")
		}
	}
}

func TestWAV(t *testing.T) {
	b := WAV([]int16{1, -2, 3}, Rate)
	if len(b) != 44+6 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" || b[44] != 1 || b[46] != 0xfe {
		t.Fatalf("WAV bytes % x", b)
	}
}

func TestBuild(t *testing.T) {
	d := testdata(t)
	dir := t.TempDir()
	c, err := Build(context.Background(), Options{Grid: filepath.Join(d, "talking", "grid", "sbwe5n.mpg"), Digits: "4729", Other: "8153", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range c.Slots {
		if s.End <= s.Start || s.Start < 0 || s.End > c.Duration || (i > 0 && s.Start != c.Slots[i-1].End) {
			t.Fatalf("slots %v", c.Slots)
		}
	}
	for _, f := range []string{c.GenuineY4M, c.GenuineWAV, c.StillY4M, c.MismatchWAV, c.Photo} {
		st, err := os.Stat(f)
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	wav, _ := os.ReadFile(c.GenuineWAV)
	if got := float64(len(wav)-44) / 2 / Rate; math.Abs(got-c.Duration) > 0.01 {
		t.Errorf("genuine.wav lasts %.2f s, clip %.2f s", got, c.Duration)
	}
	if _, err := Build(context.Background(), Options{Grid: "x", Digits: "12a4", Other: "1111", Dir: dir}); err == nil {
		t.Error("Build accepted bad digits")
	}
}

func TestGridDigit(t *testing.T) {
	for in, want := range map[string]string{"bbaf2n.mpg": "2", "/x/lwbsza.mpg": "0", "swiz3n": "3"} {
		if got, err := GridDigit(in); err != nil || got != want {
			t.Errorf("GridDigit(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"abc.mpg", "bbafxn.mpg"} {
		if _, err := GridDigit(bad); err == nil {
			t.Errorf("GridDigit(%q) accepted", bad)
		}
	}
}
