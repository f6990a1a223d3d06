// Package fakeclip builds talking-face clips from the shared GRID clips: the
// fake camera and microphone feeds the browser tests give Chromium
// (--use-file-for-fake-video-capture=*.y4m and
// --use-file-for-fake-audio-capture=*.wav) and the liveness attack set.
//
// BuildReal makes the honest genuine clip the end-to-end tests use: a GRID
// speaker's own video and voice, cut around the speech, for the test-only
// challenge of the one digit the speaker says. Build makes the dub that
// issue 17 measures as an attack (make-fake-clip): the ten GRID clips are
// ten different speakers each saying one digit, so a 4-digit utterance by
// one speaker cannot be cut from them; the dub lays the challenge digits on
// four word slots found in the speaker's own voice (energy valleys of the
// GRID audio), so the voice starts and stops where the mouth does. The digit
// audio is flite speech (Debian's flite, voice kal16), trimmed and, where it
// is longer than its slot, time-stretched with FFmpeg's atempo. Attacks
// writes the whole attack set. See README.md.
package fakeclip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/trustid/trustid/liveness/lipsync"
)

// Rate is the sample rate the speech is built at.
const Rate = 16000

// ErrTool is returned when ffmpeg or flite is missing.
var ErrTool = errors.New("fakeclip: ffmpeg or flite not installed")

// ErrNoSlots is returned when the GRID audio has no usable word slots.
var ErrNoSlots = errors.New("fakeclip: cannot find four word slots in the clip's speech")

// Options says what to build.
type Options struct {
	// Grid is the GRID clip (.mpg) whose face and word timing are used.
	Grid string
	// Digits are the four digits the genuine clip says (the fixed challenge).
	Digits string
	// Other are four different digits for the mismatched clip.
	Other string
	// Dir receives the files.
	Dir string
	// Tail is how much of the last frame is held after the clip (seconds), so a
	// recording that starts late still ends inside the file; default 1.5.
	Tail float64
	// EnvelopeWeight (0..1) is how much of the GRID speaker's 1-3 kHz
	// band contour is imposed on the digit speech (MatchEnvelope); default
	// 0.7 (at 1 the recogniser no longer hears the digits reliably).
	EnvelopeWeight float64
	// FFmpeg and Flite name the binaries; defaults "ffmpeg" and "flite".
	FFmpeg, Flite string
}

// Span is a time span in seconds.
type Span struct{ Start, End float64 }

// Clips names the files Build wrote.
type Clips struct {
	// Genuine: the speaker's face, the challenge digits on the word slots.
	GenuineY4M, GenuineWAV string
	// Still: one frame of the same speaker repeated, the same audio.
	StillY4M, StillWAV string
	// Mismatch: the same video, other digits on the same slots.
	MismatchY4M, MismatchWAV string
	// Photo is a JPEG frame of the speaker (the register photo).
	Photo string
	// Slots are the four word slots (seconds into the clip) the digits sit on.
	Slots []Span
	// Duration of every clip in seconds.
	Duration float64
	// Digits is what the genuine clip says when BuildReal made it (the
	// test-only challenge); Build's is Options.Digits.
	Digits string
}

