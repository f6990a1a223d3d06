package fakeclip

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// DubAudio is exactly the audio Build writes as genuine.wav (the
// synthetic-voice check trains on it as the attack make-fake-clip makes).
func TestDubAudioIsBuildsAudio(t *testing.T) {
	d := testdata(t)
	grid := filepath.Join(d, "talking", "grid", "bbaf2n.mpg")
	c, err := Build(context.Background(), Options{Grid: grid, Digits: "3906", Other: "1111", Dir: t.TempDir(), EnvelopeWeight: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := DubAudio(context.Background(), Options{Grid: grid, EnvelopeWeight: 0.5}, "3906")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(c.GenuineWAV)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(WAV(pcm, Rate), want) {
		t.Error("DubAudio differs from Build's genuine.wav")
	}
	if _, err := DubAudio(context.Background(), Options{Grid: grid}, "39a6"); err == nil {
		t.Error("DubAudio accepted bad digits")
	}
}
