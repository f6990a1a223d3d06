package fakeclip

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// sixWords is 0.5 s of silence, six 300 ms words separated by 60 ms dips
// (the fourth word 120 ms, the shortest), and 0.5 s of silence.
func sixWords() ([]int16, []float64) {
	var amps []float64
	add := func(n int, a float64) {
		for range n {
			amps = append(amps, a)
		}
	}
	add(50, 0)
	for w := range 6 {
		n := 30
		if w == 3 {
			n = 12
		}
		add(n, 8000)
		if w < 5 {
			add(6, 20)
		}
	}
	add(50, 0)
	return tone(amps), amps
}

func TestGridSlotsAndTargets(t *testing.T) {
	pcm, _ := sixWords()
	// The recogniser places the digit over the fifth word.
	slots, k, grammar, err := GridSlots(pcm, Span{Start: 1.70, End: 2.0})
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != GridWords || k != 4 || !grammar {
		t.Fatalf("slots %v digit %d grammar %v", slots, k, grammar)
	}
	targets, rest := SpliceTargets(slots, k)
	if !slices.Equal(targets, []int{0, 1, 2, 5}) || rest != 3 {
		t.Errorf("targets %v rest %d: want the four longest other words and the short fourth", targets, rest)
	}
	if _, k, grammar, _ := GridSlots(pcm, Span{Start: 0.5, End: 0.8}); k != 0 || grammar {
		t.Errorf("digit over the first word: slot %d grammar %v", k, grammar)
	}
	if _, _, _, err := GridSlots(pcm, Span{Start: 9, End: 10}); err == nil {
		t.Error("a span outside the speech was accepted")
	}
}

func TestReadY4M(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("YUV4MPEG2 W4 H2 F25:1 C420jpeg\n")
	for f := range 3 {
		b.WriteString("FRAME\n")
		b.Write(bytes.Repeat([]byte{byte(f)}, 4*2+2*2*1))
	}
	h, frames, err := readY4M(b.Bytes())
	if err != nil || len(frames) != 3 || frames[2][0] != 2 || len(frames[0]) != 12 || h != "YUV4MPEG2 W4 H2 F25:1 C420jpeg\n" {
		t.Fatalf("%q %d frames %v", h, len(frames), err)
	}
	for _, bad := range []string{"", "RIFF", "YUV4MPEG2 W4 H2 C444\nFRAME\n", "YUV4MPEG2 W4 H2\nFRAME\nabc", "YUV4MPEG2 W4 H2\n"} {
		if _, _, err := readY4M([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestSpliceMovesTheDigit cuts a real GRID clip: with the digit's audio
// moved onto the first word, the first word's slot carries the digit's
// sound and the digit's slot the first word's, and the frames are the
// recording's.
func TestSpliceMovesTheDigit(t *testing.T) {
	grid := filepath.Join(testdata(t), "talking", "grid", "bbaf2n.mpg")
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	ctx := context.Background()
	pcm, err := decodePCM(ctx, "ffmpeg", grid)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := WordSlots(pcm, Rate, GridWords)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "s.mkv")
	swap := []Move{{From: slots[4], To: slots[0]}, {From: slots[0], To: slots[4]}}
	if err := Splice(ctx, SpliceOptions{Grid: grid, Out: out, Audio: swap}); err != nil {
		t.Fatal(err)
	}
	got, err := decodePCM(ctx, "ffmpeg", out)
	if err != nil {
		t.Fatal(err)
	}
	if d := len(got) - len(pcm); d < -Rate/10 || d > Rate/10 {
		t.Fatalf("length %d, want about %d", len(got), len(pcm))
	}
	energy := func(x []int16, s Span) float64 {
		var e float64
		a, b := int(s.Start*Rate), min(len(x), int(s.End*Rate))
		for _, v := range x[a:b] {
			e += float64(v) * float64(v)
		}
		return e / float64(b-a)
	}
	// The untouched words are as recorded; the swapped ones carry the
	// other word's energy (time-fitted, so not sample for sample).
	for _, i := range []int{1, 2, 3, 5} {
		if r := energy(got, slots[i]) / energy(pcm, slots[i]); r < 0.98 || r > 1.02 {
			t.Errorf("word %d changed: energy ratio %.3f", i+1, r)
		}
	}
	for _, m := range swap {
		r := energy(got, m.To) / energy(pcm, m.From)
		if r < 0.5 || r > 2 {
			t.Errorf("slot %.2f-%.2f: energy %.3g of the moved word's", m.To.Start, m.To.End, r)
		}
	}
}
