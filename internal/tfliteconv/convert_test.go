package tfliteconv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHalfToFloat(t *testing.T) {
	tests := []struct {
		name string
		h    uint16
		want float32
	}{
		{"zero", 0x0000, 0},
		{"one", 0x3c00, 1},
		{"minus two", 0xc000, -2},
		{"max", 0x7bff, 65504},
		{"smallest subnormal", 0x0001, float32(math.Ldexp(1, -24))},
		{"largest subnormal", 0x03ff, float32(math.Ldexp(1023, -24))},
		{"smallest normal", 0x0400, float32(math.Ldexp(1, -14))},
		{"third", 0x3555, 0.333251953125},
		{"inf", 0x7c00, float32(math.Inf(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := halfToFloat(tt.h); got != tt.want {
				t.Errorf("halfToFloat(%#04x) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
	if v := halfToFloat(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("NaN became %v", v)
	}
}

func TestSamePads(t *testing.T) {
	tests := []struct {
		name                  string
		valid                 bool
		in, k, stride, dil    int
		wantBegin, wantEnding int64
	}{
		{"3x3 stride 1", false, 96, 3, 1, 1, 1, 1},
		{"3x3 stride 2 even", false, 192, 3, 2, 1, 0, 1}, // TF puts the odd pixel at the end
		{"2x2 pool stride 2", false, 96, 2, 2, 1, 0, 0},
		{"1x1", false, 48, 1, 1, 1, 0, 0},
		{"valid", true, 3, 3, 1, 1, 0, 0},
		{"dilated", false, 10, 3, 1, 2, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, e := samePads(tt.valid, tt.in, tt.k, tt.stride, tt.dil)
			if b != tt.wantBegin || e != tt.wantEnding {
				t.Errorf("pads %d,%d, want %d,%d", b, e, tt.wantBegin, tt.wantEnding)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no identifier", []byte("12345678abcdefgh")},
		{"root out of range", append([]byte{0xff, 0xff, 0, 0}, []byte("TFL3")...)},
		{"truncated", append([]byte{16, 0, 0, 0}, []byte("TFL3\x00\x00\x00\x00")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.data); !errors.Is(err, ErrFormat) {
				t.Errorf("err = %v, want ErrFormat", err)
			}
		})
	}
}

// faceLandmark returns the pinned face_landmark.tflite from
// $TRUSTID_MODELS (deploy/setup.sh puts it there).
func faceLandmark(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(os.Getenv("TRUSTID_MODELS"), "face_landmark.tflite")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return b
}

// pinned returns the SHA-256 deploy/models.sha256 pins for name.
func pinned(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "deploy", "models.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 2 && fs[1] == name {
			return fs[0]
		}
	}
	t.Fatalf("no pinned sum for %s", name)
	return ""
}

// TestFaceLandmarkOps: the graph uses only the operators converted, in
// the counts this converter was written against.
func TestFaceLandmarkOps(t *testing.T) {
	m, err := Parse(faceLandmark(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ADD": 20, "CONV_2D": 25, "DEPTHWISE_CONV_2D": 20, "DEQUANTIZE": 113, "MAX_POOL_2D": 6, "PAD": 3, "PRELU": 23}
	got := m.Histogram()
	if len(got) != len(want) {
		t.Errorf("histogram %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d, want %d", k, got[k], v)
		}
	}
}

// TestConvertDeterministic: the same TFLite gives the same bytes, and they
// are the ones deploy/models.sha256 pins for face_mesh.onnx.
func TestConvertDeterministic(t *testing.T) {
	src := faceLandmark(t)
	if got := sha(src); got != pinned(t, "face_landmark.tflite") {
		t.Fatalf("face_landmark.tflite sha256 %s is not the pinned one", got)
	}
	a, err := Convert(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Convert(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two conversions differ")
	}
	if got, want := sha(a), pinned(t, "face_mesh.onnx"); got != want {
		t.Errorf("face_mesh.onnx sha256 %s, pinned %s (a converter change must update deploy/models.sha256)", got, want)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FuzzParse: a model file is input; a malformed one is an error, never a
// panic (the reader bounds-checks every offset).
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add(append([]byte{16, 0, 0, 0}, []byte("TFL3\x00\x00\x00\x00")...))
	f.Add([]byte("\x14\x00\x00\x00TFL3\x00\x00\x0c\x00\x08\x00\x04\x00\x06\x00\x0c\x00\x00\x00\x04\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := Parse(data); err == nil {
			_, _ = Convert(data)
			_ = m.Histogram()
		}
	})
}
