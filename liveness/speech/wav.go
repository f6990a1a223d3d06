package speech

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrWAV: the bytes are not a WAV file this package reads (RIFF/WAVE,
// PCM 16-bit, one or two channels).
var ErrWAV = errors.New("speech: unsupported or malformed WAV")

// Audio is decoded PCM: mono signed 16-bit samples at Rate Hz.
type Audio struct {
	Rate    int
	Samples []int16
}

// Duration returns the length of the audio in seconds.
func (a Audio) Duration() float64 {
	if a.Rate == 0 {
		return 0
	}
	return float64(len(a.Samples)) / float64(a.Rate)
}

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
	maxWAVRate          = 192000
)

// ParseWAV decodes a RIFF/WAVE file holding 16-bit PCM with one or two
// channels (two are averaged to mono). Anything else (float, 8/24/32-bit,
// compressed, more channels, truncated or inconsistent chunks) is an error
// wrapping ErrWAV that says what was found. Chunks other than "fmt " and
// "data" are skipped. A data chunk that claims more bytes than the file has
// is an error, except for the 0 and 0xFFFFFFFF sizes streaming writers use,
// which mean "to the end of the file".
func ParseWAV(b []byte) (Audio, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Audio{}, fmt.Errorf("%w: not a RIFF/WAVE file", ErrWAV)
	}
	var (
		haveFmt  bool
		channels int
		rate     int
		bits     int
		p        = 12
	)
	for p+8 <= len(b) {
		id := string(b[p : p+4])
		size := int64(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		body := p + 8
		switch id {
		case "fmt ":
			if size < 16 || int64(body)+size > int64(len(b)) {
				return Audio{}, fmt.Errorf("%w: fmt chunk of %d bytes is truncated or too short", ErrWAV, size)
			}
			f := b[body : body+int(size)]
			format := int(binary.LittleEndian.Uint16(f[0:2]))
			channels = int(binary.LittleEndian.Uint16(f[2:4]))
			rate = int(binary.LittleEndian.Uint32(f[4:8]))
			blockAlign := int(binary.LittleEndian.Uint16(f[12:14]))
			bits = int(binary.LittleEndian.Uint16(f[14:16]))
			if format == wavFormatExtensible {
				if size < 40 {
					return Audio{}, fmt.Errorf("%w: extensible fmt chunk of %d bytes is too short", ErrWAV, size)
				}
				// The sub-format GUID starts with the plain format code.
				format = int(binary.LittleEndian.Uint16(f[24:26]))
			}
			if format != wavFormatPCM {
				return Audio{}, fmt.Errorf("%w: format code %d, want PCM (1)", ErrWAV, format)
			}
			if bits != 16 {
				return Audio{}, fmt.Errorf("%w: %d bits per sample, want 16", ErrWAV, bits)
			}
			if channels != 1 && channels != 2 {
				return Audio{}, fmt.Errorf("%w: %d channels, want 1 or 2", ErrWAV, channels)
			}
			if rate < 1000 || rate > maxWAVRate {
				return Audio{}, fmt.Errorf("%w: sample rate %d Hz out of range", ErrWAV, rate)
			}
			if blockAlign != channels*2 {
				return Audio{}, fmt.Errorf("%w: block align %d, want %d", ErrWAV, blockAlign, channels*2)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Audio{}, fmt.Errorf("%w: data chunk before fmt chunk", ErrWAV)
			}
			end := int64(body) + size
			if size == 0 || size == 0xFFFFFFFF {
				end = int64(len(b))
			} else if end > int64(len(b)) {
				return Audio{}, fmt.Errorf("%w: data chunk claims %d bytes, file has %d", ErrWAV, size, len(b)-body)
			}
			data := b[body:end]
			frame := channels * 2
			n := len(data) / frame
			out := make([]int16, n)
			for i := range n {
				if channels == 1 {
					out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
					continue
				}
				l := int32(int16(binary.LittleEndian.Uint16(data[4*i:])))
				r := int32(int16(binary.LittleEndian.Uint16(data[4*i+2:])))
				out[i] = int16((l + r) / 2)
			}
			return Audio{Rate: rate, Samples: out}, nil
		}
		next := int64(body) + size + size&1 // chunks are padded to even sizes
		if next > int64(len(b)) {
			break
		}
		p = int(next)
	}
	if !haveFmt {
		return Audio{}, fmt.Errorf("%w: no fmt chunk", ErrWAV)
	}
	return Audio{}, fmt.Errorf("%w: no data chunk", ErrWAV)
}

// EncodeWAV writes mono 16-bit PCM as a canonical 44-byte-header WAV file.
func EncodeWAV(a Audio) []byte {
	n := len(a.Samples) * 2
	b := make([]byte, 44+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(a.Rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(a.Rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	for i, s := range a.Samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}
