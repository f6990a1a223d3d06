package face

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
)

// Format is a sniffed image container.
type Format int

const (
	FormatUnknown Format = iota
	FormatJPEG
	FormatPNG
)

func (f Format) String() string {
	switch f {
	case FormatJPEG:
		return "jpeg"
	case FormatPNG:
		return "png"
	}
	return "unknown"
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// Sniff names the container from the magic bytes only.
func Sniff(data []byte) Format {
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return FormatJPEG
	case bytes.HasPrefix(data, pngMagic):
		return FormatPNG
	}
	return FormatUnknown
}

// otherFormat names a common image format the engine does not read, from
// its magic bytes ("" when not recognised).
func otherFormat(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "GIF"
	case bytes.HasPrefix(data, []byte("BM")) && len(data) >= 14:
		return "BMP"
	case len(data) >= 12 && bytes.HasPrefix(data, []byte("RIFF")) && string(data[8:12]) == "WEBP":
		return "WebP"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "TIFF"
	case len(data) >= 12 && string(data[4:8]) == "ftyp" && (string(data[8:12]) == "heic" || string(data[8:12]) == "heix" || string(data[8:12]) == "mif1"):
		return "HEIC"
	case len(data) >= 12 && string(data[4:8]) == "ftyp" && string(data[8:12]) == "avif":
		return "AVIF"
	}
	return ""
}

// Limits bound what Check accepts; zero fields mean "use the default".
type Limits struct {
	MaxBytes  int // default 8 MiB
	MaxPixels int // default 24 megapixels
	MaxSide   int // default 8192
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 8 << 20
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = 24_000_000
	}
	if l.MaxSide <= 0 {
		l.MaxSide = 8192
	}
	return l
}

// Check validates an encoded image without decoding its pixels: format by
// magic bytes, byte size, header dimensions against the limits (so an image
// bomb is refused before the decoder allocates for it), and structural
// completeness (JPEG end-of-image marker, PNG chunk chain up to IEND). It
// returns the format and the header size.
func Check(data []byte, lim Limits) (Format, image.Point, error) {
	lim = lim.withDefaults()
	f := Sniff(data)
	if f == FormatUnknown {
		if other := otherFormat(data); other != "" {
			// Whatever the file is named: a BMP or GIF called .jpg.
			return f, image.Point{}, fmt.Errorf("%w: the data is a %s image", ErrUnsupportedFormat, other)
		}
		return f, image.Point{}, ErrUnsupportedFormat
	}
	if len(data) > lim.MaxBytes {
		return f, image.Point{}, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	var (
		cfg image.Config
		err error
	)
	if f == FormatJPEG {
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	} else {
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		if isEOF(err) {
			return f, image.Point{}, fmt.Errorf("%w: header: %v", ErrTruncated, err)
		}
		return f, image.Point{}, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	size := image.Pt(cfg.Width, cfg.Height)
	if size.X <= 0 || size.Y <= 0 {
		return f, size, fmt.Errorf("%w: %dx%d", ErrCorrupt, size.X, size.Y)
	}
	if size.X > lim.MaxSide || size.Y > lim.MaxSide || size.X*size.Y > lim.MaxPixels {
		return f, size, fmt.Errorf("%w: %dx%d", ErrTooLarge, size.X, size.Y)
	}
	if f == FormatJPEG {
		err = checkJPEGEnd(data)
	} else {
		err = checkPNGChunks(data)
	}
	return f, size, err
}

func isEOF(err error) bool {
	s := err.Error()
	return s == "unexpected EOF" || s == "EOF"
}

// checkJPEGEnd walks the marker segments up to the first start-of-scan and
// then requires an EOI marker (FF D9) in the rest: inside entropy-coded data
// 0xFF is always followed by 0x00 or a restart marker, so FF D9 there is the
// real end. libjpeg would otherwise fill a cut-off image with grey silently.
func checkJPEGEnd(data []byte) error {
	i := 2
	for {
		if i+4 > len(data) {
			return fmt.Errorf("%w: no start of scan", ErrTruncated)
		}
		if data[i] != 0xFF {
			return fmt.Errorf("%w: bad marker at %d", ErrCorrupt, i)
		}
		m := data[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			continue
		}
		if m == 0xD9 {
			return fmt.Errorf("%w: end of image before scan", ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 {
			return fmt.Errorf("%w: bad segment length", ErrCorrupt)
		}
		if m == 0xDA { // start of scan
			rest := data[min(i+2+n, len(data)):]
			if !bytes.Contains(rest, []byte{0xFF, 0xD9}) {
				return fmt.Errorf("%w: no end-of-image marker", ErrTruncated)
			}
			return nil
		}
		i += 2 + n
	}
}

// checkPNGChunks walks the chunk chain (length, type, data, CRC) to IEND.
func checkPNGChunks(data []byte) error {
	i := len(pngMagic)
	for {
		if i+8 > len(data) {
			return fmt.Errorf("%w: chunk header", ErrTruncated)
		}
		n := int64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		end := int64(i) + 12 + n
		if n > 1<<31-1 {
			return fmt.Errorf("%w: chunk length", ErrCorrupt)
		}
		if end > int64(len(data)) {
			return fmt.Errorf("%w: chunk %q", ErrTruncated, typ)
		}
		if typ == "IEND" {
			return nil
		}
		i = int(end)
	}
}
