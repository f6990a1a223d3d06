package fakeclip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// GridWords is the number of words of a GRID sentence ("bin blue at f two
// now": command, colour, preposition, letter, digit, adverb).
const GridWords = 6

// DigitScoreFunc scores how well a recording (mono, Rate) says digit: the
// recogniser's margin for the one-digit challenge (higher: more surely the
// digit).
type DigitScoreFunc func(ctx context.Context, pcm []int16, digit string) (float64, error)

// Move is one piece of a splice: the media of span From is time-fitted
// onto span To.
type Move struct{ From, To Span }

// SpliceOptions says what Splice writes.
type SpliceOptions struct {
	// Grid is the GRID clip; Out the video file written (Matroska, H.264
	// and PCM as the other attack clips).
	Grid, Out string
	// Audio and Video are the moves applied to the sound and to the
	// frames (either may be empty: that track stays as recorded). Outside
	// the moves' destinations a track is as recorded.
	Audio, Video []Move
	FFmpeg       string
}

// GridDigitWords segments a GRID clip's audio (pcm at Rate) into its six
// words with the digit's found by the recogniser: the digit word is the
// span between two energy valleys of the speech, 0.2-0.7 s long, that the
// recogniser, given it alone (with 0.35 s of silence on each side), scores
// highest for digit (a forced alignment of the whole sentence is less sure:
// the other words sound like digits to it, "blue" like "two"). The GRID
// grammar puts four words before the digit (split by WordSlots) and one
// after. It returns the six slots (the digit's is slot 4, zero-based) and
// the digit word's score.
func GridDigitWords(ctx context.Context, pcm []int16, digit string, score DigitScoreFunc) ([]Span, float64, error) {
	e := frameDB(pcm, Rate)
	if len(e) < 50 {
		return nil, 0, ErrNoSlots
	}
	sm := smoothDB(e)
	a, b := loudSpan(sm, 25)
	if a < 0 {
		return nil, 0, ErrNoSlots
	}
	cuts := []int{a}
	for i := a + 1; i < b; i++ {
		if sm[i] <= sm[i-1] && sm[i] < sm[i+1] {
			cuts = append(cuts, i)
		}
	}
	cuts = append(cuts, b+1)
	pad := make([]int16, Rate*35/100)
	best, at := math.Inf(-1), [2]int{-1, -1}
	for i, c0 := range cuts {
		for _, c1 := range cuts[i+1:] {
			// At least 0.8 s of speech before (four words) and 0.1 s after.
			if c1-c0 < 20 || c1-c0 > 70 || c0-a < 80 || b+1-c1 < 10 {
				continue
			}
			word := append(append(append([]int16(nil), pad...), pcm[c0*Rate/100:min(len(pcm), c1*Rate/100)]...), pad...)
			v, err := score(ctx, word, digit)
			if err != nil {
				return nil, 0, fmt.Errorf("fakeclip: score %d-%d: %w", c0, c1, err)
			}
			if v > best {
				best, at = v, [2]int{c0, c1}
			}
		}
	}
	if at[0] < 0 {
		return nil, 0, ErrNoSlots
	}
	before, err := WordSlots(pcm[:at[0]*Rate/100], Rate, 4)
	if err != nil {
		return nil, 0, err
	}
	before[3].End = float64(at[0]) / 100
	return append(before, Span{float64(at[0]) / 100, float64(at[1]) / 100}, Span{float64(at[1]) / 100, float64(b+1) / 100}), best, nil
}

// SpliceTargets are the word slots a splice moves the digit onto: the four
// longest slots other than the digit's, in time order, and the remaining
// one (the shortest other word, whose media fills the digit's own slot
// when the digit is moved away from it).
func SpliceTargets(slots []Span, digit int) (targets []int, rest int) {
	var others []int
	for i := range slots {
		if i != digit {
			others = append(others, i)
		}
	}
	sort.SliceStable(others, func(a, b int) bool {
		return slots[others[a]].End-slots[others[a]].Start > slots[others[b]].End-slots[others[b]].Start
	})
	targets = append([]int(nil), others[:len(others)-1]...)
	sort.Ints(targets)
	return targets, others[len(others)-1]
}

