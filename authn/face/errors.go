package face

import (
	"errors"
	"fmt"
)

// Input errors: the bytes are not an image this engine accepts.
var (
	// ErrUnsupportedFormat: not JPEG or PNG (sniffed from the magic bytes).
	ErrUnsupportedFormat = errors.New("face: unsupported image format (JPEG or PNG only)")
	// ErrTooLarge: byte size, pixel count or a side over the configured limits,
	// found from the header before any pixel is decoded.
	ErrTooLarge = errors.New("face: image too large")
	// ErrTruncated: the file ends before its end marker (JPEG EOI, PNG IEND).
	ErrTruncated = errors.New("face: image truncated")
	// ErrCorrupt: the header or the pixel data cannot be decoded.
	ErrCorrupt = errors.New("face: image corrupt")
	// ErrBadFrame: a raw frame whose size does not match its pixel buffer.
	ErrBadFrame = errors.New("face: bad raw frame")
)

// Quality errors: the image decoded but the face in it is not usable. They
// arrive wrapped in a *QualityError that carries the measured value.
var (
	ErrNoFace       = errors.New("face: no face found")
	ErrSeveralFaces = errors.New("face: several faces")
	ErrFaceTooSmall = errors.New("face: face too small")
	ErrBlurred      = errors.New("face: face too blurred")
	ErrPose         = errors.New("face: head pose too far from frontal")
	ErrTooDark      = errors.New("face: face too dark")
	// ErrMisaligned: the landmarks do not fit a face (AlignResidual above
	// Config.MaxAlignResidual); embedding them would compare the wrong
	// parts of two faces.
	ErrMisaligned = errors.New("face: landmarks do not fit a face (misaligned)")
)

// ErrClosed is returned by an Engine after Close.
var ErrClosed = errors.New("face: engine closed")

// QualityError says why a face was rejected and what was measured.
// errors.Is(err, ErrSeveralFaces) etc. work through Unwrap.
type QualityError struct {
	Reason error   // one of the quality sentinels above
	Faces  int     // faces detected in the image
	Value  float64 // the measured quantity (pixels, variance, degrees, mean grey)
	Limit  float64 // the configured limit it failed
}

func (e *QualityError) Error() string {
	switch e.Reason {
	case ErrNoFace:
		return e.Reason.Error()
	case ErrSeveralFaces:
		return fmt.Sprintf("%v: %d detected", e.Reason, e.Faces)
	default:
		return fmt.Sprintf("%v: %.3g (limit %.3g)", e.Reason, e.Value, e.Limit)
	}
}

func (e *QualityError) Unwrap() error { return e.Reason }
