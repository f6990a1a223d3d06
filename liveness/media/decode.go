package media

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// What a container decoder (the ffmpeg child process here, or the
// in-process liveness/media/libav) shares, so that both read the same
// containers and codecs and return the same Clip.

// Whitelists and probe size of the container decoders (see ffmpeg.go).
const (
	FormatWhitelist = formatWhitelist
	CodecWhitelist  = codecWhitelist
	ProbeBytes      = 5_000_000
)

// Resolved returns l with its zero fields set to DefaultLimits'.
func (l Limits) Resolved() Limits { return l.withDefaults() }

// CheckDecoded applies the limits a decoded Clip must meet: the first
// frame's size, presence of video (and audio unless VideoOnly), duration
// and silence. l must be Resolved.
func (l Limits) CheckDecoded(c *Clip) error {
	if len(c.Frames) == 0 {
		return ErrNoVideo
	}
	if err := l.checkSize(c.Frames[0].Width, c.Frames[0].Height); err != nil {
		return err
	}
	return l.checkClip(c)
}

// CheckAudio applies the limits the audio alone decides: present unless
// VideoOnly, no longer than MaxDuration, not silent. l must be Resolved.
// Audio that fails them makes CheckDecoded fail too (maybe for another
// reason first); a decoder that hands the audio over before the frames
// lets its user check it here before starting work on it.
func (l Limits) CheckAudio(a Audio) error {
	if len(a.Samples) == 0 {
		if l.VideoOnly {
			return nil
		}
		return ErrNoAudio
	}
	if d := a.Duration(); d > l.MaxDuration {
		return fmt.Errorf("%w: audio %s > %s", ErrTooLong, d.Round(time.Millisecond), l.MaxDuration)
	}
	if lvl := LoudLevel(a); lvl < l.SilenceDBFS && !l.VideoOnly {
		return fmt.Errorf("%w: loudest windows at %.1f dBFS", ErrSilent, lvl)
	}
	return nil
}

// CapSeconds is how much of a container is decoded: a little past
// MaxDuration (l Resolved), so that "too long" is told from "at the limit"
// without decoding an hour of video.
func CapSeconds(l Limits) float64 { return capSeconds(l) }

// MaxPixels is the largest picture a decoder may allocate (l Resolved).
func MaxPixels(l Limits) int64 { return maxPixels(l) }

// VideoFilter is the FFmpeg filter chain that samples frames at fps and
// scales them down (keeping the aspect ratio) so that neither side exceeds
// side.
func VideoFilter(fps float64, side int) string {
	fpsArg := strconv.FormatFloat(fps, 'f', -1, 64)
	sideArg := strconv.Itoa(side)
	return "fps=" + fpsArg + ",scale=w='min(iw," + sideArg + ")':h='min(ih," + sideArg + ")':force_original_aspect_ratio=decrease"
}

// Slots bounds the decodes running at once in one decoder. The zero value
// is ready; the first Acquire fixes the number of slots.
type Slots struct {
	once sync.Once
	ch   chan struct{}
}

// Acquire takes one of n slots (n <= 0: the number of CPUs), waiting at
// most wait (<= 0: 2 s), then fails with ErrBusy (a fault of capacity,
// not of the evidence); release gives the slot back.
func (s *Slots) Acquire(ctx context.Context, n int, wait time.Duration) (release func(), err error) {
	s.once.Do(func() {
		if n <= 0 {
			n = runtime.NumCPU()
		}
		s.ch = make(chan struct{}, n)
	})
	if wait <= 0 {
		wait = 2 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch }, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: %d decodes running", ErrBusy, cap(s.ch))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
