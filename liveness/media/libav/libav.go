// Package libav decodes liveness evidence (a video file) in process with
// Debian's FFmpeg libraries (libavformat, libavcodec, libavfilter,
// libswscale) through cgo: the frames sampled at a fixed rate as BGR and
// the first audio track as 16 kHz mono, exactly as liveness/media.Decoder's ffmpeg child process
// returns them (the same whitelists, filter graphs and scaler flags; the
// tests compare the two byte for byte), without starting a process per
// clip. Starting the ffmpeg binary costs ~0.1 s of CPU, more than
// decoding a 3 s clip does.
//
// It is the only package that links FFmpeg's libraries; deploy/setup.sh
// installs their -dev packages. media.Decoder (the ffmpeg binary) remains
// for builds and hosts without them.
package libav

/*
#cgo pkg-config: libavformat libavcodec libavfilter libavutil libswscale
#cgo LDFLAGS: -lm
#include <stdlib.h>
#include "lav.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/trustid/trustid/liveness/media"
)

// Decoder decodes video files in process. The zero value is usable (FPS
// 25, MaxOutputSide 640, default limits); it is safe for concurrent use.
type Decoder struct {
	FPS float64 // frame sampling rate; default 25
	// MaxOutputSide scales frames down (keeping the aspect ratio) so that
	// neither side exceeds it; default 640.
	MaxOutputSide int
	Limits        media.Limits
	// Timeout bounds one decode; default 10 s.
	Timeout time.Duration
	// MaxConcurrent caps the decodes running at once (default the number
	// of CPUs); a call waits at most QueueWait (default 2 s) for a slot and
	// then fails with media.ErrBusy.
	MaxConcurrent int
	QueueWait     time.Duration
	// Pool keeps the frame buffers of released clips (media.Clip.Release)
	// for the next decodes; its zero value keeps up to
	// media.DefaultPoolBytes.
	Pool media.FramePool

	slots media.Slots
}

// New returns a Decoder with the defaults.
func New() *Decoder { return &Decoder{FPS: 25, MaxOutputSide: 640, Timeout: 10 * time.Second} }

func (d *Decoder) acquire(ctx context.Context) (func(), error) {
	return d.slots.Acquire(ctx, d.MaxConcurrent, d.QueueWait)
}

// DecodeVideo reads one video file (MP4, WebM, MPEG-PS, ... as
// media.FormatWhitelist lists) from r, at most Limits.MaxBytes, and decodes
// it like media.Decoder.DecodeVideo.
func (d *Decoder) DecodeVideo(ctx context.Context, r io.Reader) (*media.Clip, error) {
	return d.DecodeAudioFirst(ctx, r, nil)
}

// DecodeAudioFirst is DecodeVideo that decodes all the audio before the
// frames and calls audio (when not nil) with it as soon as it is out, on
// the calling goroutine: the audio checks can run while the frames decode.
// The Clip's Audio is the same; the decoder does not change it after the
// call. audio is not called when the decode fails first, nor for a file
// whose video packets are too many to queue (then the streams decode
// interleaved).
func (d *Decoder) DecodeAudioFirst(ctx context.Context, r io.Reader, audio func(media.Audio)) (*media.Clip, error) {
	lim := d.Limits.Resolved()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("media: read evidence: %w", err)
	}
	return d.decode(ctx, data, audio)
}

// DecodeFile is DecodeVideo for a file on disk.
func (d *Decoder) DecodeFile(ctx context.Context, path string) (*media.Clip, error) {
	lim := d.Limits.Resolved()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if st.Size() > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes", media.ErrTooLarge, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	return d.Decode(ctx, data)
}

// Decode decodes one video file held in memory.
func (d *Decoder) Decode(ctx context.Context, data []byte) (*media.Clip, error) {
	return d.decode(ctx, data, nil)
}

func (d *Decoder) decode(ctx context.Context, data []byte, audio func(media.Audio)) (*media.Clip, error) {
	lim := d.Limits.Resolved()
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", media.ErrTooLarge, lim.MaxBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", media.ErrUnreadable)
	}
	fps, side, timeout := d.FPS, d.MaxOutputSide, d.Timeout
	if fps <= 0 {
		fps = 25
	}
	if side <= 0 {
		side = 640
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	capSec := media.CapSeconds(lim)
	clip, err := decode(ctx, data, fps, side, capSec, lim, &d.Pool, audio)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, errStopped) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: decoding timed out after %s", media.ErrUnreadable, timeout)
			}
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := lim.CheckDecoded(clip); err != nil {
		clip.Release()
		return nil, err
	}
	return clip, nil
}

var errStopped = errors.New("libav: stopped")

// dstPad is the room a frame buffer has past its pixels, which the
// scaler's vector stores may write into.
const dstPad = C.LAV_DST_PAD

var initOnce = sync.OnceFunc(func() { C.lav_init() })

// cstrings are the C copies of the options, made once.
var cstrings = sync.OnceValue(func() [3]*C.char {
	return [3]*C.char{C.CString(media.FormatWhitelist), C.CString(media.CodecWhitelist), nil}
})

func decode(ctx context.Context, data []byte, fps float64, side int, capSec float64, lim media.Limits, pool *media.FramePool, audio func(media.Audio)) (_ *media.Clip, err error) {
	// The input is copied to C memory: the C side keeps a pointer to it
	// across calls, which Go memory must not be.
	initOnce()
	buf := C.CBytes(data)
	defer C.free(buf)
	c := C.lav_new((*C.uint8_t)(buf), C.int64_t(len(data)))
	if c == nil {
		return nil, errors.New("libav: out of memory")
	}
	// A cancelled ctx stops the decode from another goroutine; the mutex
	// keeps that call from racing with lav_free.
	var mu sync.Mutex
	freed := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !freed {
			C.lav_stop(c)
		}
	})
	defer func() {
		stop()
		mu.Lock()
		freed = true
		mu.Unlock()
		C.lav_free(c)
	}()

	filters := C.CString(media.VideoFilter(fps, side))
	defer C.free(unsafe.Pointer(filters))
	cs := cstrings()
	o := C.lav_opts{
		video_filters:    filters,
		format_whitelist: cs[0],
		codec_whitelist:  cs[1],
		probesize:        C.int64_t(media.ProbeBytes),
		max_pixels:       C.int64_t(media.MaxPixels(lim)),
		cap_us:           C.int64_t(math.Round(capSec * 1e6)),
		max_side:         C.int(side),
	}
	if lim.VideoOnly {
		o.video_only = 1
	}
	if audio != nil {
		o.audio_first = 1
	}
	if r := C.lav_open(c, &o); r < 0 {
		return nil, lavErr(c, r)
	}
	maxFrames := min(int(fps*capSec)+2, lim.MaxFrames)
	maxSamples := int(capSec*media.SampleRate) + 2048
	single := C.lav_nb_streams(c) == 1
	clip := &media.Clip{FPS: fps, Audio: media.Audio{Rate: media.SampleRate}}
	cfr := cfrSync{single: single}
	var bufs [][]byte // the frames' distinct buffers, from pool
	defer func() {
		if err != nil {
			for _, b := range bufs {
				pool.Put(b)
			}
		}
	}()
	for {
		r := C.lav_next(c)
		switch r {
		case C.LAV_EOF:
			pool.Adopt(clip, bufs)
			return clip, nil
		case C.LAV_VIDEO:
			w, h := int(C.lav_width(c)), int(C.lav_height(c))
			if w <= 0 || h <= 0 || w > side || h > side {
				return nil, fmt.Errorf("%w: decoded frame %dx%d", media.ErrDimensions, w, h)
			}
			n := cfr.copies(int64(C.lav_pts(c)))
			if n == 0 {
				continue
			}
			if len(clip.Frames)+n > maxFrames {
				return nil, fmt.Errorf("%w: more than %d frames", media.ErrTooLong, maxFrames)
			}
			buf := pool.Get(w*h*3 + dstPad)
			bufs = append(bufs, buf)
			if r := C.lav_copy_bgr(c, (*C.uint8_t)(unsafe.Pointer(&buf[0]))); r < 0 {
				return nil, lavErr(c, r)
			}
			bgr := buf[: w*h*3 : w*h*3]
			for range n {
				t := time.Duration(float64(len(clip.Frames)) / fps * float64(time.Second))
				clip.Frames = append(clip.Frames, media.Frame{T: t, Width: w, Height: h, BGR: bgr})
			}
		case C.LAV_AUDIO:
			n := int(C.lav_samples(c))
			if n <= 0 {
				continue
			}
			s := clip.Audio.Samples
			if len(s) >= maxSamples {
				continue // past the cap: media.Decoder reads no more either
			}
			s = append(s, make([]int16, n)...)
			C.lav_copy_s16(c, (*C.int16_t)(unsafe.Pointer(&s[len(s)-n])))
			clip.Audio.Samples = s[:min(len(s), maxSamples)]
		case C.LAV_AUDIO_END:
			audio(clip.Audio)
		default:
			return nil, lavErr(c, r)
		}
	}
}

// cfrSync reproduces the ffmpeg command line's constant-frame-rate output
// (its default for an image pipe): the fps filter's frames have
// consecutive timestamps in frames; when the first one is later than 0 (the
// video starts after the audio), the first picture is repeated from 0,
// except in a file of one stream (the command line's "VSCFR" case).
type cfrSync struct {
	single bool
	next   int64 // the next output frame's index
	n      int   // frames seen
}

func (s *cfrSync) copies(pts int64) int {
	first := s.n == 0
	s.n++
	delta0 := pts - s.next
	delta := delta0 + 1
	if s.single && first && delta0 >= 1 {
		s.next = pts
		delta = 1
	}
	n := 1
	switch {
	case delta < -1: // the command line's delta < -1.1
		n = 0
	case delta > 1: // delta > 1.1
		n = int(delta)
	}
	s.next += int64(n)
	return n
}

func lavErr(c *C.lav_ctx, r C.int) error {
	msg := C.GoString(C.lav_error(c))
	switch r {
	case C.LAV_ERR_NOVIDEO:
		return media.ErrNoVideo
	case C.LAV_ERR_NOAUDIO:
		return media.ErrNoAudio
	case C.LAV_ERR_DIMENSIONS:
		return fmt.Errorf("%w: %s", media.ErrDimensions, msg)
	case C.LAV_ERR_UNREADABLE:
		return fmt.Errorf("%w: %s", media.ErrUnreadable, msg)
	case C.LAV_ERR_STOPPED:
		return errStopped
	}
	return fmt.Errorf("libav: %s", msg)
}
