package media

import (
	"encoding/binary"
	"fmt"
)

// maxWAVSamples bounds what ParseWAV allocates (60 s at 48 kHz stereo).
const maxWAVSamples = 60 * 48000 * 2

// ParseWAV reads a RIFF/WAVE file of 16-bit integer PCM (mono or stereo, any
// rate from 8 to 48 kHz) and returns it as 16 kHz mono. Hand-written because
// the format is tiny and the standard library has no WAV reader; it is fuzzed.
func ParseWAV(b []byte) (Audio, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Audio{}, fmt.Errorf("%w: not a RIFF/WAVE file", ErrUnreadable)
	}
	var (
		haveFmt          bool
		format, channels uint16
		rate             uint32
		bits             uint16
		data             []byte
		haveData         bool
	)
	p := b[12:]
	for len(p) >= 8 {
		id := string(p[0:4])
		size := binary.LittleEndian.Uint32(p[4:8])
		p = p[8:]
		body := p
		if uint64(size) < uint64(len(p)) {
			body = p[:size]
		}
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return Audio{}, fmt.Errorf("%w: short fmt chunk", ErrUnreadable)
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
			if format == 0xFFFE && len(body) >= 26 { // WAVE_FORMAT_EXTENSIBLE: sub-format GUID starts with the tag
				format = binary.LittleEndian.Uint16(body[24:26])
			}
			haveFmt = true
		case "data":
			// Streaming writers leave the size at 0 or 0xFFFFFFFF: take the rest.
			data, haveData = body, true
			if size == 0 || size == 0xFFFFFFFF {
				data, p = p, nil
				continue
			}
		}
		if uint64(size) >= uint64(len(p)) {
			break
		}
		p = p[size:]
		if size%2 == 1 && len(p) > 0 { // chunks are word aligned
			p = p[1:]
		}
	}
	if !haveFmt || !haveData {
		return Audio{}, fmt.Errorf("%w: missing fmt or data chunk", ErrUnreadable)
	}
	if format != 1 || bits != 16 {
		return Audio{}, fmt.Errorf("%w: only 16-bit integer PCM is accepted (format %d, %d bits)", ErrUnreadable, format, bits)
	}
	if channels < 1 || channels > 2 {
		return Audio{}, fmt.Errorf("%w: %d channels", ErrUnreadable, channels)
	}
	if rate < 8000 || rate > 48000 {
		return Audio{}, fmt.Errorf("%w: sample rate %d", ErrUnreadable, rate)
	}
	n := len(data) / 2 / int(channels)
	if n*int(channels) > maxWAVSamples {
		return Audio{}, fmt.Errorf("%w: %d samples", ErrTooLong, n)
	}
	mono := make([]int16, n)
	for i := range mono {
		if channels == 1 {
			mono[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
			continue
		}
		l := int32(int16(binary.LittleEndian.Uint16(data[4*i:])))
		r := int32(int16(binary.LittleEndian.Uint16(data[4*i+2:])))
		mono[i] = int16((l + r) / 2)
	}
	return Audio{Rate: SampleRate, Samples: Resample(mono, int(rate), SampleRate)}, nil
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
