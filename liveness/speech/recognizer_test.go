package speech

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/trustid/trustid/liveness/media"
)

var (
	recOnce sync.Once
	recVal  *EmbeddingRecognizer
	recErr  error
)

// testRecognizer shares one recogniser (with the committed head) between tests.
func testRecognizer(t testing.TB) *EmbeddingRecognizer {
	dir := modelsDir(t)
	recOnce.Do(func() { recVal, recErr = NewEmbeddingRecognizer(Config{ModelDir: dir}) })
	if recErr != nil {
		t.Fatal(recErr)
	}
	return recVal
}

// flite says text into a WAV in t.TempDir and returns 16 kHz PCM.
func flite(t testing.TB, text string) []int16 {
	t.Helper()
	if _, err := exec.LookPath("flite"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("flite not installed")
		}
		t.Skip("flite not installed")
	}
	p := filepath.Join(t.TempDir(), "say.wav")
	if out, err := exec.Command("flite", "-t", text, "-o", p).CombinedOutput(); err != nil {
		t.Fatalf("flite: %v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := media.ReadWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := Resample(a.Samples, a.Rate, SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func TestGoldenFlite(t *testing.T) {
	r := testRecognizer(t)
	pcm := flite(t, "four two nine one")
	// The accept rule tolerates a misheard digit (DefaultThreshold), so a
	// string one digit away may pass: its margin must still be negative
	// (the spoken string is the best one), but Match is not asserted.
	tests := []struct {
		name         string
		expected     string
		wantMatch    bool
		wantPositive bool
		any          bool // Match not asserted
	}{
		{"spoken digits", "4291", true, true, false},
		{"one digit changed", "4281", false, false, true},
		{"two digits changed", "4381", false, false, false},
		{"other digits", "7350", false, false, false},
		{"order swapped", "2491", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.Score(context.Background(), pcm, tt.expected)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.any && res.Match != tt.wantMatch {
				t.Errorf("match = %v (margin %.2f, decoded %s), want %v", res.Match, res.Margin, res.Digits, tt.wantMatch)
			}
			if (res.Margin > 0) != tt.wantPositive {
				t.Errorf("margin %.2f, want positive %v", res.Margin, tt.wantPositive)
			}
			if res.Digits != "4291" {
				t.Errorf("decoded %s, want 4291", res.Digits)
			}
			if res.Voiced <= 0 || len(res.Activity) == 0 || len(res.DigitConfidence) != 4 || len(res.Segments) != 4 {
				t.Errorf("incomplete result: voiced %v, %d activity, %d confidences, %d segments",
					res.Voiced, len(res.Activity), len(res.DigitConfidence), len(res.Segments))
			}
		})
	}
}

