package media

import (
	"encoding/binary"
	"fmt"
)

// maxWAVSamples bounds what ReadWAV allocates (60 s at 48 kHz stereo).
const maxWAVSamples = 60 * 48000 * 2

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
	maxWAVRate          = 192000
)

// ReadWAV is the project's one WAV reader. It decodes a RIFF/WAVE file of
// 16-bit integer PCM with one or two channels (two are averaged to mono) at
// its own rate. Anything else (float, 8/24/32-bit, compressed, more
// channels, truncated or inconsistent chunks, more than 60 s at 48 kHz
// stereo) is an error wrapping ErrUnreadable (ErrTooLong for the length)
// that says what was found. Chunks other than "fmt " and "data" are
// skipped. A data chunk that claims more bytes than the file has is an
// error, except for the 0 and 0xFFFFFFFF sizes streaming writers use, which
// mean "to the end of the file". Hand-written because the format is tiny and
// the standard library has no WAV reader; it is fuzzed.
func ReadWAV(b []byte) (Audio, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Audio{}, fmt.Errorf("%w: not a RIFF/WAVE file", ErrUnreadable)
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
				return Audio{}, fmt.Errorf("%w: fmt chunk of %d bytes is truncated or too short", ErrUnreadable, size)
			}
			f := b[body : body+int(size)]
			format := int(binary.LittleEndian.Uint16(f[0:2]))
			channels = int(binary.LittleEndian.Uint16(f[2:4]))
			rate = int(binary.LittleEndian.Uint32(f[4:8]))
			blockAlign := int(binary.LittleEndian.Uint16(f[12:14]))
			bits = int(binary.LittleEndian.Uint16(f[14:16]))
			if format == wavFormatExtensible {
				if size < 40 {
					return Audio{}, fmt.Errorf("%w: extensible fmt chunk of %d bytes is too short", ErrUnreadable, size)
				}
				// The sub-format GUID starts with the plain format code.
				format = int(binary.LittleEndian.Uint16(f[24:26]))
			}
			if format != wavFormatPCM {
				return Audio{}, fmt.Errorf("%w: format code %d, want PCM (1)", ErrUnreadable, format)
			}
			if bits != 16 {
				return Audio{}, fmt.Errorf("%w: %d bits per sample, want 16", ErrUnreadable, bits)
			}
			if channels != 1 && channels != 2 {
				return Audio{}, fmt.Errorf("%w: %d channels, want 1 or 2", ErrUnreadable, channels)
			}
			if rate < 1000 || rate > maxWAVRate {
				return Audio{}, fmt.Errorf("%w: sample rate %d Hz out of range", ErrUnreadable, rate)
			}
			if blockAlign != channels*2 {
				return Audio{}, fmt.Errorf("%w: block align %d, want %d", ErrUnreadable, blockAlign, channels*2)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Audio{}, fmt.Errorf("%w: data chunk before fmt chunk", ErrUnreadable)
			}
			end := int64(body) + size
			if size == 0 || size == 0xFFFFFFFF {
				end = int64(len(b))
			} else if end > int64(len(b)) {
				return Audio{}, fmt.Errorf("%w: data chunk claims %d bytes, file has %d", ErrUnreadable, size, len(b)-body)
			}
			data := b[body:end]
			frame := channels * 2
			n := len(data) / frame
			if n*channels > maxWAVSamples {
				return Audio{}, fmt.Errorf("%w: %d samples", ErrTooLong, n)
			}
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
		return Audio{}, fmt.Errorf("%w: no fmt chunk", ErrUnreadable)
	}
	return Audio{}, fmt.Errorf("%w: no data chunk", ErrUnreadable)
}

// ParseWAV reads evidence audio with ReadWAV (rates from 8 to 48 kHz) and
// returns it as 16 kHz mono.
func ParseWAV(b []byte) (Audio, error) {
	a, err := ReadWAV(b)
	if err != nil {
		return Audio{}, err
	}
	if a.Rate < 8000 || a.Rate > 48000 {
		return Audio{}, fmt.Errorf("%w: sample rate %d", ErrUnreadable, a.Rate)
	}
	return Audio{Rate: SampleRate, Samples: Resample(a.Samples, a.Rate, SampleRate)}, nil
}

// EncodeWAV writes a as a 16-bit mono RIFF/WAVE file.
func EncodeWAV(a Audio) []byte {
	n := len(a.Samples) * 2
	b := make([]byte, 44+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
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

// Resample converts s from rate from to rate to. Downsampling by an integer
// factor averages each group (a box low-pass); other ratios interpolate
// linearly. Good enough for voice activity and the speech front end, which
// works on 32 mel bands below 8 kHz.
func Resample(s []int16, from, to int) []int16 {
	if from == to || len(s) == 0 {
		return s
	}
	if from > to && from%to == 0 {
		k := from / to
		out := make([]int16, len(s)/k)
		for i := range out {
			var sum int32
			for j := 0; j < k; j++ {
				sum += int32(s[i*k+j])
			}
			out[i] = int16(sum / int32(k))
		}
		return out
	}
	n := int(int64(len(s)) * int64(to) / int64(from))
	out := make([]int16, n)
	for i := range out {
		pos := float64(i) * float64(from) / float64(to)
		j := int(pos)
		f := pos - float64(j)
		a := float64(s[j])
		b := a
		if j+1 < len(s) {
			b = float64(s[j+1])
		}
		out[i] = int16(a + f*(b-a))
	}
	return out
}