// Splice writes a clip made only of the GRID clip's own media: its sound
// and its frames, with pieces moved (time-fitted, never pitch-shifted:
// audio through FFmpeg's atempo, frames by nearest-frame resampling).
func Splice(ctx context.Context, o SpliceOptions) error {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if _, err := exec.LookPath(o.FFmpeg); err != nil {
		return fmt.Errorf("%w: %s", ErrTool, o.FFmpeg)
	}
	pcm, err := decodePCM(ctx, o.FFmpeg, o.Grid)
	if err != nil {
		return err
	}
	audio := append([]int16(nil), pcm...)
	for _, m := range o.Audio {
		if err := o.moveAudio(ctx, pcm, audio, m); err != nil {
			return err
		}
	}
	y, err := run(ctx, o.FFmpeg, "-v", "error", "-i", o.Grid, "-an", "-r", "25", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-")
	if err != nil {
		return fmt.Errorf("fakeclip: decode %s: %w", o.Grid, err)
	}
	header, frames, err := readY4M(y)
	if err != nil {
		return err
	}
	out := make([][]byte, len(frames))
	for i := range out {
		t := float64(i) / 25
		src := t
		for _, m := range o.Video {
			if t >= m.To.Start && t < m.To.End {
				src = m.From.Start + (t-m.To.Start)*(m.From.End-m.From.Start)/(m.To.End-m.To.Start)
			}
		}
		out[i] = frames[max(0, min(len(frames)-1, int(math.Round(src*25))))]
	}
	wav, err := os.CreateTemp("", "fakeclip-splice-*.wav")
	if err != nil {
		return err
	}
	defer os.Remove(wav.Name())
	if _, err := wav.Write(WAV(audio, Rate)); err != nil {
		wav.Close()
		return err
	}
	if err := wav.Close(); err != nil {
		return err
	}
	var in bytes.Buffer
	in.WriteString(header)
	for _, f := range out {
		in.WriteString("FRAME\n")
		in.Write(f)
	}
	cmd := exec.CommandContext(ctx, o.FFmpeg, "-v", "error", "-y", "-nostdin", "-f", "yuv4mpegpipe", "-i", "pipe:0", "-i", wav.Name(),
		"-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", o.Out)
	cmd.Stdin = &in
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fakeclip: splice encode: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// moveAudio writes src's samples of m.From, time-fitted to m.To, over
// dst's m.To.
func (o SpliceOptions) moveAudio(ctx context.Context, src, dst []int16, m Move) error {
	a, b := int(m.From.Start*Rate), min(len(src), int(m.From.End*Rate))
	c, d := int(m.To.Start*Rate), min(len(dst), int(m.To.End*Rate))
	if a >= b || c >= d {
		return fmt.Errorf("fakeclip: empty move %+v", m)
	}
	piece, err := stretch(ctx, o.FFmpeg, src[a:b], float64(d-c)/Rate)
	if err != nil {
		return err
	}
	for i := c; i < d; i++ {
		dst[i] = 0
		if k := i - c; k < len(piece) {
			dst[i] = piece[k]
		}
	}
	// A few milliseconds of fade at each edge, so the cut does not click.
	const fade = Rate / 200
	for k := 0; k < fade && c+k < d; k++ {
		g := float64(k) / fade
		dst[c+k] = clamp16(float64(dst[c+k]) * g)
		dst[d-1-k] = clamp16(float64(dst[d-1-k]) * g)
	}
	return nil
}

// stretch time-fits pcm (at Rate) to secs with FFmpeg's atempo (pitch
// kept).
func stretch(ctx context.Context, ffmpeg string, pcm []int16, secs float64) ([]int16, error) {
	tempo := float64(len(pcm)) / Rate / secs
	var chain []string
	for tempo > 2 {
		chain, tempo = append(chain, "atempo=2"), tempo/2
	}
	for tempo < 0.5 {
		chain, tempo = append(chain, "atempo=0.5"), tempo*2
	}
	chain = append(chain, fmt.Sprintf("atempo=%.4f", tempo))
	var in bytes.Buffer
	for _, s := range pcm {
		in.WriteByte(byte(uint16(s)))
		in.WriteByte(byte(uint16(s) >> 8))
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-f", "s16le", "-ar", strconv.Itoa(Rate), "-ac", "1", "-i", "-",
		"-af", strings.Join(chain, ","), "-f", "s16le", "-")
	cmd.Stdin = &in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fakeclip: atempo: %w: %s", err, errb.String())
	}
	return pcmFrom(out.Bytes()), nil
}

// readY4M splits a 4:2:0 YUV4MPEG2 stream into its header line (with its
// newline) and its frames' pixel data.
func readY4M(b []byte) (string, [][]byte, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	header, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "YUV4MPEG2 ") {
		return "", nil, errors.New("fakeclip: not a YUV4MPEG2 stream")
	}
	var w, h int
	for _, f := range strings.Fields(header)[1:] {
		switch f[0] {
		case 'W':
			w, _ = strconv.Atoi(f[1:])
		case 'H':
			h, _ = strconv.Atoi(f[1:])
		case 'C':
			if !strings.HasPrefix(f, "C420") {
				return "", nil, fmt.Errorf("fakeclip: y4m colour space %s, want 4:2:0", f)
			}
		}
	}
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 {
		return "", nil, fmt.Errorf("fakeclip: y4m size %dx%d", w, h)
	}
	size := w*h + 2*(w/2)*(h/2)
	var frames [][]byte
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		if err != nil || !strings.HasPrefix(line, "FRAME") {
			return "", nil, errors.New("fakeclip: y4m frame header")
		}
		f := make([]byte, size)
		if _, err := io.ReadFull(r, f); err != nil {
			return "", nil, fmt.Errorf("fakeclip: y4m frame: %w", err)
		}
		frames = append(frames, f)
	}
	if len(frames) == 0 {
		return "", nil, errors.New("fakeclip: y4m stream without frames")
	}
	return header, frames, nil
}
