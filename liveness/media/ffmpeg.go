package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Decoder demuxes video files with the ffmpeg binary. The zero value is not
// usable; set FPS at least (see NewDecoder).
type Decoder struct {
	FFmpeg  string        // path of the ffmpeg binary; default "ffmpeg" from PATH
	Timeout time.Duration // per file; default 5 s
	FPS     float64       // frame sampling rate; default 25 (lip sync follows every frame)
	// MaxOutputSide scales frames down (keeping the aspect ratio) so that
	// neither side exceeds it; default 640.
	MaxOutputSide int
	Limits        Limits
	TempDir       string // default os.TempDir()
}

// NewDecoder returns a Decoder with defaults filled in.
func NewDecoder() *Decoder {
	return &Decoder{FFmpeg: "ffmpeg", Timeout: 5 * time.Second, FPS: 25, MaxOutputSide: 640}
}

func (d *Decoder) settings() (bin string, timeout time.Duration, fps float64, side int, lim Limits) {
	bin, timeout, fps, side = d.FFmpeg, d.Timeout, d.FPS, d.MaxOutputSide
	if bin == "" {
		bin = "ffmpeg"
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if fps <= 0 {
		fps = 25
	}
	if side <= 0 {
		side = 640
	}
	return bin, timeout, fps, side, d.Limits.withDefaults()
}

// DecodeVideo reads one video file (any container ffmpeg reads: MP4, WebM,
// MPEG-PS, ...) from r and returns its frames sampled at d.FPS and its first
// audio track as 16 kHz mono. The input goes through a temporary file
// because MP4 files often keep their index at the end and need seeking.
func (d *Decoder) DecodeVideo(ctx context.Context, r io.Reader) (*Clip, error) {
	bin, timeout, fps, side, lim := d.settings()
	tmp, err := os.CreateTemp(d.TempDir, "trustid-evidence-*")
	if err != nil {
		return nil, fmt.Errorf("media: temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(r, lim.MaxBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("media: read evidence: %w", err)
	}
	if n > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrUnreadable)
	}
	return d.decodeFile(ctx, bin, timeout, fps, side, lim, tmp.Name())
}

// DecodeFile is DecodeVideo for a file already on disk.
func (d *Decoder) DecodeFile(ctx context.Context, path string) (*Clip, error) {
	bin, timeout, fps, side, lim := d.settings()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if st.Size() > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, st.Size())
	}
	return d.decodeFile(ctx, bin, timeout, fps, side, lim, path)
}

