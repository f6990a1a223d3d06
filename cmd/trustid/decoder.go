//go:build !nolibav

package main

import (
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/media/libav"
)

// videoDecoder decodes liveness evidence in process with FFmpeg's libraries
// (liveness/media/libav): no ffmpeg process per clip, the same frames and
// samples. Build with -tags nolibav to spawn the ffmpeg binary instead
// (decoder_ffmpeg.go) where the libraries' -dev packages are missing.
// The Verifier runs the audio checks while the frames decode.
var _ liveness.AudioFirstDecoder = (*libav.Decoder)(nil)

func videoDecoder(fps float64, lim media.Limits) (liveness.VideoDecoder, func() error) {
	d := libav.New()
	d.FPS, d.Limits = fps, lim
	return d, func() error { return nil }
}
