//go:build nolibav

package main

import (
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/media"
)

// videoDecoder spawns the ffmpeg binary per clip, one warm process kept
// started (its start-up, ~0.1 s of CPU, off the request path).
func videoDecoder(fps float64, lim media.Limits) (liveness.VideoDecoder, func() error) {
	d := media.NewDecoder()
	d.FPS, d.Limits, d.Warm = fps, lim, 1
	return d, d.Close
}
