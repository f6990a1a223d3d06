package fakeclip

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// sixWords is 0.5 s of silence, six 300 ms words separated by 60 ms dips
// (the fourth word 120 ms, the shortest; the fifth louder), and 0.5 s of
// silence.
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
		a := 8000.0
		if w == 4 {
			a = 12000
		}
		add(n, a)
		if w < 5 {
			add(6, 20)
		}
	}
	add(50, 0)
	return tone(amps), amps
}

func TestGridDigitWordsAndTargets(t *testing.T) {
	pcm, _ := sixWords()
	// A recogniser that hears the digit in the loud fifth word: the
	// louder the piece on average, the surer.
	score := func(_ context.Context, w []int16, digit string) (float64, error) {
		if digit != "2" {
			return 0, errors.New("wrong digit asked")
		}
		var e float64
		word := w[Rate*35/100 : len(w)-Rate*35/100]
		for _, v := range word {
			e += float64(v) * float64(v)
		}
		return e / float64(len(word)) / 1e6, nil
	}
	slots, _, err := GridDigitWords(context.Background(), pcm, "2", score)
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != GridWords || math.Abs(slots[4].Start-1.76) > 0.05 || math.Abs(slots[4].End-2.09) > 0.05 {
		t.Fatalf("slots %v: want the digit at 1.79-2.09 s", slots)
	}
	for i := 1; i < len(slots); i++ {
		if slots[i].Start != slots[i-1].End {
			t.Errorf("slots %v not contiguous", slots)
		}
	}
	targets, rest := SpliceTargets(slots, 4)
	if !slices.Equal(targets, []int{0, 1, 2, 5}) || rest != 3 {
		t.Errorf("targets %v rest %d: want the four longest other words and the short fourth", targets, rest)
	}
	if _, _, err := GridDigitWords(context.Background(), pcm, "3", score); err == nil {
		t.Error("a scorer error was not returned")
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