func TestScoreErrors(t *testing.T) {
	r := testRecognizer(t)
	tests := []struct {
		name     string
		pcm      []int16
		expected string
		want     error
	}{
		{"silence", make([]int16, 2*SampleRate), "4291", ErrNoSpeech},
		{"too short", make([]int16, 100), "4291", ErrAudioLength},
		{"too long", make([]int16, 13*SampleRate), "4291", ErrAudioLength},
		{"not digits", make([]int16, 2*SampleRate), "42a1", ErrExpected},
		{"empty expected", make([]int16, 2*SampleRate), "", ErrExpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Score(context.Background(), tt.pcm, tt.expected); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeadJSONRoundTrip(t *testing.T) {
	h, err := DefaultHead()
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var g Head
	if err := g.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if len(g.W1) != h.Hidden*h.In() || g.W1[7] != h.W1[7] || g.Meta.Seed != h.Meta.Seed {
		t.Error("head changed in a JSON round trip")
	}
	if len(h.Meta.HeldOut) == 0 || h.Meta.Command == "" {
		t.Errorf("committed head lacks provenance: %+v", h.Meta)
	}
	if g.Step != h.Step || g.Stride != h.Stride {
		t.Errorf("step/stride %d/%d, want %d/%d", g.Step, g.Stride, h.Step, h.Stride)
	}
	if err := g.UnmarshalJSON([]byte(`{"version":1,"classes":11,"context":2,"step_mel_frames":9,"hidden":4}`)); !errors.Is(err, ErrModel) {
		t.Errorf("step 9: err = %v, want ErrModel", err)
	}
	if err := g.UnmarshalJSON([]byte(`{"version":1,"classes":11,"context":2,"hidden":4,"w1_f32le_b64":"AAAA"}`)); !errors.Is(err, ErrModel) {
		t.Errorf("malformed head: err = %v, want ErrModel", err)
	}
}

func BenchmarkScore3s(b *testing.B) {
	r := testRecognizer(b)
	pcm := flite(b, "four two nine one")
	buf := make([]int16, 3*SampleRate)
	copy(buf[(len(buf)-len(pcm))/2:], pcm)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Score(ctx, buf, "4291"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestScoreActivity: the voice activity a caller hands in only gates the
// scoring (too little voice is ErrNoSpeech) and comes back in
// Result.Activity: with the recogniser's own activity the result is
// Score's, with another one (a silent stretch marked as voice, the voice
// marked as silence) the scores stay Score's.
func TestScoreActivity(t *testing.T) {
	r := testRecognizer(t)
	pcm := flite(t, "four two nine one")
	ctx := context.Background()
	want, err := r.Score(ctx, pcm, "4291")
	if err != nil {
		t.Fatal(err)
	}
	own, err := r.Frontend().VoiceActivity(pcm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ScoreActivity(ctx, pcm, "4291", own)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("with its own activity: %+v, %v; want %+v", got, err, want)
	}
	other := make([]float32, len(own))
	for i := range other {
		other[i] = 1 - own[i]
	}
	got, err = r.ScoreActivity(ctx, pcm, "4291", other)
	if err != nil || got.Margin != want.Margin || got.Match != want.Match || !reflect.DeepEqual(got.Segments, want.Segments) || !reflect.DeepEqual(got.Activity, other) {
		t.Fatalf("with another activity: %+v, %v; want the scores of %+v", got, err, want)
	}
	if _, err := r.ScoreActivity(ctx, pcm, "4291", make([]float32, len(own))); !errors.Is(err, ErrNoSpeech) {
		t.Errorf("activity with no voice: %v, want ErrNoSpeech", err)
	}
}

// TestScoreConcurrent: one recogniser serves concurrent requests with the
// same answers as a single one (run with -race).
func TestScoreConcurrent(t *testing.T) {
	r := testRecognizer(t)
	pcm := flite(t, "four two nine one")
	want, err := r.Score(context.Background(), pcm, "4291")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.Score(context.Background(), pcm, "4291")
			if err == nil && (got.Margin != want.Margin || got.Digits != want.Digits) {
				err = fmt.Errorf("concurrent result %s %.4f, want %s %.4f", got.Digits, got.Margin, want.Digits, want.Margin)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestAnalyzeRunsHeadOnce: Analyze, which runs the head once, gives the
// frame log posteriors, scores and standardised embeddings that
// LogPosteriors, FrameScores and Standardise give on their own, bit for bit.
func TestAnalyzeRunsHeadOnce(t *testing.T) {
	dir := modelsDir(t)
	pcm := gridAudio(t, "bbaf2n")
	for _, tc := range []struct {
		name  string
		prior float64
	}{{"no prior", 0}, {"half the prior", 0.5}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewEmbeddingRecognizer(Config{ModelDir: dir, PriorScale: &tc.prior})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tc.prior != 0 && len(r.head.LogPrior) != NumClasses {
				t.Skip("the committed head has no class prior")
			}
			a, err := r.Analyze(context.Background(), pcm)
			if err != nil {
				t.Fatal(err)
			}
			emb, err := r.front.PaddedEmbeddings(pcm, r.head.step())
			if err != nil {
				t.Fatal(err)
			}
			lp, scores := r.head.LogPosteriors(emb), r.head.FrameScores(emb, tc.prior)
			if !slices.Equal(a.LogPost, lp) || !slices.Equal(a.Scores, scores) {
				t.Error("Analyze's log posteriors or scores differ from the head's")
			}
			if z := r.head.Standardise(emb); r.head.Segment != nil && !slices.Equal(a.z, z) {
				t.Error("Analyze's standardised embeddings differ from Standardise's")
			}
			if tc.prior != 0 && slices.Equal(a.LogPost, a.Scores) {
				t.Error("the prior was not divided out of the scores")
			}
		})
	}
}
