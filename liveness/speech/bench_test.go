package speech

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/internal/cputime"
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
	c0 := cputime.Process()
	for b.Loop() {
		if _, err := r.Score(ctx, pcm, "4829"); err != nil {
			b.Fatal(err)
		}
	}
	cputime.ReportPerOp(b, c0)
}
