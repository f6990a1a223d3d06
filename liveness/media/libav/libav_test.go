package libav

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/cputime"
	"github.com/trustid/trustid/liveness/media"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
}

func testdata(t testing.TB, rel string) string {
	t.Helper()
	root := os.Getenv("TRUSTID_TESTDATA")
	p := filepath.Join(root, rel)
	if root != "" {
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

// synth makes a small clip with the ffmpeg command line's test sources.
func synth(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...), "-y", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg synth: %v: %s", err, b)
	}
	return out
}

const tone = "sine=frequency=440:sample_rate=44100"

// clipCase is one container the decoders must read alike.
type clipCase struct {
	name string
	make func(t *testing.T) string
	lim  media.Limits
	fps  float64
}

// decoder is a Decoder at the case's rate and limits.
func (c clipCase) decoder() *Decoder {
	d := New()
	d.FPS, d.Limits = c.fps, c.lim
	return d
}

// decode makes the case's file and decodes it with c.decoder(), returning
// the file's bytes and the decoder too.
func (c clipCase) decode(t *testing.T) ([]byte, *Decoder, *media.Clip) {
	t.Helper()
	data, err := os.ReadFile(c.make(t))
	if err != nil {
		t.Fatal(err)
	}
	d := c.decoder()
	clip, err := d.Decode(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	return data, d, clip
}

// clipCases are the containers, codecs and shapes of evidence both
// decoders read: GRID's MPEG-PS, the browsers' and phones' containers, a
// frame larger than the output side (scaled), an odd frame width (the
// channel swap's last pixels of a row), BT.709 and full-range colours, a
// width not a multiple of 8 or odd, and an odd height (the direct
// conversion's colour details, its plain C converter, and a picture it
// leaves to the graph), a video that starts after its audio (the first frame repeated
// from 0), a rotated phone recording, and video-only evidence for the
// action challenge.
func clipCases(t *testing.T) []clipCase {
	grid := testdata(t, "talking/grid/bbaf2n.mpg")
	return []clipCase{
		{"grid mpeg-ps", func(t *testing.T) string { return grid }, media.Limits{}, 25},
		{"grid at 10 fps", func(t *testing.T) string { return grid }, media.Limits{}, 10},
		{"mp4 h264 aac, index last", func(t *testing.T) string {
			return synth(t, "a.mp4", "-i", grid, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, media.Limits{}, 25},
		{"webm vp8 opus", func(t *testing.T) string {
			return synth(t, "a.webm", "-i", grid, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")
		}, media.Limits{}, 25},
		{"1280x720 at 30 fps, scaled", func(t *testing.T) string {
			return synth(t, "b.mp4", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=3",
				"-f", "lavfi", "-i", tone, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart")
		}, media.Limits{}, 25},
		{"odd size 333x251, 4:4:4 mjpeg", func(t *testing.T) string {
			return synth(t, "o.avi", "-f", "lavfi", "-i", "testsrc2=size=334x252:rate=25:duration=3", "-f", "lavfi", "-i", tone, "-t", "3",
				"-vf", "scale=333:251", "-pix_fmt", "yuvj444p", "-c:v", "mjpeg", "-c:a", "mp2")
		}, media.Limits{}, 25},
		{"bt.709 colours", func(t *testing.T) string {
			return synth(t, "h.mp4", "-i", grid, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
				"-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709")
		}, media.Limits{}, 25},
		{"4:2:0 width 330 (not a multiple of 8)", func(t *testing.T) string {
			return synth(t, "w.webm", "-f", "lavfi", "-i", "testsrc2=size=330x240:rate=25:duration=3", "-f", "lavfi", "-i", tone, "-t", "3",
				"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")
		}, media.Limits{}, 25},
		{"full range 4:2:0 mjpeg", func(t *testing.T) string {
			return synth(t, "k.avi", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-f", "lavfi", "-i", tone, "-t", "3",
				"-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-c:a", "mp2")
		}, media.Limits{}, 25},
		{"full range 4:2:0 mjpeg, odd width", func(t *testing.T) string {
			return synth(t, "l.avi", "-f", "lavfi", "-i", "testsrc2=size=334x240:rate=25:duration=3", "-f", "lavfi", "-i", tone, "-t", "3",
				"-vf", "scale=333:240", "-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-c:a", "mp2")
		}, media.Limits{}, 25},
		{"full range 4:2:0 mjpeg, odd height", func(t *testing.T) string {
			return synth(t, "j.avi", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-f", "lavfi", "-i", tone, "-t", "3",
				"-vf", "scale=320:239", "-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-c:a", "mp2")
		}, media.Limits{}, 25},
		{"video starts 120 ms after the audio", func(t *testing.T) string {
			return synth(t, "c.mkv", "-itsoffset", "0.12", "-i", grid, "-i", grid, "-map", "0:v", "-map", "1:a",
				"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus")
		}, media.Limits{}, 25},
		{"rotated phone recording", func(t *testing.T) string {
			return synth(t, "r.mp4", "-i", grid, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-metadata:s:v:0", "rotate=90")
		}, media.Limits{}, 25},
		{"video only, action evidence", func(t *testing.T) string {
			return synth(t, "v.webm", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
				"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8")
		}, media.Limits{VideoOnly: true}, 25},
	}
}

// TestSameAsFFmpeg: the in-process decoder returns the frames and samples
// of the ffmpeg child process (media.Decoder) byte for byte, so switching
// decoders changes no decision (clipCases).
func TestSameAsFFmpeg(t *testing.T) {
	needFFmpeg(t)
	for _, tt := range clipCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.make(t)
			cli := media.NewDecoder()
			cli.Timeout, cli.FPS, cli.Limits = 2*time.Minute, tt.fps, tt.lim
			want, err := cli.DecodeFile(context.Background(), f)
			if err != nil {
				t.Fatalf("ffmpeg: %v", err)
			}
			got, err := tt.decoder().DecodeFile(context.Background(), f)
			if err != nil {
				t.Fatalf("libav: %v", err)
			}
			if len(got.Frames) != len(want.Frames) || got.FPS != want.FPS {
				t.Fatalf("%d frames at %g fps, ffmpeg %d at %g", len(got.Frames), got.FPS, len(want.Frames), want.FPS)
			}
			for i, g := range got.Frames {
				w := want.Frames[i]
				if g.T != w.T || g.Width != w.Width || g.Height != w.Height || !bytes.Equal(g.BGR, w.BGR) {
					t.Fatalf("frame %d differs: %v %dx%d, ffmpeg %v %dx%d", i, g.T, g.Width, g.Height, w.T, w.Width, w.Height)
				}
			}
			if got.Audio.Rate != want.Audio.Rate || !equal16(got.Audio.Samples, want.Audio.Samples) {
				t.Fatalf("audio: %d samples at %d Hz, ffmpeg %d at %d (or they differ)", len(got.Audio.Samples), got.Audio.Rate, len(want.Audio.Samples), want.Audio.Rate)
			}
			t.Logf("%d frames %dx%d, %d samples: identical", len(got.Frames), got.Frames[0].Width, got.Frames[0].Height, len(got.Audio.Samples))
		})
	}
}

// TestAudioFirst: decoding the audio first returns the clip of the
// interleaved decode and hands its audio over before the first frame is
// decoded; not at all for video-only evidence, nor when the video packets
// are more than the queue holds (then the streams decode interleaved).
func TestAudioFirst(t *testing.T) {
	needFFmpeg(t)
	const manyPackets = "more video packets than the queue holds"
	cases := append(clipCases(t), clipCase{manyPackets, func(t *testing.T) string {
		return synth(t, "m.mkv", "-f", "lavfi", "-i", "testsrc2=size=96x96:rate=1000:duration=5",
			"-f", "lavfi", "-i", tone, "-t", "5", "-c:v", "mpeg4", "-q:v", "31", "-c:a", "mp2")
	}, media.Limits{}, 25})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			data, _, want := tt.decode(t)
			// A pool holding one buffer of the frame size: the first
			// frame decoded takes it, so the callback still finds it
			// there only when the audio comes before every frame.
			size := want.Frames[0].Width*want.Frames[0].Height*3 + dstPad
			mark := make([]byte, size)
			first := tt.decoder()
			first.Pool.Put(mark)
			calls, early := 0, false
			var handed media.Audio
			got, err := first.DecodeAudioFirst(context.Background(), bytes.NewReader(data), func(a media.Audio) {
				calls++
				handed = a
				b := first.Pool.Get(size)
				early = &b[0] == &mark[0]
				first.Pool.Put(b)
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Frames) != len(want.Frames) || got.FPS != want.FPS || got.SourceFPS != want.SourceFPS {
				t.Fatalf("%d frames at %g fps, interleaved %d at %g", len(got.Frames), got.FPS, len(want.Frames), want.FPS)
			}
			for i, g := range got.Frames {
				w := want.Frames[i]
				if g.T != w.T || g.Width != w.Width || g.Height != w.Height || !bytes.Equal(g.BGR, w.BGR) {
					t.Fatalf("frame %d differs", i)
				}
			}
			if got.Audio.Rate != want.Audio.Rate || !equal16(got.Audio.Samples, want.Audio.Samples) {
				t.Fatalf("audio: %d samples, interleaved %d (or they differ)", len(got.Audio.Samples), len(want.Audio.Samples))
			}
			wantCalls := 1
			if tt.lim.VideoOnly || tt.name == manyPackets {
				wantCalls = 0
			}
			switch {
			case calls != wantCalls:
				t.Fatalf("audio handed over %d times, want %d", calls, wantCalls)
			case calls == 1 && !early:
				t.Fatal("audio handed over after the first frame")
			case calls == 1 && (handed.Rate != got.Audio.Rate || !equal16(handed.Samples, got.Audio.Samples)):
				t.Fatalf("audio handed over: %d samples, the clip's %d", len(handed.Samples), len(got.Audio.Samples))
			}
		})
	}
}

// TestPoolReuse: a decode into the buffers of a released clip returns the
// frames of a decode into fresh memory (every byte is overwritten), for a
// clip of the same size and one of another.
func TestPoolReuse(t *testing.T) {
	needFFmpeg(t)
	grid := testdata(t, "talking/grid/bbaf2n.mpg")
	other := testdata(t, "talking/grid/lbax4n.mpg")
	small := synth(t, "s.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
		"-f", "lavfi", "-i", tone, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
	fresh := New()
	fresh.Pool.MaxBytes = -1
	pooled := New()
	for _, tt := range []struct{ name, first, second string }{
		{"same size", grid, other},
		{"other size", grid, small},
		{"back to the first size", small, grid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c1, err := pooled.DecodeFile(context.Background(), tt.first)
			if err != nil {
				t.Fatal(err)
			}
			for i := range c1.Frames {
				clear(c1.Frames[i].BGR) // what the next decode must overwrite
			}
			c1.Release()
			want, err := fresh.DecodeFile(context.Background(), tt.second)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pooled.DecodeFile(context.Background(), tt.second)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Frames) != len(want.Frames) {
				t.Fatalf("%d frames, want %d", len(got.Frames), len(want.Frames))
			}
			reused := 0
			for i, g := range got.Frames {
				if !bytes.Equal(g.BGR, want.Frames[i].BGR) {
					t.Fatalf("frame %d differs from a fresh decode", i)
				}
				for _, f := range c1.Frames {
					if len(f.BGR) == len(g.BGR) && &f.BGR[0] == &g.BGR[0] {
						reused++
						break
					}
				}
			}
			if sameSize := c1.Frames[0].Width == got.Frames[0].Width && c1.Frames[0].Height == got.Frames[0].Height; sameSize && reused == 0 {
				t.Fatal("no buffer of the released clip was reused")
			}
			got.Release()
		})
	}
}