func (d *Decoder) decodeFile(ctx context.Context, bin string, timeout time.Duration, fps float64, side int, lim Limits, path string) (*Clip, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Decode a little past the limit so that "too long" can be told apart
	// from "exactly at the limit" without decoding an hour of video.
	capSec := (lim.MaxDuration + 500*time.Millisecond).Seconds()
	fpsArg := strconv.FormatFloat(fps, 'f', -1, 64)
	sideArg := strconv.Itoa(side)
	cmd := exec.CommandContext(ctx, bin,
		"-nostdin", "-hide_banner", "-loglevel", "error",
		"-t", strconv.FormatFloat(capSec, 'f', 3, 64),
		"-i", path,
		"-map", "0:v:0",
		"-vf", "fps="+fpsArg+",scale=w='min(iw,"+sideArg+")':h='min(ih,"+sideArg+")':force_original_aspect_ratio=decrease",
		"-c:v", "ppm", "-f", "image2pipe", "pipe:1",
		"-map", "0:a:0?", "-ac", "1", "-ar", strconv.Itoa(SampleRate), "-f", "s16le", "pipe:3",
	)
	ar, aw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("media: pipe: %w", err)
	}
	defer ar.Close()
	cmd.ExtraFiles = []*os.File{aw}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		aw.Close()
		return nil, fmt.Errorf("media: pipe: %w", err)
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		aw.Close()
		return nil, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	aw.Close() // the child holds its own copy

	maxFrames := int(fps*capSec) + 2
	if maxFrames > lim.MaxFrames {
		maxFrames = lim.MaxFrames
	}
	var (
		wg       sync.WaitGroup
		audio    []byte
		audioErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		maxAudio := int64(capSec*SampleRate*2) + 4096
		audio, audioErr = io.ReadAll(io.LimitReader(ar, maxAudio))
		_, _ = io.Copy(io.Discard, ar)
	}()
	frames, framesErr := readPPMStream(bufio.NewReaderSize(stdout, 1<<16), maxFrames, side, fps)
	if framesErr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	wg.Wait()
	waitErr := cmd.Wait()

	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: ffmpeg timed out after %s", ErrUnreadable, timeout)
	}
	msg := stderr.String()
	if waitErr != nil {
		switch {
		case strings.Contains(msg, "matches no streams") && strings.Contains(msg, "0:v"):
			return nil, ErrNoVideo
		case strings.Contains(msg, "does not contain any stream"):
			return nil, ErrNoAudio
		}
		return nil, fmt.Errorf("%w: ffmpeg: %v: %s", ErrUnreadable, waitErr, firstLine(msg))
	}
	if framesErr != nil {
		return nil, framesErr
	}
	if audioErr != nil {
		return nil, fmt.Errorf("media: read audio: %w", audioErr)
	}
	if len(frames) == 0 {
		return nil, ErrNoVideo
	}
	if err := lim.checkSize(frames[0].Width, frames[0].Height); err != nil {
		return nil, err
	}
	samples := make([]int16, len(audio)/2)
	for i := range samples {
		samples[i] = int16(binary.LittleEndian.Uint16(audio[2*i:]))
	}
	clip := &Clip{Frames: frames, FPS: fps, Audio: Audio{Rate: SampleRate, Samples: samples}}
	if err := lim.checkClip(clip); err != nil {
		return nil, err
	}
	return clip, nil
}

// readPPMStream reads concatenated binary PPM (P6, maxval 255) images.
func readPPMStream(r *bufio.Reader, maxFrames, maxSide int, fps float64) ([]Frame, error) {
	var frames []Frame
	for {
		w, h, err := readPPMHeader(r)
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		if w <= 0 || h <= 0 || w > maxSide || h > maxSide {
			return nil, fmt.Errorf("%w: decoded frame %dx%d", ErrDimensions, w, h)
		}
		if len(frames) >= maxFrames {
			return nil, fmt.Errorf("%w: more than %d frames", ErrTooLong, maxFrames)
		}
		buf := make([]byte, w*h*3)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("%w: truncated frame: %v", ErrUnreadable, err)
		}
		for i := 0; i < len(buf); i += 3 { // PPM is RGB
			buf[i], buf[i+2] = buf[i+2], buf[i]
		}
		t := time.Duration(float64(len(frames)) / fps * float64(time.Second))
		frames = append(frames, Frame{T: t, Width: w, Height: h, BGR: buf})
	}
}

// readPPMHeader parses "P6 <w> <h> <maxval>" followed by one whitespace byte.
func readPPMHeader(r *bufio.Reader) (int, int, error) {
	var fields [4]string
	for i := range fields {
		tok, err := ppmToken(r)
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, 0, io.EOF
			}
			return 0, 0, fmt.Errorf("%w: ppm header: %v", ErrUnreadable, err)
		}
		fields[i] = tok
	}
	if fields[0] != "P6" || fields[3] != "255" {
		return 0, 0, fmt.Errorf("%w: unexpected ppm header %q %q", ErrUnreadable, fields[0], fields[3])
	}
	w, err1 := strconv.Atoi(fields[1])
	h, err2 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: ppm size", ErrUnreadable)
	}
	return w, h, nil
}

// ppmToken reads one whitespace-delimited token and the single whitespace
// byte after it.
func ppmToken(r *bufio.Reader) (string, error) {
	var tok []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if len(tok) > 0 && errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
			if len(tok) > 0 {
				return string(tok), nil
			}
			continue
		}
		if len(tok) > 16 {
			return "", errors.New("token too long")
		}
		tok = append(tok, c)
	}
}

// tailBuffer keeps the first 4 KiB of ffmpeg's error output.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := 4096 - t.buf.Len(); room > 0 {
		if len(p) > room {
			t.buf.Write(p[:room])
		} else {
			t.buf.Write(p)
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
