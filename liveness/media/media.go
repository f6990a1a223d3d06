// Package media takes in the evidence of a liveness attempt, either a video
// file (MP4, WebM, MPEG-1 program stream, ... demuxed by the ffmpeg binary
// here, or in process by liveness/media/libav, which returns the same Clip)
// or a list of timestamped JPEG frames with a WAV file, and turns it into a
// Clip: BGR frames sampled at a fixed rate plus 16 kHz mono PCM. It enforces
// the limits on size, duration, frame count and dimensions and reports
// unusable evidence (no audio, silence, too short, unreadable) with sentinel
// errors the decision maps to stable reasons. The decoders fill frames from
// a bounded FramePool that takes a clip's buffers back (Clip.Release) once
// the decision is made.
package media

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// SampleRate is the rate of every Audio this package returns.
const SampleRate = 16000

// Sentinel errors; callers branch on them with errors.Is.
var (
	ErrTooLarge      = errors.New("media: evidence too large")
	ErrUnreadable    = errors.New("media: unreadable container or encoding")
	ErrNoVideo       = errors.New("media: no video track")
	ErrNoAudio       = errors.New("media: no audio track")
	ErrSilent        = errors.New("media: audio is silent")
	ErrTooShort      = errors.New("media: clip too short")
	ErrTooLong       = errors.New("media: clip too long")
	ErrTooManyFrames = errors.New("media: too many frames")
	ErrDimensions    = errors.New("media: frame dimensions out of range")
	ErrTimestamps    = errors.New("media: frame timestamps not increasing")
)

// Frame is one video frame: packed BGR24 rows, Width*Height*3 bytes, taken
// at time T from the start of the clip.
type Frame struct {
	T      time.Duration
	Width  int
	Height int
	BGR    []byte
}

// Audio is 16-bit PCM, mono.
type Audio struct {
	Rate    int
	Samples []int16
}

// Duration is the length of the audio.
func (a Audio) Duration() time.Duration {
	if a.Rate <= 0 {
		return 0
	}
	return time.Duration(len(a.Samples)) * time.Second / time.Duration(a.Rate)
}

// Clip is decoded evidence: frames at a fixed sampling rate and the audio.
type Clip struct {
	Frames []Frame
	// FPS is the sampling rate of Frames (frames are FPS apart, up to the
	// capture's own frame times).
	FPS   float64
	Audio Audio
	// SourceFPS is the capture's own frame rate when known (0 if not).
	SourceFPS float64

	release func() // see Release
}

// Release gives the frames' pixel buffers back to the decoder that made
// them (its FramePool), to be overwritten by its next decodes: call it once
// nothing reads the frames any more, and only once. A clip never released
// is collected as garbage as usual; for other clips it does nothing.
func (c *Clip) Release() {
	if c != nil && c.release != nil {
		c.release()
		c.release = nil
	}
}

// Duration is the longer of the audio and the video.
func (c *Clip) Duration() time.Duration {
	d := c.Audio.Duration()
	if n := len(c.Frames); n > 0 && c.FPS > 0 {
		v := c.Frames[n-1].T + time.Duration(float64(time.Second)/c.FPS)
		if v > d {
			d = v
		}
	}
	return d
}

// Limits bound what evidence is accepted. The zero value of a field means
// its default (see DefaultLimits).
type Limits struct {
	MaxBytes    int64         // encoded evidence size
	MinDuration time.Duration // of the clip
	MaxDuration time.Duration
	MaxFrames   int // frames submitted (JPEG list) or decoded
	MinSide     int // smallest accepted frame side in pixels
	MaxSide     int // largest accepted frame side in pixels (before scaling)
	// SilenceDBFS: the clip is silent when its loud windows (95th percentile
	// of 20 ms RMS levels) stay below this level in dB relative to full scale.
	SilenceDBFS float64
	// VideoOnly accepts evidence without audio, or with silent audio (the
	// action challenge needs no voice).
	VideoOnly bool
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{
	MaxBytes:    16 << 20,
	MinDuration: 2 * time.Second,
	MaxDuration: 8 * time.Second,
	MaxFrames:   8 * 60,
	MinSide:     96,
	MaxSide:     1920,
	SilenceDBFS: -45,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MinDuration > 0 {
		d.MinDuration = l.MinDuration
	}
	if l.MaxDuration > 0 {
		d.MaxDuration = l.MaxDuration
	}
	if l.MaxFrames > 0 {
		d.MaxFrames = l.MaxFrames
	}
	if l.MinSide > 0 {
		d.MinSide = l.MinSide
	}
	if l.MaxSide > 0 {
		d.MaxSide = l.MaxSide
	}
	if l.SilenceDBFS != 0 {
		d.SilenceDBFS = l.SilenceDBFS
	}
	d.VideoOnly = l.VideoOnly
	return d
}

// checkClip applies the duration and silence limits shared by both intakes.
func (l Limits) checkClip(c *Clip) error {
	if len(c.Frames) == 0 {
		return ErrNoVideo
	}
	if len(c.Audio.Samples) == 0 && !l.VideoOnly {
		return ErrNoAudio
	}
	d := c.Duration()
	if d < l.MinDuration {
		return fmt.Errorf("%w: %s < %s", ErrTooShort, d.Round(time.Millisecond), l.MinDuration)
	}
	if d > l.MaxDuration {
		return fmt.Errorf("%w: %s > %s", ErrTooLong, d.Round(time.Millisecond), l.MaxDuration)
	}
	if lvl := LoudLevel(c.Audio); lvl < l.SilenceDBFS && !l.VideoOnly {
		return fmt.Errorf("%w: loudest windows at %.1f dBFS", ErrSilent, lvl)
	}
	return nil
}

// LoudLevel is the 95th percentile of the 20 ms RMS levels of a, in dBFS.
func LoudLevel(a Audio) float64 {
	win := a.Rate / 50
	if win <= 0 || len(a.Samples) < win {
		return math.Inf(-1)
	}
	var levels []float64
	for i := 0; i+win <= len(a.Samples); i += win {
		levels = append(levels, RMSdB(a.Samples[i:i+win]))
	}
	sort.Float64s(levels)
	return levels[int(0.95*float64(len(levels)-1))]
}

// RMSdB is the RMS level of s in dB relative to full scale (-inf for zeros).
func RMSdB(s []int16) float64 {
	if len(s) == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for _, v := range s {
		f := float64(v)
		sum += f * f
	}
	rms := math.Sqrt(sum/float64(len(s))) / 32768
	return 20 * math.Log10(rms)
}
