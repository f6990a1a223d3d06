package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// testdata returns $TRUSTID_TESTDATA/rel, skipping (or failing in CI) when absent.
func testdata(t testing.TB, rel string) string {
	t.Helper()
	root := os.Getenv("TRUSTID_TESTDATA")
	p := filepath.Join(root, rel)
	if root == "" {
		p = ""
	}
	if p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("test data %s missing (TRUSTID_TESTDATA=%q)", rel, root)
	}
	t.Skipf("test data %s missing (TRUSTID_TESTDATA=%q)", rel, root)
	return ""
}

// testDecoder is NewDecoder with a timeout generous enough for a loaded CI
// machine (the timeout itself is not under test).
func testDecoder() *Decoder {
	d := NewDecoder()
	d.Timeout = 2 * time.Minute
	return d
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
}

// synth makes a small video with ffmpeg's test sources.
func synth(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), "-y", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg synth: %v: %s", err, b)
	}
	return out
}

func TestDecodeGRID(t *testing.T) {
	needFFmpeg(t)
	dir := testdata(t, "talking/grid")
	files, _ := filepath.Glob(filepath.Join(dir, "*.mpg"))
	if len(files) == 0 {
		t.Fatal("no GRID clips")
	}
	d := testDecoder()
	d.FPS = 10
	for _, f := range files[:3] {
		t.Run(filepath.Base(f), func(t *testing.T) {
			clip, err := d.DecodeFile(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(clip.Frames); n < 29 || n > 31 {
				t.Errorf("%d frames at 10 fps from a 3 s clip", n)
			}
			fr := clip.Frames[0]
			if fr.Width != 360 || fr.Height != 288 || len(fr.BGR) != 360*288*3 {
				t.Errorf("frame %dx%d (%d bytes)", fr.Width, fr.Height, len(fr.BGR))
			}
			if dd := clip.Audio.Duration(); dd < 2900*time.Millisecond || dd > 3100*time.Millisecond {
				t.Errorf("audio %s", dd)
			}
			if lvl := LoudLevel(clip.Audio); lvl < -35 {
				t.Errorf("speech level %.1f dBFS", lvl)
			}
			if clip.Frames[10].T != time.Second {
				t.Errorf("frame 10 at %s", clip.Frames[10].T)
			}
		})
	}
}

func TestDecodeContainers(t *testing.T) {
	needFFmpeg(t)
	grid := testdata(t, "talking/grid/bbaf2n.mpg")
	tests := []struct {
		name string
		args []string
	}{
		{"mp4", []string{"-i", grid, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}},
		{"webm", []string{"-i", grid, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"}},
		{"mp4 faststart", []string{"-i", grid, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart"}},
		{"mpeg-ps", []string{"-i", grid, "-c", "copy", "-f", "mpeg"}},
	}
	ext := map[string]string{"mp4": "x.mp4", "webm": "x.webm", "mp4 faststart": "y.mp4", "mpeg-ps": "x.mpg"}
	warm := testDecoder()
	warm.FPS, warm.Warm = 10, 1
	defer warm.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := synth(t, ext[tt.name], tt.args...)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The first call finds the pool empty and pipes into a fresh
			// process; the second takes the warm one it left.
			for _, d := range []*Decoder{warm, warm} {
				clip, err := d.DecodeVideo(context.Background(), bytes.NewReader(b))
				if err != nil {
					t.Fatalf("warm=%d: %v", d.Warm, err)
				}
				if n := len(clip.Frames); n < 29 || n > 31 {
					t.Errorf("warm=%d: %d frames", d.Warm, n)
				}
				if d := clip.Audio.Duration(); d < 2800*time.Millisecond {
					t.Errorf("audio %s", d)
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	needFFmpeg(t)
	tone := "sine=frequency=440:sample_rate=16000"
	tests := []struct {
		name string
		make func(t *testing.T) string
		lim  Limits
		want error
		side int // MaxOutputSide when not zero
	}{
		{"no audio track", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast")
		}, Limits{}, ErrNoAudio, 0},
		{"audio only", func(t *testing.T) string {
			return synth(t, "a.wav", "-f", "lavfi", "-i", tone+":duration=3")
		}, Limits{}, ErrNoVideo, 0},
		{"silent", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
				"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, Limits{}, ErrSilent, 0},
		{"too short", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1",
				"-f", "lavfi", "-i", tone, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, Limits{}, ErrTooShort, 0},
		{"too long", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=12",
				"-f", "lavfi", "-i", tone, "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, Limits{}, ErrTooLong, 0},
		{"too small frames", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=3",
				"-f", "lavfi", "-i", tone, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, Limits{}, ErrDimensions, 0},
		// The picture is refused from the stream header (max_pixels), before
		// any frame is decoded: the 7680x4320 WebM of issue #16 in small.
		{"picture too large for the limits", func(t *testing.T) string {
			return synth(t, "a.webm", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=5:duration=1",
				"-f", "lavfi", "-i", tone, "-t", "1", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")
		}, Limits{MaxSide: 400}, ErrDimensions, 320}, // scaled to 320x240 it would pass: the header check refuses
		{"codec not accepted", func(t *testing.T) string {
			return synth(t, "a.mkv", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
				"-f", "lavfi", "-i", tone, "-t", "3", "-c:v", "ffv1", "-c:a", "pcm_s16le")
		}, Limits{}, ErrUnreadable, 0},
		{"garbage", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "g.bin")
			os.WriteFile(p, bytes.Repeat([]byte("not a video "), 1000), 0o600)
			return p
		}, Limits{}, ErrUnreadable, 0},
		{"too large", func(t *testing.T) string {
			return testdata(t, "talking/grid/bbaf2n.mpg")
		}, Limits{MaxBytes: 100_000}, ErrTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.make(t)
			d := testDecoder()
			d.Limits = tt.lim
			if tt.side != 0 {
				d.MaxOutputSide = tt.side
			}
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			_, err = d.DecodeVideo(context.Background(), fh)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDecodeBusy: when every decode slot stays taken, a call fails with
// ErrBusy after QueueWait instead of starting another ffmpeg.
func TestDecodeBusy(t *testing.T) {
	needFFmpeg(t)
	d := testDecoder()
	d.MaxConcurrent, d.QueueWait = 1, 50*time.Millisecond
	release, err := d.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.DecodeVideo(context.Background(), bytes.NewReader([]byte("x")))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	release()
	_, err = d.DecodeVideo(context.Background(), bytes.NewReader([]byte("not a video")))
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("after release: err = %v, want ErrUnreadable", err)
	}
}

func sineWAV(rate, channels int, dur time.Duration, amp float64) []byte {
	n := int(dur.Seconds() * float64(rate))
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * 32767 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
	}
	if channels == 1 {
		return EncodeWAV(Audio{Rate: rate, Samples: s})
	}
	st := make([]int16, 0, 2*n)
	for _, v := range s {
		st = append(st, v, v)
	}
	b := EncodeWAV(Audio{Rate: rate, Samples: st})
	// patch channels, byte rate and block align for stereo
	b[22] = 2
	putLE32(b[28:], uint32(rate*4))
	b[32] = 4
	return b
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func TestParseWAV(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		samples int
		err     error
	}{
		{"16k mono", sineWAV(16000, 1, time.Second, 0.5), 16000, nil},
		{"8k mono", sineWAV(8000, 1, time.Second, 0.5), 16000, nil},
		{"48k stereo", sineWAV(48000, 2, time.Second, 0.5), 16000, nil},
		{"44.1k mono", sineWAV(44100, 1, time.Second, 0.5), 16000, nil},
		{"empty", nil, 0, ErrUnreadable},
		{"not riff", []byte("RIFX0000WAVEfmt "), 0, ErrUnreadable},
		{"no data", sineWAV(16000, 1, 0, 0.5)[:36], 0, ErrUnreadable},
		{"8 bit", func() []byte { b := sineWAV(16000, 1, time.Second, 0.5); b[34] = 8; return b }(), 0, ErrUnreadable},
		{"float", func() []byte { b := sineWAV(16000, 1, time.Second, 0.5); b[20] = 3; return b }(), 0, ErrUnreadable},
		{"streaming size", func() []byte { b := sineWAV(16000, 1, time.Second, 0.5); putLE32(b[40:], 0xFFFFFFFF); return b }(), 16000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseWAV(tt.b)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if a.Rate != SampleRate || len(a.Samples) != tt.samples {
				t.Errorf("rate %d, %d samples; want %d", a.Rate, len(a.Samples), tt.samples)
			}
			if lvl := RMSdB(a.Samples); math.Abs(lvl-(-9.03)) > 0.5 {
				t.Errorf("level %.2f dBFS, want about -9 (sine at half scale)", lvl)
			}
		})
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(sineWAV(16000, 1, 100*time.Millisecond, 0.5))
	f.Add(sineWAV(8000, 2, 50*time.Millisecond, 0.5))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseWAV(b)
		if err == nil && a.Rate != SampleRate {
			t.Fatalf("rate %d", a.Rate)
		}
	})
}

func jpegFrame(t testing.TB, w, h int, shade uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{shade, uint8(x), uint8(y), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func frameList(t testing.TB, n int, every time.Duration, w, h int) []JPEGFrame {
	fs := make([]JPEGFrame, n)
	for i := range fs {
		fs[i] = JPEGFrame{T: time.Duration(i) * every, JPEG: jpegFrame(t, w, h, uint8(i))}
	}
	return fs
}

func TestDecodeFrames(t *testing.T) {
	wav3 := sineWAV(16000, 1, 3*time.Second, 0.3)
	tests := []struct {
		name   string
		frames []JPEGFrame
		wav    []byte
		lim    Limits
		want   int
		err    error
	}{
		{"30 fps sampled to 10", frameList(t, 90, time.Second/30, 160, 120), wav3, Limits{}, 30, nil},
		{"no frames", nil, wav3, Limits{}, 0, ErrNoVideo},
		{"no audio", frameList(t, 30, 100*time.Millisecond, 160, 120), nil, Limits{}, 0, ErrNoAudio},
		{"silent", frameList(t, 30, 100*time.Millisecond, 160, 120), sineWAV(16000, 1, 3*time.Second, 0), Limits{}, 0, ErrSilent},
		{"too short", frameList(t, 10, 100*time.Millisecond, 160, 120), sineWAV(16000, 1, time.Second, 0.3), Limits{}, 0, ErrTooShort},
		{"too many frames", frameList(t, 20, 100*time.Millisecond, 160, 120), wav3, Limits{MaxFrames: 10}, 0, ErrTooManyFrames},
		{"too large", frameList(t, 30, 100*time.Millisecond, 160, 120), wav3, Limits{MaxBytes: 1000}, 0, ErrTooLarge},
		{"tiny frames", frameList(t, 30, 100*time.Millisecond, 32, 32), wav3, Limits{}, 0, ErrDimensions},
		{"timestamps backwards", func() []JPEGFrame {
			fs := frameList(t, 30, 100*time.Millisecond, 160, 120)
			fs[5].T = fs[3].T
			return fs
		}(), wav3, Limits{}, 0, ErrTimestamps},
		{"bad jpeg", func() []JPEGFrame {
			fs := frameList(t, 30, 100*time.Millisecond, 160, 120)
			fs[0].JPEG = []byte("nope")
			return fs
		}(), wav3, Limits{}, 0, ErrUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clip, err := DecodeFrames(tt.frames, tt.wav, 10, tt.lim)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if len(clip.Frames) != tt.want {
				t.Errorf("%d frames, want %d", len(clip.Frames), tt.want)
			}
			// Frame k is the source frame nearest k*100 ms: source index 3k,
			// whose red channel (BGR[2]) was set to 3k.
			if got := clip.Frames[5].BGR[2]; got < 13 || got > 17 {
				t.Errorf("frame 5 has shade %d, want about 15", got)
			}
		})
	}
}

func FuzzDecodeFrames(f *testing.F) {
	small := jpegFrame(f, 100, 100, 1)
	wav := sineWAV(16000, 1, 2100*time.Millisecond, 0.3)
	f.Add(small, wav, int64(0), int64(2100))
	f.Add([]byte("\xff\xd8\xff"), []byte("RIFF"), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, img, wav []byte, t0, t1 int64) {
		frames := []JPEGFrame{{T: time.Duration(t0) * time.Millisecond, JPEG: img}, {T: time.Duration(t1) * time.Millisecond, JPEG: img}}
		clip, err := DecodeFrames(frames, wav, 10, Limits{})
		if err == nil && (len(clip.Frames) == 0 || len(clip.Audio.Samples) == 0) {
			t.Fatal("accepted an empty clip")
		}
	})
}

func FuzzReadPPMStream(f *testing.F) {
	f.Add([]byte("P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06"))
	f.Add([]byte("P6 1 1 255 abcP6 1 1 255 def"))
	f.Add([]byte("P5\n1 1\n255\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := readPPMStream(bufio.NewReader(bytes.NewReader(b)), 10, 640, 10, nil)
		if err != nil {
			return
		}
		for _, fr := range frames {
			if len(fr.BGR) != fr.Width*fr.Height*3 {
				t.Fatalf("frame %dx%d with %d bytes", fr.Width, fr.Height, len(fr.BGR))
			}
		}
	})
}

func box(typ string, n int) []byte {
	b := make([]byte, 8+n)
	b[0], b[1], b[2], b[3] = byte((8+n)>>24), byte((8+n)>>16), byte((8+n)>>8), byte(8+n)
	copy(b[4:], typ)
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestNeedsSeek(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"moov first", cat(box("ftyp", 8), box("moov", 20), box("mdat", 100)), false},
		{"mdat first", cat(box("ftyp", 8), box("free", 4), box("mdat", 100), box("moov", 20)), true},
		{"truncated", cat(box("ftyp", 8), box("mdat", 100))[:40], true},
		{"webm", []byte("\x1aE\xdf\xa3 webm bytes"), false},
		{"mpeg-ps", []byte("\x00\x00\x01\xba mpeg"), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsSeek(tt.b); got != tt.want {
				t.Errorf("needsSeek = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzNeedsSeek(f *testing.F) {
	f.Add(cat(box("ftyp", 8), box("moov", 20), box("mdat", 100)))
	f.Add(cat(box("ftyp", 8), []byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 16}))
	f.Fuzz(func(t *testing.T, b []byte) { needsSeek(b) })
}

func TestPPMChannelOrder(t *testing.T) {
	frames, err := readPPMStream(bufio.NewReader(bytes.NewReader([]byte("P6\n1 1\n255\n\x0a\x14\x1e"))), 10, 640, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := frames[0].BGR; got[0] != 0x1e || got[2] != 0x0a {
		t.Errorf("BGR = %v, want blue first", got)
	}
}

func BenchmarkDecodeGRID(b *testing.B) {
	needFFmpeg(b)
	f := testdata(b, "talking/grid/bbaf2n.mpg")
	d := testDecoder()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeFile(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRGBToBGR(t *testing.T) {
	for _, n := range []int{0, 1, 4, 5, 9} {
		p := make([]byte, 3*n)
		for i := range p {
			p[i] = byte(i)
		}
		rgbToBGR(p)
		for i := 0; i < n; i++ {
			if p[3*i] != byte(3*i+2) || p[3*i+1] != byte(3*i+1) || p[3*i+2] != byte(3*i) {
				t.Fatalf("%d pixels: pixel %d = %v", n, i, p[3*i:3*i+3])
			}
		}
	}
}

func BenchmarkReadPPMStream(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; i < 75; i++ { // 3 s of 360x288 at 25 fps
		buf.WriteString("P6\n360 288\n255\n")
		buf.Write(make([]byte, 360*288*3))
	}
	data := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readPPMStream(bufio.NewReaderSize(bytes.NewReader(data), 1<<16), 100, 640, 25, nil); err != nil {
			b.Fatal(err)
		}
	}
}
