package media

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"time"
)

// JPEGFrame is one submitted frame: a JPEG image taken at T from the start.
type JPEGFrame struct {
	T    time.Duration
	JPEG []byte
}

// DecodeFrames builds a Clip from timestamped JPEG frames and a WAV file.
// Only the frames nearest each 1/fps tick are decoded, so a 30 fps upload
// costs no more than the sampling needs.
func DecodeFrames(frames []JPEGFrame, wav []byte, fps float64, lim Limits) (*Clip, error) {
	lim = lim.withDefaults()
	if fps <= 0 {
		return nil, fmt.Errorf("media: fps must be positive")
	}
	var total int64 = int64(len(wav))
	for _, f := range frames {
		total += int64(len(f.JPEG))
	}
	if total > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, total)
	}
	if len(frames) == 0 {
		return nil, ErrNoVideo
	}
	if len(frames) > lim.MaxFrames {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyFrames, len(frames), lim.MaxFrames)
	}
	for i, f := range frames {
		if f.T < 0 || (i > 0 && f.T <= frames[i-1].T) {
			return nil, fmt.Errorf("%w: frame %d", ErrTimestamps, i)
		}
	}
	if len(wav) == 0 && !lim.VideoOnly {
		return nil, ErrNoAudio
	}
	var audio Audio
	if len(wav) > 0 {
		var err error
		if audio, err = ParseWAV(wav); err != nil {
			return nil, err
		}
	}
	if span := frames[len(frames)-1].T - frames[0].T; span > lim.MaxDuration {
		return nil, fmt.Errorf("%w: frames span %s", ErrTooLong, span)
	}
	clip := &Clip{FPS: fps, Audio: audio}
	if len(frames) > 1 {
		clip.SourceFPS = float64(len(frames)-1) / (frames[len(frames)-1].T - frames[0].T).Seconds()
	}
	step := time.Duration(float64(time.Second) / fps)
	if step <= 0 {
		return nil, fmt.Errorf("media: fps %g is too high", fps)
	}
	end := frames[len(frames)-1].T
	j := 0
	w, h := 0, 0
	// Ticks are counted, not accumulated: near the largest Duration,
	// tick += step would wrap around to a negative tick and never end.
	for k := time.Duration(0); k <= (end-frames[0].T)/step; k++ {
		tick := frames[0].T + k*step
		for j+1 < len(frames) && absDur(frames[j+1].T-tick) <= absDur(frames[j].T-tick) {
			j++
		}
		fr, err := DecodeJPEG(frames[j].JPEG)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", j, err)
		}
		if err := lim.checkSize(fr.Width, fr.Height); err != nil {
			return nil, err
		}
		if w != 0 && (fr.Width != w || fr.Height != h) {
			return nil, fmt.Errorf("%w: frame %d is %dx%d, earlier %dx%d", ErrDimensions, j, fr.Width, fr.Height, w, h)
		}
		w, h = fr.Width, fr.Height
		fr.T = tick - frames[0].T
		clip.Frames = append(clip.Frames, fr)
	}
	if err := lim.checkClip(clip); err != nil {
		return nil, err
	}
	return clip, nil
}

func (l Limits) checkSize(w, h int) error {
	if w < l.MinSide || h < l.MinSide || w > l.MaxSide || h > l.MaxSide {
		return fmt.Errorf("%w: %dx%d", ErrDimensions, w, h)
	}
	return nil
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// maxJPEGPixels bounds the decoder's allocation before it happens.
const maxJPEGPixels = 4096 * 4096

// DecodeJPEG decodes one JPEG image into a BGR Frame.
func DecodeJPEG(b []byte) (Frame, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxJPEGPixels {
		return Frame{}, fmt.Errorf("%w: %dx%d", ErrDimensions, cfg.Width, cfg.Height)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	return FromImage(img), nil
}

// FromImage converts any image to a BGR Frame at T = 0.
func FromImage(img image.Image) Frame {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := make([]byte, w*h*3)
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := m.YCbCrAt(r.Min.X+x, r.Min.Y+y)
				R, G, B := ycbcrToRGB(c.Y, c.Cb, c.Cr)
				o := (y*w + x) * 3
				out[o], out[o+1], out[o+2] = B, G, R
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := m.GrayAt(r.Min.X+x, r.Min.Y+y).Y
				o := (y*w + x) * 3
				out[o], out[o+1], out[o+2] = v, v, v
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
				o := (y*w + x) * 3
				out[o], out[o+1], out[o+2] = byte(cb>>8), byte(cg>>8), byte(cr>>8)
			}
		}
	}
	return Frame{Width: w, Height: h, BGR: out}
}

func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	// Same integer transform as image/color.YCbCrToRGB, without the call
	// through the color.Color interface per pixel.
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy + 91881*cr1
	g := yy - 22554*cb1 - 46802*cr1
	b := yy + 116130*cb1
	return clamp16(r), clamp16(g), clamp16(b)
}

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// Image returns f as an RGBA image (for encoding and tests).
func (f Frame) Image() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, f.Width, f.Height))
	for i := 0; i < f.Width*f.Height; i++ {
		img.Pix[4*i] = f.BGR[3*i+2]
		img.Pix[4*i+1] = f.BGR[3*i+1]
		img.Pix[4*i+2] = f.BGR[3*i]
		img.Pix[4*i+3] = 255
	}
	return img
}