// Build writes the genuine, still-photo and mismatched clips and a
// register photo into o.Dir.
func Build(ctx context.Context, o Options) (*Clips, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := checkDigits(o.Digits); err != nil {
		return nil, err
	}
	if err := checkDigits(o.Other); err != nil {
		return nil, err
	}
	if o.Other == o.Digits {
		return nil, errors.New("fakeclip: Other must differ from Digits")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	grid, slots, err := o.gridSlots(ctx)
	if err != nil {
		return nil, err
	}
	dur := float64(len(grid))/Rate + o.Tail
	c := &Clips{Slots: slots, Duration: dur, Digits: o.Digits}
	p := func(n string) string { return filepath.Join(o.Dir, n) }
	c.GenuineY4M, c.GenuineWAV = p("genuine.y4m"), p("genuine.wav")
	c.StillY4M, c.StillWAV = p("still.y4m"), p("genuine.wav")
	c.MismatchY4M, c.MismatchWAV = p("genuine.y4m"), p("mismatch.wav")
	c.Photo = p("photo.jpg")

	for _, w := range []struct{ digits, file string }{{o.Digits, c.GenuineWAV}, {o.Other, c.MismatchWAV}} {
		pcm, err := o.dub(ctx, w.digits, grid, slots, dur)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(w.file, WAV(pcm, Rate), 0o644); err != nil {
			return nil, err
		}
	}
	if err := writeVideos(ctx, o.FFmpeg, o.Grid, fmt.Sprintf("tpad=stop_mode=clone:stop_duration=%.2f,format=yuv420p", o.Tail), dur, c); err != nil {
		return nil, err
	}
	return c, nil
}

// writeVideos writes the genuine video (grid's frames through the filter
// vf), the still video and the register photo of c.
func writeVideos(ctx context.Context, ffmpeg, grid, vf string, dur float64, c *Clips) error {
	if _, err := run(ctx, ffmpeg, "-v", "error", "-y", "-i", grid, "-an", "-vf", vf, "-f", "yuv4mpegpipe", c.GenuineY4M); err != nil {
		return fmt.Errorf("fakeclip: video: %w", err)
	}
	// The still clip repeats the first frame (mouth closed before speech),
	// the way a printed photo held to the camera would look.
	if _, err := run(ctx, ffmpeg, "-v", "error", "-y", "-i", grid, "-an", "-vf",
		fmt.Sprintf("select=eq(n\\,0),loop=loop=-1:size=1,fps=25,format=yuv420p,trim=duration=%.2f", dur), "-f", "yuv4mpegpipe", c.StillY4M); err != nil {
		return fmt.Errorf("fakeclip: still video: %w", err)
	}
	if _, err := run(ctx, ffmpeg, "-v", "error", "-y", "-ss", "0.2", "-i", grid, "-frames:v", "1", "-q:v", "2", c.Photo); err != nil {
		return fmt.Errorf("fakeclip: photo: %w", err)
	}
	return nil
}

// Mux writes a WebM (VP8 + Opus, as a browser's MediaRecorder makes) from a
// y4m and a WAV, for checking the clips without a browser.
func Mux(ctx context.Context, ffmpeg, y4m, wav, out string) error {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	_, err := run(ctx, ffmpeg, "-v", "error", "-y", "-i", y4m, "-i", wav, "-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime",
		"-c:a", "libopus", "-shortest", out)
	return err
}

func checkDigits(d string) error {
	if len(d) != 4 || strings.Trim(d, "0123456789") != "" {
		return fmt.Errorf("fakeclip: %q is not four digits", d)
	}
	return nil
}

var words = [10]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// speech lays the digits on the slots in a buffer of n samples.
func (o Options) speech(ctx context.Context, digits string, slots []Span, n int) ([]int16, error) {
	out := make([]int16, n)
	for i, d := range digits {
		w, err := o.word(ctx, words[d-'0'], slots[i].End-slots[i].Start)
		if err != nil {
			return nil, err
		}
		mid := (slots[i].Start + slots[i].End) / 2
		at := int(mid*Rate) - len(w)/2
		for j, s := range w {
			if k := at + j; k >= 0 && k < n {
				out[k] = s
			}
		}
	}
	// A faint noise floor, as a real microphone has (deterministic).
	var x uint32 = 12345
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = clamp16(float64(out[i]) + float64(int32(x>>16)%61-30))
	}
	return out, nil
}

// word synthesises one digit word at Rate, trimmed to its voiced part and
// stretched or compressed in time (never pitch-shifted) to 95 % of slot
// seconds, so the voice fills the slot as the speaker's words did.
func (o Options) word(ctx context.Context, text string, slot float64) ([]int16, error) {
	tmp, err := os.CreateTemp("", "fakeclip-*.wav")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := run(ctx, o.Flite, "-voice", "kal16", "-t", text, "-o", tmp.Name()); err != nil {
		return nil, fmt.Errorf("fakeclip: flite: %w", err)
	}
	raw, err := run(ctx, o.FFmpeg, "-v", "error", "-i", tmp.Name(), "-ac", "1", "-ar", strconv.Itoa(Rate), "-f", "s16le", "-")
	if err != nil {
		return nil, err
	}
	return stretch(ctx, o.FFmpeg, trim(pcmFrom(raw), Rate), 0.95*slot)
}

// MatchEnvelope gives pcm the 1-3 kHz band contour of ref (both at rate):
// the gain of every 10 ms frame (interpolated between frame centres) moves
// the frame's band energy weight of the way (in dB) from its own to ref's.
// Lip sync correlates mouth movement with the changes of that band's energy
// (lipsync.Check), so the digits then rise and fall where the GRID
// speaker's mouth opens and closes; the spectrum's shape within each frame
// (what the recogniser hears) stays the digits'.
func MatchEnvelope(pcm, ref []int16, rate int, weight float64) []int16 {
	hop := rate / 100
	a, b := bandDB(pcm, rate), bandDB(ref, rate)
	g := make([]float64, len(a))
	for i := range a {
		if i < len(b) {
			d := weight * (b[i] - a[i])
			g[i] = math.Pow(10, math.Max(-40, math.Min(18, d))/20)
		} else {
			g[i] = g[max(0, i-1)]
		}
	}
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		f := float64(i)/float64(hop) - 0.5
		k := int(math.Floor(f))
		t := f - float64(k)
		g0, g1 := gainAt(g, k), gainAt(g, k+1)
		out[i] = clamp16(float64(v) * (g0*(1-t) + g1*t))
	}
	return out
}

