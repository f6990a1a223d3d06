package media

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// wavBytes builds a WAV file by hand (ReadWAV moved here from liveness/speech with its tests) so that the tests do not depend on
// EncodeWAV.
func wavBytes(format, channels, rate, bits int, data []byte, extra ...[]byte) []byte {
	var b []byte
	le16 := func(v int) { b = binary.LittleEndian.AppendUint16(b, uint16(v)) }
	le32 := func(v int) { b = binary.LittleEndian.AppendUint32(b, uint32(v)) }
	b = append(b, "RIFF"...)
	le32(0) // patched below
	b = append(b, "WAVE"...)
	for _, e := range extra {
		b = append(b, e...)
	}
	b = append(b, "fmt "...)
	le32(16)
	le16(format)
	le16(channels)
	le32(rate)
	le32(rate * channels * bits / 8)
	le16(channels * bits / 8)
	le16(bits)
	b = append(b, "data"...)
	le32(len(data))
	b = append(b, data...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func samplesLE(v ...int16) []byte {
	var b []byte
	for _, s := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func TestReadWAV(t *testing.T) {
	listChunk := append([]byte("LIST"), 3, 0, 0, 0, 'a', 'b', 'c', 0) // odd size, padded
	tests := []struct {
		name    string
		in      []byte
		want    Audio
		wantErr bool
	}{
		{"mono", wavBytes(1, 1, 8000, 16, samplesLE(1, -2, 300)), Audio{8000, []int16{1, -2, 300}}, false},
		{"stereo averaged", wavBytes(1, 2, 16000, 16, samplesLE(100, 300, -4, -6)), Audio{16000, []int16{200, -5}}, false},
		{"extra chunk before fmt", wavBytes(1, 1, 16000, 16, samplesLE(7), listChunk), Audio{16000, []int16{7}}, false},
		{"odd trailing byte ignored", wavBytes(1, 1, 16000, 16, append(samplesLE(5), 9)), Audio{16000, []int16{5}}, false},
		{"empty", nil, Audio{}, true},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE"), Audio{}, true},
		{"float format", wavBytes(3, 1, 16000, 32, make([]byte, 8)), Audio{}, true},
		{"8-bit", wavBytes(1, 1, 8000, 8, make([]byte, 4)), Audio{}, true},
		{"24-bit", wavBytes(1, 1, 8000, 24, make([]byte, 6)), Audio{}, true},
		{"three channels", wavBytes(1, 3, 8000, 16, make([]byte, 12)), Audio{}, true},
		{"rate zero", wavBytes(1, 1, 0, 16, make([]byte, 4)), Audio{}, true},
		{"truncated data", wavBytes(1, 1, 8000, 16, make([]byte, 8))[:48], Audio{}, true},
		{"no data chunk", wavBytes(1, 1, 8000, 16, nil)[:36], Audio{}, true},
		{"header only", []byte("RIFF\x04\x00\x00\x00WAVE"), Audio{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadWAV(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrUnreadable) {
					t.Fatalf("err = %v, want ErrUnreadable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Rate != tt.want.Rate || !slices.Equal(got.Samples, tt.want.Samples) {
				t.Errorf("got %d Hz %v, want %d Hz %v", got.Rate, got.Samples, tt.want.Rate, tt.want.Samples)
			}
		})
	}
}

func TestEncodeReadWAVRoundTrip(t *testing.T) {
	a := Audio{Rate: 16000, Samples: []int16{0, 1, -1, 32767, -32768}}
	got, err := ReadWAV(EncodeWAV(a))
	if err != nil {
		t.Fatal(err)
	}
	if got.Rate != a.Rate || !slices.Equal(got.Samples, a.Samples) {
		t.Errorf("round trip: got %+v, want %+v", got, a)
	}
}

func FuzzReadWAV(f *testing.F) {
	f.Add(wavBytes(1, 1, 8000, 16, samplesLE(1, -2, 300)))
	f.Add(wavBytes(1, 2, 16000, 16, samplesLE(100, 300, -4, -6)))
	f.Add(wavBytes(3, 1, 16000, 32, make([]byte, 8)))
	f.Add(wavBytes(1, 1, 8000, 16, make([]byte, 8))[:48])
	f.Add([]byte("RIFF\x04\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ReadWAV(b)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("error does not wrap ErrUnreadable: %v", err)
			}
			return
		}
		if a.Rate < 1000 || a.Rate > maxWAVRate {
			t.Fatalf("accepted rate %d", a.Rate)
		}
		if 2*len(a.Samples) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(a.Samples), len(b))
		}
	})
}
