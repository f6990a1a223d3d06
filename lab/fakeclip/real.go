package fakeclip

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// GridDigit is the digit a GRID clip's speaker says: the fifth letter of
// its file name ("bbaf2n.mpg": "bin blue at f two now"; z is zero).
func GridDigit(path string) (string, error) {
	b := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if len(b) < 5 {
		return "", fmt.Errorf("fakeclip: %q is not a GRID clip name", path)
	}
	switch c := b[4]; {
	case c == 'z':
		return "0", nil
	case c >= '0' && c <= '9':
		return string(c), nil
	}
	return "", fmt.Errorf("fakeclip: %q: the fifth letter is not a digit", path)
}

// RealOptions says what BuildReal builds.
type RealOptions struct {
	// Grid is the GRID clip whose real video and voice are used; Other is
	// another GRID clip whose voice makes the swapped-audio refusal.
	Grid, Other string
	Dir         string
	// Pad is the silence kept before and after the speech (seconds);
	// default 0.4. Tail is as in Options.
	Pad, Tail float64
	FFmpeg    string
}

// BuildReal writes the honest genuine clips of the test-only challenge: the
// GRID speaker's own video and voice (no dub), cut around the speech, for
// a challenge of the one digit the speaker says (Clips.Digits); the still
// photo with the same voice; and, as the mismatch, the same video with
// another GRID speaker's voice (swapped audio).
func BuildReal(ctx context.Context, o RealOptions) (*Clips, error) {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Pad == 0 {
		o.Pad = 0.4
	}
	if o.Tail == 0 {
		o.Tail = 1.5
	}
	if _, err := exec.LookPath(o.FFmpeg); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTool, o.FFmpeg)
	}
	digit, err := GridDigit(o.Grid)
	if err != nil {
		return nil, err
	}
	if o.Other == "" || o.Other == o.Grid {
		return nil, errors.New("fakeclip: BuildReal needs another GRID clip for the swapped voice")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	grid, err := decodePCM(ctx, o.FFmpeg, o.Grid)
	if err != nil {
		return nil, err
	}
	other, err := decodePCM(ctx, o.FFmpeg, o.Other)
	if err != nil {
		return nil, err
	}
	sp, err := WordSlots(grid, Rate, 1)
	if err != nil {
		return nil, err
	}
	total := float64(len(grid)) / Rate
	start := math.Max(0, sp[0].Start-o.Pad)
	end := math.Min(total, sp[0].End+o.Pad)
	dur := end - start + o.Tail
	c := &Clips{Digits: digit, Slots: []Span{{sp[0].Start - start, sp[0].End - start}}, Duration: dur}
	p := func(n string) string { return filepath.Join(o.Dir, n) }
	c.GenuineY4M, c.GenuineWAV = p("genuine.y4m"), p("genuine.wav")
	c.StillY4M, c.StillWAV = p("still.y4m"), p("genuine.wav")
	c.MismatchY4M, c.MismatchWAV = p("genuine.y4m"), p("mismatch.wav")
	c.Photo = p("photo.jpg")
	cut := func(pcm []int16) []int16 {
		out := make([]int16, int(math.Round(dur*Rate)))
		copy(out, pcm[min(len(pcm), int(start*Rate)):min(len(pcm), int(end*Rate))])
		return out
	}
	if err := os.WriteFile(c.GenuineWAV, WAV(cut(grid), Rate), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.MismatchWAV, WAV(cut(other), Rate), 0o644); err != nil {
		return nil, err
	}
	ss, to := strconv.FormatFloat(start, 'f', 3, 64), strconv.FormatFloat(end, 'f', 3, 64)
	vf := fmt.Sprintf("trim=start=%s:end=%s,setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration=%.2f,format=yuv420p", ss, to, o.Tail)
	if err := writeVideos(ctx, o.FFmpeg, o.Grid, vf, dur, c); err != nil {
		return nil, err
	}
	return c, nil
}

func decodePCM(ctx context.Context, ffmpeg, file string) ([]int16, error) {
	raw, err := run(ctx, ffmpeg, "-v", "error", "-i", file, "-vn", "-ac", "1", "-ar", strconv.Itoa(Rate), "-f", "s16le", "-")
	if err != nil {
		return nil, fmt.Errorf("fakeclip: decode %s: %w", file, err)
	}
	return pcmFrom(raw), nil
}
