package face

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// Images made at test time from the test data.
const (
	lfwImage  = "faces/lfw/George_W_Bush/George_W_Bush_0001.jpg"
	lfwImage2 = "faces/lfw/Colin_Powell/Colin_Powell_0001.jpg"
	nuaaImage = "pad/nuaa/real/0001/0001_00_00_01_0.jpg"
)

func encode(t testing.TB, m gocv.Mat, ext gocv.FileExt) []byte {
	t.Helper()
	buf, err := gocv.IMEncode(ext, m)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes())
}

func decodeT(t testing.TB, data []byte) gocv.Mat {
	t.Helper()
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || m.Empty() {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// sideBySide puts two photos next to each other: two faces.
func sideBySide(t testing.TB, a, b []byte) []byte {
	ma, mb := decodeT(t, a), decodeT(t, b)
	defer ma.Close()
	defer mb.Close()
	out := gocv.NewMat()
	defer out.Close()
	gocv.Hconcat(ma, mb, &out)
	return encode(t, out, gocv.JPEGFileExt)
}

func transform(t testing.TB, data []byte, f func(src gocv.Mat, dst *gocv.Mat)) []byte {
	m := decodeT(t, data)
	defer m.Close()
	out := gocv.NewMat()
	defer out.Close()
	f(m, &out)
	return encode(t, out, gocv.JPEGFileExt)
}

func plainPNG(t testing.TB, w, h int, c color.Gray) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = c.Y
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngWithHeaderSize rewrites a PNG's IHDR to claim another size (with a
// valid CRC): a decompression bomb's header.
func pngWithHeaderSize(t testing.TB, w, h uint32) []byte {
	b := plainPNG(t, 8, 8, color.Gray{})
	// signature (8) + length (4) + "IHDR" (4) + data (13) + crc (4)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// A picture in another format is named, whatever its file is called.
func TestUnsupportedFormatNamed(t *testing.T) {
	tests := []struct {
		data []byte
		want string
	}{
		{[]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "JPEG or PNG only): the data is a GIF image"},
		{append([]byte("BM"), make([]byte, 60)...), "a BMP image"},
		{[]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), "a WebP image"},
		{[]byte("\x00\x00\x00\x18ftypheic\x00\x00"), "a HEIC image"},
		{[]byte("hello"), "(JPEG or PNG only)"},
	}
	for _, tt := range tests {
		_, _, err := Check(tt.data, Limits{})
		if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q) = %v, want %q", tt.data[:6], err, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	jpg := testdata(t, lfwImage)
	pngData := plainPNG(t, 64, 48, color.Gray{Y: 100})
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"jpeg", jpg, Limits{}, nil},
		{"png", pngData, Limits{}, nil},
		{"empty", nil, Limits{}, ErrUnsupportedFormat},
		{"text", []byte("hello, this is not an image"), Limits{}, ErrUnsupportedFormat},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), Limits{}, ErrUnsupportedFormat},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), Limits{}, ErrUnsupportedFormat},
		{"webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), Limits{}, ErrUnsupportedFormat},
		{"jpeg magic only", []byte{0xFF, 0xD8, 0xFF}, Limits{}, ErrTruncated},
		{"jpeg truncated half", jpg[:len(jpg)/2], Limits{}, ErrTruncated},
		{"jpeg truncated end marker", jpg[:len(jpg)-2], Limits{}, ErrTruncated},
		{"jpeg corrupt header", append([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x00, 0x00, 0x00, 0x03}, bytes.Repeat([]byte{0x55}, 200)...), Limits{}, ErrCorrupt},
		{"png truncated", pngData[:len(pngData)-6], Limits{}, ErrTruncated},
		{"png corrupt IHDR crc", func() []byte { b := bytes.Clone(pngData); b[20] ^= 0xFF; return b }(), Limits{}, ErrCorrupt},
		{"too many bytes", jpg, Limits{MaxBytes: 1000}, ErrTooLarge},
		{"bomb header", pngWithHeaderSize(t, 60000, 60000), Limits{}, ErrTooLarge},
		{"side too long", pngWithHeaderSize(t, 9000, 10), Limits{}, ErrTooLarge},
		{"too many pixels", jpg, Limits{MaxPixels: 250*250 - 1}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Check(tt.data, tt.lim)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProcessErrors(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	face1 := testdata(t, lfwImage)
	face2 := testdata(t, lfwImage2)
	tests := []struct {
		name  string
		data  []byte
		opts  Options
		want  error
		faces int // minimum faces reported, for the count errors
	}{
		{"good", face1, Options{Embedding: true}, nil, 1},
		{"non-image", []byte("%PDF-1.4 not an image"), Options{}, ErrUnsupportedFormat, 0},
		{"truncated", face1[:len(face1)*2/3], Options{}, ErrTruncated, 0},
		{"bomb", pngWithHeaderSize(t, 50000, 50000), Options{}, ErrTooLarge, 0},
		{"no face", plainPNG(t, 640, 480, color.Gray{Y: 128}), Options{}, ErrNoFace, 0},
		{"several faces", sideBySide(t, face1, face2), Options{}, ErrSeveralFaces, 2},
		{"several faces allowed", sideBySide(t, face1, face2), Options{AllowSeveral: true, Embedding: true}, nil, 2},
		{"too dark", transform(t, face1, func(s gocv.Mat, d *gocv.Mat) { s.ConvertToWithParams(d, gocv.MatTypeCV8UC3, 0.25, 0) }), Options{}, ErrTooDark, 1},
		{"blurred", transform(t, face1, func(s gocv.Mat, d *gocv.Mat) {
			gocv.GaussianBlur(s, d, image.Pt(0, 0), 4, 4, gocv.BorderDefault)
		}), Options{}, ErrBlurred, 1},
		{"blurred but gates off", transform(t, face1, func(s gocv.Mat, d *gocv.Mat) {
			gocv.GaussianBlur(s, d, image.Pt(0, 0), 4, 4, gocv.BorderDefault)
		}), Options{SkipGates: true}, nil, 1},
		{"small face", transform(t, face1, func(s gocv.Mat, d *gocv.Mat) {
			small := gocv.NewMat()
			defer small.Close()
			gocv.Resize(s, &small, image.Pt(90, 90), 0, 0, gocv.InterpolationArea)
			gocv.CopyMakeBorder(small, d, 195, 195, 275, 275, gocv.BorderConstant, color.RGBA{128, 128, 128, 0})
		}), Options{}, ErrFaceTooSmall, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Process(ctx, tt.data, tt.opts)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				if res != nil {
					t.Logf("faces %d, quality %+v", res.Faces, res.Quality)
				}
				t.Fatalf("Process = %v, want %v", err, tt.want)
			}
			var qe *QualityError
			if errors.As(err, &qe) && qe.Faces < tt.faces {
				t.Errorf("QualityError.Faces = %d, want >= %d", qe.Faces, tt.faces)
			}
			if err == nil {
				if res.Faces < tt.faces {
					t.Errorf("Faces = %d, want >= %d", res.Faces, tt.faces)
				}
				if tt.opts.Embedding && len(res.Embedding) != EmbeddingSize {
					t.Errorf("embedding length %d", len(res.Embedding))
				}
			}
		})
	}
}

