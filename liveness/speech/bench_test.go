package speech

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/trustid/trustid/liveness/media"
)

// gridAudio is the 16 kHz audio of a 3 s GRID clip (talking/grid), the
// clip the liveness latency report uses.
func gridAudio(tb testing.TB, name string) []int16 {
	tb.Helper()
	dir := filepath.Join(os.Getenv("TRUSTID_TESTDATA"), "talking", "grid")
	_, err := os.Stat(dir)
	_, ffErr := exec.LookPath("ffmpeg")
	if os.Getenv("TRUSTID_TESTDATA") == "" || err != nil || ffErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no GRID clips under TRUSTID_TESTDATA or no ffmpeg")
		}
		tb.Skip("no GRID clips under TRUSTID_TESTDATA or no ffmpeg")
	}
	clip, err := media.NewDecoder().DecodeFile(context.Background(), filepath.Join(dir, name+".mpg"))
	if err != nil {
		tb.Fatal(err)
	}
	return clip.Audio.Samples
}

// BenchmarkScoreGRID is the spoken-digit check on a 3 s clip as the
// liveness decision runs it: voice activity, padded embeddings, the head
// and the sequence scoring.
func BenchmarkScoreGRID(b *testing.B) {
	r := testRecognizer(b)
	pcm := gridAudio(b, "bbaf2n")
	ctx := context.Background()
	b.ReportAllocs()
	r0 := rusage(b)
	for b.Loop() {
		if _, err := r.Score(ctx, pcm, "4829"); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, r0)
}

// reportCPU reports the process's CPU time (user + system) per iteration
// as cpu-ms/op: on a shared machine it moves far less with the load than
// ns/op. Call it after b.Loop has finished.
func reportCPU(b *testing.B, start syscall.Rusage) {
	var end syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &end); err != nil {
		b.Fatal(err)
	}
	ms := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Nano()+r.Stime.Nano()) / 1e6
	}
	b.ReportMetric((ms(end)-ms(start))/float64(b.N), "cpu-ms/op")
}

func rusage(b *testing.B) syscall.Rusage {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		b.Fatal(err)
	}
	return r
}