// TestPadding: the scaler writes within the room a frame buffer has past
// its pixels, with a margin (half of it untouched).
func TestPadding(t *testing.T) {
	needFFmpeg(t)
	for _, tt := range clipCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			data, d, probe := tt.decode(t)
			n := probe.Frames[0].Width * probe.Frames[0].Height * 3
			d.Pool.MaxBytes = int64(len(probe.Frames)+1) * int64(n+dstPad)
			var bufs [][]byte
			for range len(probe.Frames) + 1 {
				b := bytes.Repeat([]byte{0xab}, n+dstPad)
				bufs = append(bufs, b)
				d.Pool.Put(b)
			}
			if _, err := d.Decode(context.Background(), data); err != nil {
				t.Fatal(err)
			}
			worst := 0
			for _, b := range bufs {
				for k := len(b) - 1; k >= n; k-- {
					if b[k] != 0xab {
						worst = max(worst, k+1-n)
						break
					}
				}
			}
			if worst > dstPad/2 {
				t.Fatalf("%d bytes written past the pixels, room %d", worst, dstPad)
			}
			t.Logf("%d bytes written past the pixels", worst)
		})
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRejects: unusable evidence fails with the sentinel errors of
// liveness/media, as the ffmpeg decoder's do (media's TestDecodeRejects).
func TestRejects(t *testing.T) {
	needFFmpeg(t)
	mono := "sine=frequency=440:sample_rate=16000"
	tests := []struct {
		name string
		make func(t *testing.T) string
		lim  media.Limits
		want error
		side int
	}{
		{"no audio track", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast")
		}, media.Limits{}, media.ErrNoAudio, 0},
		{"audio only", func(t *testing.T) string { return synth(t, "a.wav", "-f", "lavfi", "-i", mono+":duration=3") }, media.Limits{}, media.ErrNoVideo, 0},
		{"silent", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
				"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, media.Limits{}, media.ErrSilent, 0},
		{"too short", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1",
				"-f", "lavfi", "-i", mono, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, media.Limits{}, media.ErrTooShort, 0},
		{"too long", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=12",
				"-f", "lavfi", "-i", mono, "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, media.Limits{}, media.ErrTooLong, 0},
		{"too small frames", func(t *testing.T) string {
			return synth(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=3",
				"-f", "lavfi", "-i", mono, "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
		}, media.Limits{}, media.ErrDimensions, 0},
		{"picture too large for the limits", func(t *testing.T) string {
			return synth(t, "a.webm", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=5:duration=1",
				"-f", "lavfi", "-i", mono, "-t", "1", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")
		}, media.Limits{MaxSide: 400}, media.ErrDimensions, 320},
		{"codec not accepted", func(t *testing.T) string {
			return synth(t, "a.mkv", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
				"-f", "lavfi", "-i", mono, "-t", "3", "-c:v", "ffv1", "-c:a", "pcm_s16le")
		}, media.Limits{}, media.ErrUnreadable, 0},
		{"container not accepted", func(t *testing.T) string {
			return synth(t, "a.flv", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
				"-f", "lavfi", "-i", tone, "-t", "3", "-c:v", "flv1", "-c:a", "mp3")
		}, media.Limits{}, media.ErrUnreadable, 0},
		{"garbage", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "g.bin")
			if err := os.WriteFile(p, bytes.Repeat([]byte("not a video "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, media.Limits{}, media.ErrUnreadable, 0},
		{"too large", func(t *testing.T) string { return testdata(t, "talking/grid/bbaf2n.mpg") }, media.Limits{MaxBytes: 100_000}, media.ErrTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.make(t)
			d := New()
			d.Limits = tt.lim
			if tt.side != 0 {
				d.MaxOutputSide = tt.side
			}
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			if _, err := d.DecodeVideo(context.Background(), fh); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCancel: a cancelled context stops a decode with the context's error.
func TestCancel(t *testing.T) {
	grid := testdata(t, "talking/grid/bbaf2n.mpg")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New().DecodeFile(ctx, grid); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestTimeout: a decode that outlives Timeout fails as unreadable evidence
// (a clip that takes that long is hostile), not as a fault.
func TestTimeout(t *testing.T) {
	grid := testdata(t, "talking/grid/bbaf2n.mpg")
	d := New()
	d.Timeout = time.Nanosecond
	_, err := d.DecodeFile(context.Background(), grid)
	if !errors.Is(err, media.ErrUnreadable) {
		t.Fatalf("err = %v, want ErrUnreadable (timed out)", err)
	}
}

// TestBusy: with every slot taken, a call fails with media.ErrBusy.
func TestBusy(t *testing.T) {
	d := New()
	d.MaxConcurrent, d.QueueWait = 1, 20*time.Millisecond
	release, err := d.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(context.Background(), []byte("x")); !errors.Is(err, media.ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	release()
	if _, err := d.Decode(context.Background(), []byte("not a video")); !errors.Is(err, media.ErrUnreadable) {
		t.Fatalf("after release: err = %v, want ErrUnreadable", err)
	}
}

// FuzzDecode: hostile input never crashes the decoder and fails only with
// the media sentinels (a fault would be a bug); decoding the audio first
// fails alike or returns as many frames and the same audio.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("not a video"))
	f.Add([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08mdat"))
	f.Add([]byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04webm"))
	f.Add([]byte("\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8\x00\x00\x01\xe0"))
	if p := os.Getenv("TRUSTID_TESTDATA"); p != "" {
		if b, err := os.ReadFile(filepath.Join(p, "talking/grid/bbaf2n.mpg")); err == nil {
			f.Add(b[:min(len(b), 64<<10)])
			f.Add(b[:len(b)/2])
			// Damaged in the middle: the demuxer resyncs or fails there,
			// after the frames before it.
			bad := bytes.Clone(b)
			for i := len(bad) / 2; i < min(len(bad), len(bad)/2+4096); i++ {
				bad[i] = byte(i * 7)
			}
			f.Add(bad)
		}
	}
	d := New()
	d.Timeout = 5 * time.Second
	sentinels := []error{media.ErrUnreadable, media.ErrNoVideo, media.ErrNoAudio, media.ErrSilent, media.ErrTooShort,
		media.ErrTooLong, media.ErrDimensions, media.ErrTooLarge}
	f.Fuzz(func(t *testing.T, b []byte) {
		clip, err := d.Decode(context.Background(), b)
		// Decoding the audio first ends the same way.
		first, ferr := d.DecodeAudioFirst(context.Background(), bytes.NewReader(b), func(media.Audio) {})
		for _, s := range sentinels {
			if errors.Is(err, s) != errors.Is(ferr, s) {
				t.Fatalf("interleaved: %v; audio first: %v", err, ferr)
			}
		}
		if err == nil {
			if ferr != nil || len(first.Frames) != len(clip.Frames) || !equal16(first.Audio.Samples, clip.Audio.Samples) {
				t.Fatalf("audio first: %v, %d frames, %d samples; interleaved %d frames, %d samples",
					ferr, len(first.Frames), len(first.Audio.Samples), len(clip.Frames), len(clip.Audio.Samples))
			}
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("not a media sentinel: %v", err)
	})
}

func BenchmarkDecodeGRID(b *testing.B) {
	f := testdata(b, "talking/grid/bbaf2n.mpg")
	data, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	d := New()
	b.ReportAllocs()
	c0 := cputime.Process()
	for b.Loop() {
		clip, err := d.Decode(context.Background(), data)
		if err != nil {
			b.Fatal(err)
		}
		clip.Release() // as the service does once the decision is made
	}
	// CPU per decode (user+system, every thread): on a shared machine a
	// steadier figure than the wall time.
	cputime.ReportPerOp(b, c0)
}
