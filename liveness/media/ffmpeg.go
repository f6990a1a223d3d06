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
	Timeout time.Duration // per file; default 10 s
	FPS     float64       // frame sampling rate; default 25 (lip sync follows every frame)
	// MaxOutputSide scales frames down (keeping the aspect ratio) so that
	// neither side exceeds it; default 640.
	MaxOutputSide int
	Limits        Limits
	TempDir       string // default os.TempDir()
	// Warm is how many ffmpeg processes are kept started and waiting for
	// piped input, taking the binary's start-up cost off the request path.
	// Zero (the default) starts ffmpeg per call. Call Close to stop them.
	Warm int
	// MaxConcurrent caps the decodes running at once on this node (each
	// ffmpeg child can take hundreds of MiB and seconds of CPU on hostile
	// input); default the number of CPUs. A call waits at most QueueWait
	// (default 2 s) for a slot and then fails with ErrBusy.
	MaxConcurrent int
	QueueWait     time.Duration
	// Pool keeps the frame buffers of released clips (Clip.Release) for
	// the next decodes; its zero value keeps up to DefaultPoolBytes.
	Pool FramePool

	mu     sync.Mutex
	warm   []*proc
	closed bool
	slots  Slots
}

// ErrBusy is returned when every decode slot stayed taken for QueueWait: a
// fault of capacity, not of the evidence (answer 503 with Retry-After).
var ErrBusy = errors.New("media: decoder busy")

// acquire takes a decode slot, waiting at most QueueWait.
func (d *Decoder) acquire(ctx context.Context) (release func(), err error) {
	return d.slots.Acquire(ctx, d.MaxConcurrent, d.QueueWait)
}

// NewDecoder returns a Decoder with defaults filled in.
func NewDecoder() *Decoder {
	return &Decoder{FFmpeg: "ffmpeg", Timeout: 10 * time.Second, FPS: 25, MaxOutputSide: 640}
}

