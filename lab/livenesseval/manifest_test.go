package livenesseval

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/synthvoice"
)

func TestReadManifest(t *testing.T) {
	good := "# comment\n\nclips/a.mp4\t4729\tgenuine\n/abs/b.mkv 5 attack:dub-synthetic spk1\n"
	got, err := ReadManifest(strings.NewReader(good), "/data/set")
	if err != nil {
		t.Fatal(err)
	}
	want := []ManifestEntry{
		{Path: "/data/set/clips/a.mp4", Digits: "4729", Label: "genuine", Speaker: "a"},
		{Path: "/abs/b.mkv", Digits: "5", Label: "attack:dub-synthetic", Speaker: "spk1"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if typ, ok := got[1].Attack(); !ok || typ != "dub-synthetic" {
		t.Errorf("attack type %q %v", typ, ok)
	}
	var buf bytes.Buffer
	if err := WriteManifest(&buf, got); err != nil {
		t.Fatal(err)
	}
	again, err := ReadManifest(&buf, "/elsewhere")
	if err != nil || len(again) != 2 || again[0] != got[0] || again[1] != got[1] {
		t.Errorf("round trip: %+v, %v", again, err)
	}
	for _, bad := range []string{
		"", "# only a comment\n", "a.mp4 4729\n", "a.mp4 47x9 genuine\n", "a.mp4 47291 genuine\n",
		"a.mp4 4729 bona-fide\n", "a.mp4 4729 attack:\n", "a.mp4 4729 genuine s extra\n",
	} {
		if _, err := ReadManifest(strings.NewReader(bad), "."); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func mfc(label, speaker string, pass bool, silent float64, reasons ...liveness.Reason) mfClip {
	c := mfClip{ManifestEntry: ManifestEntry{Path: speaker + label, Label: label, Speaker: speaker}, Pass: pass, Reasons: reasons}
	mv := liveness.CheckResult{Name: liveness.CheckMouthVoice, Pass: silent <= 0.3, Score: silent}
	if !mv.Pass {
		mv.Reason = liveness.ReasonSilentMouth
	}
	vis := liveness.CheckResult{Name: liveness.CheckViseme, Pass: true, Score: 0}
	c.Checks = []liveness.CheckResult{{Name: liveness.CheckSpeech, Pass: true}, mv, vis}
	return c
}

func TestSummariseAndLOSO(t *testing.T) {
	clips := []mfClip{
		mfc("genuine", "a", true, 0.1), mfc("genuine", "b", true, 0.15), mfc("genuine", "c", false, 0.2, liveness.ReasonWrongDigits),
		mfc("attack:dub", "a", false, 0.5, liveness.ReasonSilentMouth), mfc("attack:dub", "b", true, 0.25), mfc("attack:dub", "c", false, 0.6, liveness.ReasonSilentMouth),
		mfc("attack:still", "a", false, 0.9, liveness.ReasonStillMouth, liveness.ReasonSilentMouth),
	}
	s := summarise(clips, func(c mfClip) bool { return c.Pass })
	if s.BPCER.Clips != 3 || s.BPCER.Errors != 1 {
		t.Errorf("BPCER %+v", s.BPCER)
	}
	if d := s.APCER["dub"]; d.Clips != 3 || d.Errors != 1 || s.WorstType != "dub" {
		t.Errorf("APCER %+v worst %s", s.APCER, s.WorstType)
	}
	if s.Rejections["genuine"][liveness.ReasonWrongDigits] != 1 {
		t.Errorf("rejections %+v", s.Rejections)
	}
	l := loso(clips)
	if len(l.Thresholds) != 3 {
		t.Fatalf("thresholds %+v", l.Thresholds)
	}
	// Leaving b out, the others' dubs (0.5, 0.6) and genuine (0.1, 0.2,
	// the latter failing speech anyway) put the threshold between 0.1
	// and 0.5, so b's dub at 0.25 may pass or not, but b's genuine at
	// 0.15 must pass; the still photo always fails on its other reason.
	if l.Summary.APCER["still"].Errors != 0 || l.Summary.BPCER.Errors < 1 {
		t.Errorf("LOSO summary %+v", l.Summary)
	}
	if th := l.Thresholds["b"][0]; th < 0.15 || th >= 0.5 {
		t.Errorf("threshold without b: %v", th)
	}
}

func TestVerdictRedecidesVoice(t *testing.T) {
	// A one-feature model: synthetic when x >= 0.5 (threshold 0.5 on
	// sigmoid(20*(x-0.5))).
	m := &synthvoice.Model{Features: []string{"x"}, Mean: []float64{0}, Scale: []float64{1}, W: []float64{20}, Bias: -10, Threshold: 0.5}
	caught := mfc("attack:dub", "a", false, 0.1, liveness.ReasonSynthetic)
	caught.voiceX = []float64{0.9}
	missed := mfc("attack:dub", "a", false, 0.1, liveness.ReasonSynthetic)
	missed.voiceX = []float64{0.1}
	other := mfc("attack:dub", "a", false, 0.1, liveness.ReasonSynthetic, liveness.ReasonWrongDigits)
	other.voiceX = []float64{0.1}
	unscored := mfc("genuine", "a", true, 0.1)
	for _, tc := range []struct {
		name string
		c    mfClip
		want bool
	}{
		{"still synthetic", caught, false},
		{"no longer synthetic", missed, true},
		{"another reason stands", other, false},
		{"not scored: as recorded", unscored, true},
	} {
		if got := verdict(tc.c, modelRule(m), nil); got != tc.want {
			t.Errorf("%s: verdict %v, want %v", tc.name, got, tc.want)
		}
	}
	if verdict(missed, nil, nil) {
		t.Error("without a voice rule the recorded voice_synthetic must stand")
	}
	// The mouth thresholds re-decide the mouth checks only.
	mouth := mfc("attack:dub", "a", false, 0.5, liveness.ReasonSilentMouth)
	if !verdict(mouth, nil, &[2]float64{0.6, 2}) || verdict(mouth, nil, &[2]float64{0.4, 2}) {
		t.Error("mouth thresholds not applied")
	}
}

func TestRoundingLOSO(t *testing.T) {
	mk := func(label, spk string, margin float64, votes int) mfClip {
		c := mfc(label, spk, true, 0.1)
		c.Rounding, c.Votes = margin, votes
		return c
	}
	clips := []mfClip{
		mk("genuine", "a", 0.3, 1), mk("genuine", "b", 0.25, 1), mk("genuine", "c", 0.2, 1),
		mk("attack:x", "a", -0.3, 1), mk("attack:x", "b", -0.2, 1), mk("attack:x", "c", 0.22, 1),
		mk("attack:x", "c", 0, 0), // no voting slot: decided without the margin
	}
	r := roundingLOSO(clips, func(mfClip) bool { return true })
	// Leaving a out: genuine 0.25, 0.2 and attacks -0.2, 0.22, (no vote)
	// give a threshold between -0.2 and 0.2; a's attack at -0.3 fails and
	// its genuine passes. Leaving c out, nothing tells c's attack at 0.22
	// from its genuine 0.2.
	if th := r.Thresholds["a"]; th <= -0.2 || th > 0.2 {
		t.Errorf("threshold without a: %v", th)
	}
	if r.Summary.BPCER.Errors != 0 {
		t.Errorf("BPCER %+v", r.Summary.BPCER)
	}
	if x := r.Summary.APCER["x"]; x.Clips != 4 || x.Errors != 2 {
		t.Errorf("APCER %+v: want c's 0.22 and c's unvoted attack accepted", x)
	}
	if len(r.Margins["genuine"]) != 3 || len(r.Margins["attack:x"]) != 3 {
		t.Errorf("margins %+v", r.Margins)
	}
}