func TestEstimatePose(t *testing.T) {
	frontal := [5]Point{}
	for i, p := range arcface {
		frontal[i] = Point{float32(p[0]), float32(p[1])}
	}
	rotate := func(deg float64) [5]Point {
		var out [5]Point
		s, c := math.Sincos(deg * math.Pi / 180)
		for i, p := range frontal {
			x, y := float64(p.X)-56, float64(p.Y)-56
			out[i] = Point{float32(56 + c*x - s*y), float32(56 + s*x + c*y)}
		}
		return out
	}
	turned := frontal
	turned[2].X += 20 // nose far towards the right eye
	tests := []struct {
		name            string
		five            [5]Point
		yawMax, rollMin float64
		rollMax         float64
		wantYawOver     float64
	}{
		{"frontal", frontal, 10, -5, 5, -1},
		{"roll 30", rotate(30), 10, 25, 35, -1},
		{"yaw", turned, 90, -5, 5, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := EstimatePose(tt.five)
			if tt.wantYawOver < 0 && math.Abs(p.Yaw) > tt.yawMax {
				t.Errorf("yaw %.1f", p.Yaw)
			}
			if tt.wantYawOver > 0 && math.Abs(p.Yaw) < tt.wantYawOver {
				t.Errorf("yaw %.1f, want > %.0f", p.Yaw, tt.wantYawOver)
			}
			if p.Roll < tt.rollMin || p.Roll > tt.rollMax {
				t.Errorf("roll %.1f", p.Roll)
			}
			if math.Abs(p.Pitch) > 15 {
				t.Errorf("pitch %.1f", p.Pitch)
			}
		})
	}
}

func TestFrame(t *testing.T) {
	e := testEngine(t)
	m := decodeT(t, testdata(t, nuaaImage))
	defer m.Close()
	bgr := bytes.Clone(m.ToBytes())
	ctx := context.Background()
	res, err := e.Analyze(ctx, Frame{Width: m.Cols(), Height: m.Rows(), BGR: bgr}, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Embedding != nil || !res.HasAntiSpoof {
		t.Errorf("options not honoured: embedding %v, anti-spoof %v", res.Embedding != nil, res.HasAntiSpoof)
	}
	if res.Real < 0.5 {
		t.Errorf("NUAA real capture scored real %.3f", res.Real)
	}
	// Mouth landmarks inside the box.
	for _, i := range []int{48, 54, 62, 66} {
		p := res.Face.Landmarks[i]
		b := res.Face.Box
		if p.X < b.X1 || p.X > b.X2 || p.Y < b.Y1 || p.Y > b.Y2+b.Height()/4 {
			t.Errorf("landmark %d %v outside box %v", i, p, b)
		}
	}
	if _, err := e.ProcessFrame(ctx, Frame{Width: 10, Height: 10, BGR: make([]byte, 299)}, Options{}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("short frame: %v", err)
	}
}
