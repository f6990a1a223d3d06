package fakeclip

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"strconv"
)

// DubAudio returns the audio Build writes for digits on o.Grid (the
// genuine.wav of a clip whose challenge is digits): flite digits on the
// speaker's four word slots, given the speaker's 1-3 kHz contour at
// o.EnvelopeWeight. Only o.Grid, o.EnvelopeWeight, o.Tail and the tool names
// are used. The synthetic-voice check trains and is evaluated on it.
func DubAudio(ctx context.Context, o Options, digits string) ([]int16, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := checkDigits(digits); err != nil {
		return nil, err
	}
	grid, slots, err := o.gridSlots(ctx)
	if err != nil {
		return nil, err
	}
	return o.dub(ctx, digits, grid, slots, float64(len(grid))/Rate+o.Tail)
}

// defaults fills the zero fields of o and checks that the tools exist.
func (o *Options) defaults() error {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Flite == "" {
		o.Flite = "flite"
	}
	if o.EnvelopeWeight == 0 {
		o.EnvelopeWeight = 0.7
	}
	if o.Tail == 0 {
		o.Tail = 1.5
	}
	for _, t := range []string{o.FFmpeg, o.Flite} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%w: %s", ErrTool, t)
		}
	}
	return nil
}

// gridSlots decodes the GRID clip's audio at Rate and finds its four word
// slots.
func (o Options) gridSlots(ctx context.Context) ([]int16, []Span, error) {
	raw, err := run(ctx, o.FFmpeg, "-v", "error", "-i", o.Grid, "-vn", "-ac", "1", "-ar", strconv.Itoa(Rate), "-f", "s16le", "-")
	if err != nil {
		return nil, nil, fmt.Errorf("fakeclip: decode %s: %w", o.Grid, err)
	}
	grid := pcmFrom(raw)
	slots, err := WordSlots(grid, Rate, 4)
	if err != nil {
		return nil, nil, err
	}
	return grid, slots, nil
}

// dub lays digits on the slots in dur seconds of audio and imposes the
// speaker's band contour.
func (o Options) dub(ctx context.Context, digits string, grid []int16, slots []Span, dur float64) ([]int16, error) {
	pcm, err := o.speech(ctx, digits, slots, int(math.Round(dur*Rate)))
	if err != nil {
		return nil, err
	}
	return MatchEnvelope(pcm, grid, Rate, o.EnvelopeWeight), nil
}