func (d *Decoder) settings() (bin string, timeout time.Duration, fps float64, side int, lim Limits) {
	bin, timeout, fps, side = d.FFmpeg, d.Timeout, d.FPS, d.MaxOutputSide
	if bin == "" {
		bin = "ffmpeg"
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
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
// audio track as 16 kHz mono. Streamable inputs are piped into a warm
// ffmpeg process when one is ready (see Warm); an MP4 whose index comes
// after its media data needs seeking and goes through a temporary file.
func (d *Decoder) DecodeVideo(ctx context.Context, r io.Reader) (*Clip, error) {
	bin, timeout, fps, side, lim := d.settings()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("media: read evidence: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrUnreadable)
	}
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	args := ffmpegArgs{bin: bin, fps: fps, side: side, capSec: capSeconds(lim), maxPixels: maxPixels(lim), videoOnly: lim.VideoOnly}
	if needsSeek(data) {
		tmp, err := os.CreateTemp(d.TempDir, "trustid-evidence-*")
		if err != nil {
			return nil, fmt.Errorf("media: temp file: %w", err)
		}
		defer os.Remove(tmp.Name())
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("media: temp file: %w", err)
		}
		args.input = tmp.Name()
		p, err := startFFmpeg(args)
		if err != nil {
			return nil, err
		}
		return collect(ctx, p, nil, args, timeout, lim, &d.Pool)
	}
	args.input = "pipe:0"
	p := d.takeWarm(args)
	if p == nil {
		if p, err = startFFmpeg(args); err != nil {
			return nil, err
		}
	}
	return collect(ctx, p, data, args, timeout, lim, &d.Pool)
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
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	args := ffmpegArgs{bin: bin, fps: fps, side: side, capSec: capSeconds(lim), maxPixels: maxPixels(lim), input: path, videoOnly: lim.VideoOnly}
	p, err := startFFmpeg(args)
	if err != nil {
		return nil, err
	}
	return collect(ctx, p, nil, args, timeout, lim, &d.Pool)
}

// capSeconds is how much is decoded: a little past the limit, so that "too
// long" can be told apart from "exactly at the limit" without decoding an
// hour of video.
func capSeconds(lim Limits) float64 {
	return (lim.MaxDuration + 500*time.Millisecond).Seconds()
}

// maxPixels is the largest picture ffmpeg may allocate: a MaxSide x
// (MaxSide*9/16) frame, so 1920x1080 in either orientation. ffmpeg checks it
// on the stream header, before decoding a frame, which stops a small file
// declaring 8K frames from costing seconds of CPU and hundreds of MiB.
func maxPixels(lim Limits) int64 {
	return int64(lim.MaxSide) * int64(lim.MaxSide) * 9 / 16
}

// Input restrictions: what a citizen's browser or phone records (WebM with
// VP8/VP9/AV1 + Opus/Vorbis, MP4/QuickTime with H.264/HEVC + AAC) and the
// test corpora (MPEG-PS with MPEG-1/2 + MP2, AVI, Ogg). Anything else is
// refused by ffmpeg before it is probed, and only pipe and file inputs are
// opened (no network or concat protocols from inside a container).
const (
	formatWhitelist   = "matroska,webm,mov,mp4,m4a,3gp,mpeg,mpegts,mpegvideo,avi,ogg,wav"
	codecWhitelist    = "vp8,vp9,av1,libdav1d,h264,hevc,mpeg4,mpeg1video,mpeg2video,mjpeg,theora,opus,libopus,vorbis,aac,mp2,mp3,pcm_s16le,pcm_f32le"
	protocolWhitelist = "file,pipe"
)

// needsSeek reports whether data is an MP4/QuickTime file whose index
// (moov) comes after its media data (mdat): ffmpeg cannot read those from a
// pipe.
func needsSeek(data []byte) bool {
	if len(data) < 12 || string(data[4:8]) != "ftyp" {
		return false
	}
	for p := 0; p+8 <= len(data); {
		size := uint64(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		switch typ {
		case "moov":
			return false
		case "mdat":
			return true
		}
		switch size {
		case 0:
			return false // box runs to the end and no index was seen before it
		case 1:
			if p+16 > len(data) {
				return true
			}
			size = binary.BigEndian.Uint64(data[p+8:])
		}
		if size < 8 || size > uint64(len(data)-p) {
			return true // truncated or odd: let ffmpeg seek in a file
		}
		p += int(size)
	}
	return true
}

// ffmpegArgs are the settings one ffmpeg process is started with.
type ffmpegArgs struct {
	bin    string
	fps    float64
	side   int
	capSec float64
	// maxPixels is passed as the decoder's max_pixels.
	maxPixels int64
	input     string // a path, or "pipe:0"
	// videoOnly leaves the audio out (Limits.VideoOnly): ffmpeg refuses
	// an audio output that no stream feeds.
	videoOnly bool
}

// proc is a started ffmpeg process.
type proc struct {
	args   ffmpegArgs
	cmd    *exec.Cmd
	stdin  io.WriteCloser // nil for file input
	stdout io.ReadCloser
	audio  *os.File
	stderr *tailBuffer
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// startFFmpeg starts ffmpeg with frames as PPM images on stdout and the
// audio as s16le on fd 3. Loading the ffmpeg binary and its libraries costs
// about 0.2 s of CPU, which is why streamable inputs use warm processes.
func startFFmpeg(a ffmpegArgs) (*proc, error) {
	argv := []string{
		"-nostdin", "-hide_banner", "-loglevel", "error",
		"-protocol_whitelist", protocolWhitelist,
		"-format_whitelist", formatWhitelist,
		"-codec_whitelist", codecWhitelist,
		"-probesize", strconv.Itoa(ProbeBytes), "-analyzeduration", strconv.Itoa(ProbeBytes),
		"-max_pixels", strconv.FormatInt(a.maxPixels, 10),
		"-t", strconv.FormatFloat(a.capSec, 'f', 3, 64),
		"-i", a.input,
		"-map", "0:v:0",
		"-vf", VideoFilter(a.fps, a.side),
		"-c:v", "ppm", "-f", "image2pipe", "pipe:1",
	}
	if !a.videoOnly {
		argv = append(argv, "-map", "0:a:0?", "-ac", "1", "-ar", strconv.Itoa(SampleRate), "-f", "s16le", "pipe:3")
	}
	cmd := exec.Command(a.bin, argv...)
	p := &proc{args: a, cmd: cmd, stderr: &tailBuffer{}}
	ar, aw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("media: pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{aw}
	cmd.Stderr = p.stderr
	fail := func(err error) (*proc, error) {
		ar.Close()
		aw.Close()
		return nil, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return fail(err)
	}
	if a.input == "pipe:0" {
		// -nostdin only stops ffmpeg reading commands from stdin; pipe:0
		// still reads the input from it.
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return fail(err)
		}
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	aw.Close() // the child holds its own copy
	p.audio = ar
	return p, nil
}

// collect feeds data (for pipe input) to p and reads its frames (into
// buffers from pool) and audio.
func collect(ctx context.Context, p *proc, data []byte, a ffmpegArgs, timeout time.Duration, lim Limits, pool *FramePool) (_ *Clip, err error) {
	defer p.audio.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, p.kill)
	defer stop()
	if p.stdin != nil {
		go func() {
			_, _ = p.stdin.Write(data) // a write error shows up as ffmpeg's own error
			p.stdin.Close()
		}()
	}
	maxFrames := int(a.fps*a.capSec) + 2
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
		maxAudio := int64(a.capSec*SampleRate*2) + 4096
		audio, audioErr = io.ReadAll(io.LimitReader(p.audio, maxAudio))
		_, _ = io.Copy(io.Discard, p.audio)
	}()
	frames, framesErr := readPPMStream(bufio.NewReaderSize(p.stdout, 1<<16), maxFrames, a.side, a.fps, pool)
	defer func() {
		if err != nil {
			for _, f := range frames {
				pool.Put(f.BGR)
			}
		}
	}()
	if framesErr != nil {
		_, _ = io.Copy(io.Discard, p.stdout)
	}
	wg.Wait()
	waitErr := p.cmd.Wait()

	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: ffmpeg timed out after %s", ErrUnreadable, timeout)
	}
	msg := p.stderr.String()
	if waitErr != nil {
		switch {
		case strings.Contains(msg, "matches no streams") && strings.Contains(msg, "0:v"):
			return nil, ErrNoVideo
		case strings.Contains(msg, "does not contain any stream"):
			return nil, ErrNoAudio
		case strings.Contains(msg, "not on whitelist"):
			return nil, fmt.Errorf("%w: container or codec not accepted: %s", ErrUnreadable, firstLine(msg))
		case strings.Contains(msg, "exceeds specified max pixel count"):
			return nil, fmt.Errorf("%w: picture larger than %d pixels", ErrDimensions, a.maxPixels)
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
	clip := &Clip{Frames: frames, FPS: a.fps, Audio: Audio{Rate: SampleRate, Samples: samples}}
	if err := lim.checkClip(clip); err != nil {
		return nil, err
	}
	bufs := make([][]byte, len(frames))
	for i, f := range frames {
		bufs[i] = f.BGR
	}
	pool.Adopt(clip, bufs)
	return clip, nil
}

// takeWarm returns a started ffmpeg waiting on its stdin for input with
// settings a, or nil, and starts a replacement in the background.
func (d *Decoder) takeWarm(a ffmpegArgs) *proc {
	if d.Warm <= 0 {
		return nil
	}
	d.mu.Lock()
	var p *proc
	for len(d.warm) > 0 && p == nil {
		p, d.warm = d.warm[0], d.warm[1:]
		if p.args != a { // settings changed since it was started
			p.kill()
			go p.cmd.Wait()
			p = nil
		}
	}
	d.mu.Unlock()
	go d.refill(a)
	return p
}

// refill starts warm processes until there are Warm of them.
func (d *Decoder) refill(a ffmpegArgs) {
	for {
		d.mu.Lock()
		if d.closed || len(d.warm) >= d.Warm {
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		p, err := startFFmpeg(a)
		if err != nil {
			return // the next request starts one itself and reports the error
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			p.kill()
			p.audio.Close()
			go p.cmd.Wait()
			return
		}
		d.warm = append(d.warm, p)
		d.mu.Unlock()
	}
}

// Close stops the warm ffmpeg processes. The Decoder still works after
// Close, starting ffmpeg per call.
func (d *Decoder) Close() error {
	d.mu.Lock()
	d.closed = true
	ws := d.warm
	d.warm = nil
	d.mu.Unlock()
	for _, p := range ws {
		p.kill()
		p.audio.Close()
		_ = p.cmd.Wait()
	}
	return nil
}

// readPPMStream reads concatenated binary PPM (P6, maxval 255) images
// into buffers from pool (nil: new ones), each frame its own.
func readPPMStream(r *bufio.Reader, maxFrames, maxSide int, fps float64, pool *FramePool) (_ []Frame, err error) {
	var frames []Frame
	defer func() {
		if err != nil {
			for _, f := range frames {
				pool.Put(f.BGR)
			}
		}
	}()
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
		buf := pool.Get(w * h * 3)
		if _, err := io.ReadFull(r, buf); err != nil {
			pool.Put(buf)
			return nil, fmt.Errorf("%w: truncated frame: %v", ErrUnreadable, err)
		}
		rgbToBGR(buf)
		t := time.Duration(float64(len(frames)) / fps * float64(time.Second))
		frames = append(frames, Frame{T: t, Width: w, Height: h, BGR: buf})
	}
}

// rgbToBGR swaps the first and third byte of every pixel in place (PPM is RGB).
func rgbToBGR(p []byte) {
	for len(p) >= 12 { // four pixels per step, one bounds check
		q := p[:12:12]
		q[0], q[2] = q[2], q[0]
		q[3], q[5] = q[5], q[3]
		q[6], q[8] = q[8], q[6]
		q[9], q[11] = q[11], q[9]
		p = p[12:]
	}
	for len(p) >= 3 {
		p[0], p[2] = p[2], p[0]
		p = p[3:]
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