func gainAt(g []float64, k int) float64 {
	if len(g) == 0 {
		return 1
	}
	return g[max(0, min(len(g)-1, k))]
}

// bandDB is the energy in dB of 10 ms frames of the 1-3 kHz band, the
// band lip sync correlates with the mouth (lipsync.BandPass).
func bandDB(pcm []int16, rate int) []float64 {
	x := lipsync.BandPass(pcm, rate, 1000, 3000)
	hop := rate / 100
	var e []float64
	for i := 0; i+hop <= len(x); i += hop {
		var s float64
		for _, v := range x[i : i+hop] {
			s += v * v * 32768 * 32768
		}
		e = append(e, 10*math.Log10(s/float64(hop)+1))
	}
	return e
}

// frameDB is the energy in dB of 10 ms frames.
func frameDB(pcm []int16, rate int) []float64 {
	hop := rate / 100
	var e []float64
	for i := 0; i+hop <= len(pcm); i += hop {
		var s float64
		for _, v := range pcm[i : i+hop] {
			s += float64(v) * float64(v)
		}
		e = append(e, 10*math.Log10(s/float64(hop)+1))
	}
	return e
}

// smoothDB is e averaged over the 3 frames on each side (fewer at the ends).
func smoothDB(e []float64) []float64 {
	sm := make([]float64, len(e))
	for i := range e {
		var s float64
		var c int
		for j := max(0, i-3); j <= min(len(e)-1, i+3); j++ {
			s, c = s+e[j], c+1
		}
		sm[i] = s / float64(c)
	}
	return sm
}

// loudSpan is the first and the last index of e (frameDB levels, >= 0)
// within below dB of its peak; -1, -1 when e is empty.
func loudSpan(e []float64, below float64) (int, int) {
	peak := 0.0
	for _, v := range e {
		peak = math.Max(peak, v)
	}
	a, b := -1, -1
	for i, v := range e {
		if v > peak-below {
			if a < 0 {
				a = i
			}
			b = i
		}
	}
	return a, b
}

// trim cuts leading and trailing frames more than 35 dB below the peak.
func trim(pcm []int16, rate int) []int16 {
	a, b := loudSpan(frameDB(pcm, rate), 35)
	if a < 0 {
		return pcm
	}
	hop := rate / 100
	return pcm[a*hop : min((b+1)*hop, len(pcm))]
}

// WordSlots finds the speech region of pcm (frames within 25 dB of the
// loudest) and splits it into n slots at the valleys of the
// smoothed energy near the points that would split it equally.
func WordSlots(pcm []int16, rate, n int) ([]Span, error) {
	e := frameDB(pcm, rate)
	if len(e) < 50 {
		return nil, ErrNoSlots
	}
	sm := smoothDB(e)
	a, b := loudSpan(sm, 25)
	if a < 0 || b-a < 20*n {
		return nil, ErrNoSlots
	}
	// Near-equal slots, each boundary moved to the lowest energy within
	// 80 ms of the equal split, so a boundary falls between words where the
	// speaker pauses.
	var cut []int
	for k := 1; k < n; k++ {
		ideal := a + (b+1-a)*k/n
		best := ideal
		for i := ideal - 8; i <= ideal+8; i++ {
			if sm[i] < sm[best] {
				best = i
			}
		}
		cut = append(cut, best)
	}
	sort.Ints(cut)
	bounds := append(append([]int{a}, cut...), b+1)
	out := make([]Span, n)
	for i := range out {
		out[i] = Span{float64(bounds[i]) / 100, float64(bounds[i+1]) / 100}
	}
	return out, nil
}

func clamp16(v float64) int16 {
	return int16(math.Max(-32768, math.Min(32767, v)))
}

func pcmFrom(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// WAV encodes mono 16-bit PCM as a RIFF WAVE file.
func WAV(pcm []int16, rate int) []byte {
	var b bytes.Buffer
	n := uint32(len(pcm) * 2)
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, 36+n)
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(rate * 2), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, n)
	_ = binary.Write(&b, binary.LittleEndian, pcm)
	return b.Bytes()
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
