package livenesseval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/lab/fakeclip"
	"github.com/trustid/trustid/lab/manifest"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media/libav"
	"github.com/trustid/trustid/liveness/synthvoice"
)

// ManifestEntry is one line of an evaluation manifest (lab/manifest's
// format) whose challenge is 1 to 4 digits: PATH DIGITS LABEL [SPEAKER].
// SPEAKER (default: the file name without extension) groups clips for
// leave-one-speaker-out.
type ManifestEntry struct {
	Path    string `json:"path"`
	Digits  string `json:"digits"`
	Label   string `json:"label"`
	Speaker string `json:"speaker"`
}

// Attack reports whether the entry is an attack, and its type.
func (e ManifestEntry) Attack() (string, bool) {
	t, ok := strings.CutPrefix(e.Label, "attack:")
	return t, ok
}

// ReadManifest parses a manifest with manifest.Read (relative paths are
// resolved against dir) and checks that every challenge is digits.
func ReadManifest(r io.Reader, dir string) ([]ManifestEntry, error) {
	entries, err := manifest.Read(r, dir)
	if err != nil {
		return nil, err
	}
	out := make([]ManifestEntry, 0, len(entries))
	for _, e := range entries {
		if len(e.Challenge) > challenge.Length || strings.Trim(e.Challenge, "0123456789") != "" {
			return nil, fmt.Errorf("manifest line %d: digits %q: want 1-%d digits", e.Line, e.Challenge, challenge.Length)
		}
		speaker := e.Group
		if speaker == "" {
			speaker = strings.TrimSuffix(filepath.Base(e.Path), filepath.Ext(e.Path))
		}
		out = append(out, ManifestEntry{Path: e.Path, Digits: e.Challenge, Label: e.Label(), Speaker: speaker})
	}
	if len(out) == 0 {
		return nil, errors.New("manifest: no clips")
	}
	return out, nil
}

// WriteManifest writes entries in ReadManifest's format.
func WriteManifest(w io.Writer, entries []ManifestEntry) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# path\tdigits\tlabel\tspeaker")
	for _, e := range entries {
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\n", e.Path, e.Digits, e.Label, e.Speaker)
	}
	return bw.Flush()
}

// mfClip is the decision on one manifest clip.
type mfClip struct {
	ManifestEntry
	Pass    bool                   `json:"pass"`
	Reasons []liveness.Reason      `json:"reasons"`
	Checks  []liveness.CheckResult `json:"checks"`
	MS      float64                `json:"decision_ms"`
	// HeldOutVoice: the synthetic-voice scores of the models retrained
	// without this clip's speaker (-voice-heldout), with their thresholds.
	HeldOutVoice map[string]float64 `json:"held_out_voice_scores,omitempty"`
	// Rounding is the viseme check's lip-rounding margin (reported by the
	// check, not voting) over Votes voting digit slots.
	Rounding float64 `json:"viseme_rounding"`
	Votes    int     `json:"viseme_rounding_votes"`
	// SlotSync is SlotSync's least slot score over SyncSlots
	// scored digit slots (0 when none), with that slot's correlations and
	// best offset.
	SlotSync      float64 `json:"slot_sync"`
	SyncSlots     int     `json:"slot_sync_slots"`
	SyncOwn       float64 `json:"slot_sync_own,omitempty"`
	SyncElsewhere float64 `json:"slot_sync_elsewhere,omitempty"`
	SyncOffsetMS  int64   `json:"slot_sync_offset_ms,omitempty"`
	// voiceX are the synthetic-voice features of the clip's audio (nil:
	// the check did not score it).
	voiceX []float64
}

// mfRate is an error rate with its counts.
type mfRate struct {
	Clips  int     `json:"clips"`
	Errors int     `json:"errors"`
	Rate   float64 `json:"rate"`
}

func (r *mfRate) add(err bool) {
	r.Clips++
	if err {
		r.Errors++
	}
	r.Rate = float64(r.Errors) / float64(r.Clips)
}

// mfSummary is ISO/IEC 30107-3's view of a set of decisions: BPCER on the
// genuine clips (bona fide rejected), APCER per attack type (attacks
// accepted), and the worst type.
type mfSummary struct {
	BPCER     mfRate            `json:"bpcer"`
	APCER     map[string]mfRate `json:"apcer"`
	WorstType string            `json:"worst_attack_type"`
	Worst     mfRate            `json:"worst_apcer"`
	// Rejections counts the reason codes of the rejected clips by label.
	Rejections map[string]map[liveness.Reason]int `json:"rejection_reasons,omitempty"`
}

func summarise(clips []mfClip, pass func(mfClip) bool) mfSummary {
	s := mfSummary{APCER: map[string]mfRate{}, Rejections: map[string]map[liveness.Reason]int{}}
	for _, c := range clips {
		p := pass(c)
		if t, ok := c.Attack(); ok {
			r := s.APCER[t]
			r.add(p)
			s.APCER[t] = r
		} else {
			s.BPCER.add(!p)
		}
		if !p {
			m := s.Rejections[c.Label]
			if m == nil {
				m = map[liveness.Reason]int{}
				s.Rejections[c.Label] = m
			}
			for _, r := range c.Reasons {
				m[r]++
			}
		}
	}
	types := make([]string, 0, len(s.APCER))
	for t := range s.APCER {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if r := s.APCER[t]; s.WorstType == "" || r.Rate > s.Worst.Rate {
			s.WorstType, s.Worst = t, r
		}
	}
	return s
}

// mfLOSO is the mouth checks' thresholds refitted leaving each speaker
// out.
type mfLOSO struct {
	Rule string `json:"rule"`
	// Thresholds are MaxSilent and MaxClosed per held-out speaker.
	Thresholds map[string][2]float64 `json:"max_silent_max_closed_per_held_out_speaker"`
	Summary    mfSummary             `json:"summary"`
}

// scoreOf is a check's score in a decision (NaN when the check did not
// score: absent, or stopped for another reason).
func scoreOf(c mfClip, name string, reason liveness.Reason) float64 {
	for _, k := range c.Checks {
		if k.Name == name && (k.Pass || k.Reason == reason) {
			return k.Score
		}
	}
	return math.NaN()
}

func silentOf(c mfClip) float64 {
	return scoreOf(c, liveness.CheckMouthVoice, liveness.ReasonSilentMouth)
}
func closedOf(c mfClip) float64 { return scoreOf(c, liveness.CheckViseme, liveness.ReasonVisemes) }

// loso refits the mouth checks' MaxSilent and MaxClosed for each speaker on
// the other speakers' clips (the pair minimising BPCER + worst APCER; among
// ties the middle one in a sort by (MaxClosed, MaxSilent)) and decides the
// held-out speaker's clips with them; every other check as recorded.
func loso(clips []mfClip) *mfLOSO { return losoWith(clips, nil) }

// losoWith is loso with the synthetic-voice check re-decided, for the
// clips of each held-out speaker and for the clips the thresholds are fitted
// on alike, by voiceFor(held-out speaker) (nil: as recorded).
func losoWith(clips []mfClip, voiceFor func(speaker string) voiceRule) *mfLOSO {
	out := &mfLOSO{Rule: "per held-out speaker: (MaxSilent, MaxClosed) minimising BPCER + worst APCER on the other speakers' clips",
		Thresholds: map[string][2]float64{}}
	silent := silentScores(clips)
	held := make([]mfClip, len(clips))
	copy(held, clips)
	for _, s := range speakersOf(clips) {
		var voice voiceRule
		if voiceFor != nil {
			voice = voiceFor(s)
		}
		var train []mfClip
		for _, c := range clips {
			if c.Speaker != s {
				train = append(train, c)
			}
		}
		bestLoss := math.Inf(1)
		var ties [][2]float64
		for closed := 0; closed <= 10; closed++ {
			for _, sl := range silent {
				th := [2]float64{sl, float64(closed)}
				sm := summarise(train, func(c mfClip) bool { return verdict(c, voice, &th) })
				switch l := sm.BPCER.Rate + sm.Worst.Rate; {
				case l < bestLoss-1e-12:
					bestLoss, ties = l, [][2]float64{th}
				case math.Abs(l-bestLoss) <= 1e-12:
					ties = append(ties, th)
				}
			}
		}
		best := ties[len(ties)/2]
		out.Thresholds[s] = [2]float64{lvRound(best[0]), best[1]}
		for i, c := range clips {
			if c.Speaker == s {
				held[i].Pass = verdict(c, voice, &best)
			}
		}
	}
	out.Summary = summarise(held, func(c mfClip) bool { return c.Pass })
	return out
}

// mfReport is the JSON evalManifest prints.
type mfReport struct {
	Date     string    `json:"date"`
	Command  string    `json:"command"`
	Manifest string    `json:"manifest"`
	Summary  mfSummary `json:"summary"`
	LOSO     *mfLOSO   `json:"mouth_thresholds_leave_one_speaker_out"`
	// HeldOut: the decisions with the synthetic-voice model retrained
	// without the held-out speaker and/or the dub's engine (-voice-heldout).
	HeldOut *mfHeldOut `json:"held_out,omitempty"`
	// SlotSyncAUC: how well the slot sync (SlotSync, not voting) orders
	// the genuine clips above each attack type's clips.
	SlotSyncAUC map[string]mfAUC `json:"slot_sync_auc"`
	// DecisionMS is the median wall time of one decision (clip decoded
	// beforehand), with the load average and core count it ran under.
	DecisionMS float64  `json:"decision_ms_median"`
	LoadAvg    string   `json:"load_average"`
	Cores      int      `json:"cores"`
	Clips      []mfClip `json:"clips"`
}

// evalManifest decides every clip of a manifest with the full liveness
// decision (real face engine, speech recogniser and face mesh; the
// challenge is the line's digits; the reference is the clip's own face, so
// the identity check is not what is measured) and prints the summary.
//
// With voiceCorpus (train-synthvoice's flags, "" for none: its defaults are
// "-"), it also retrains the synthetic-voice model leaving speakers and the
// dub's engine out and reports those decisions (heldOut).
func evalManifest(ctx context.Context, path, models string, workers int, args []string, verbose bool, voiceCorpus string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	entries, err := ReadManifest(f, filepath.Dir(path))
	f.Close()
	if err != nil {
		return err
	}
	eng, err := face.New(face.Config{ModelDir: models, Workers: workers})
	if err != nil {
		return err
	}
	defer eng.Close()
	faces := facelogin.Faces{Engine: eng}
	sp, err := lvSpeech(models)
	if err != nil {
		return err
	}
	mouths, err := lvMouths(models)
	if err != nil {
		return err
	}
	if _, err := lvSpeech(models); err != nil {
		return err
	}
	det, err := synthvoice.New(synthvoice.Config{Frontend: lvSpeechCache.rec.Frontend()})
	if err != nil {
		return fmt.Errorf("synthetic-voice check: %w", err)
	}
	spRec, mouthRec := &speechRecorder{inner: sp}, &mouthRecorder{inner: mouths}
	voice, voiceThr := &voiceRecorder{front: lvSpeechCache.rec.Frontend(), model: det.Model()}, det.Threshold()
	dec := libav.New() // as the service decodes (byte for byte the ffmpeg child's clip)
	dec.Timeout = 2 * time.Minute
	rep := mfReport{Date: time.Now().UTC().Format(time.RFC3339), Command: "trustid-lab eval-liveness " + strings.Join(args, " "),
		Manifest: path, Cores: runtime.NumCPU()}
	var times []float64
	for i, e := range entries {
		clip, err := dec.DecodeFile(ctx, e.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		ref, err := faces.Analyze(ctx, clip.Frames[len(clip.Frames)/2], liveness.FaceOptions{Embedding: true})
		if err != nil && !errors.Is(err, liveness.ErrNoFace) {
			return fmt.Errorf("%s: reference: %w", e.Path, err)
		}
		secret := make([]byte, 32)
		copy(secret, "trustid eval-liveness manifest")
		mgr, err := challenge.New(challenge.Config{Store: memory.New(memory.Options{}), Secret: secret, FixedDigits: e.Digits,
			SubjectIssueLimit: 1 << 20, AddressIssueLimit: 1 << 20, MaxFailures: 1 << 20, SubjectMaxFailures: 1 << 20, AddressMaxFailures: 1 << 20})
		if err != nil {
			return err
		}
		v, err := liveness.New(liveness.Config{Challenges: mgr, Faces: faces, Speech: spRec, Mouths: mouthRec, Video: dec,
			Voice: voice, VoiceThreshold: voiceThr,
			References: facelogin.MemoryRefs{Refs: map[string][]float32{"subject": ref.Embedding}, Threshold: 0.34}})
		if err != nil {
			return err
		}
		res, err := lvAttempt(ctx, v, mgr, liveness.Request{Clip: clip})
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		c := mfClip{ManifestEntry: e, Pass: res.Pass, Reasons: res.Reasons, Checks: res.Checks, MS: float64(res.Elapsed.Microseconds()) / 1000,
			voiceX: voice.take()}
		var sync SlotSyncResult
		c.Rounding, c.Votes, sync = mouthMeasures(clip, e.Digits, mouthRec, spRec)
		c.SlotSync, c.SyncSlots = sync.Score, sync.Slots
		if c.SyncSlots == 0 {
			c.SlotSync = 0
		} else {
			c.SyncOwn, c.SyncElsewhere, c.SyncOffsetMS = lvRound(sync.Own), lvRound(sync.Elsewhere), sync.Offset.Milliseconds()
		}
		if c.Votes == 0 {
			c.Rounding = 0
		}
		times = append(times, c.MS)
		rep.Clips = append(rep.Clips, c)
		if verbose {
			fmt.Fprintf(os.Stderr, "%d/%d %s %s %s pass=%v %v\n", i+1, len(entries), filepath.Base(e.Path), e.Digits, e.Label, res.Pass, res.Reasons)
		}
	}
	rep.Summary = summarise(rep.Clips, func(c mfClip) bool { return c.Pass })
	rep.LOSO = loso(rep.Clips)
	rep.SlotSyncAUC = slotSyncAUC(rep.Clips)
	if voiceCorpus != "" {
		var cargs []string
		if voiceCorpus != "-" {
			cargs = strings.Fields(voiceCorpus)
		}
		cargs = append([]string{"-models", models}, cargs...)
		logf := func(msg string, kv ...any) {
			if verbose {
				fmt.Fprintln(os.Stderr, append([]any{msg}, kv...)...)
			}
		}
		if rep.HeldOut, err = heldOut(ctx, rep.Clips, cargs, logf); err != nil {
			return err
		}
	}
	rep.DecisionMS = lvRound(lvMedian(times))
	rep.LoadAvg = lvLoad()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// MakeAttacks (`trustid-lab make-attacks`) writes the shared-data attack
// set (lab/fakeclip.Attacks) and its manifest (manifest.tsv) into -out.
func MakeAttacks(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("make-attacks", flag.ContinueOnError)
	var (
		data       = fs.String("testdata", os.Getenv("TRUSTID_TESTDATA"), "shared test data directory (its talking/grid clips)")
		out        = fs.String("out", "attacks", "output directory")
		challenges = fs.String("challenges", "4729,8153,3068", "four-digit challenges of the synthetic dubs (each on every clip)")
		weights    = fs.String("weights", "0.5,0.7,0.9", "make-fake-clip envelope weights of the dubs")
		shifts     = fs.String("shifts", "0.2,0.3,0.4,-0.3", "audio shifts in seconds (negative: audio earlier)")
		models     = fs.String("models", os.Getenv("TRUSTID_MODELS"), "model directory (the speech recogniser finds the digit the splices cut)")
		splices    = fs.Bool("splices", true, "also write the same-speaker splices (real-voice-dub, real-video-dub, real-splice)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	grid, _ := filepath.Glob(filepath.Join(*data, "talking", "grid", "*.mpg"))
	if len(grid) < 2 {
		return fmt.Errorf("fewer than two GRID clips under %s", filepath.Join(*data, "talking", "grid"))
	}
	o := fakeclip.AttackOptions{Grid: grid, Dir: *out, Challenges: strings.Split(*challenges, ",")}
	for _, s := range []struct {
		src string
		dst *[]float64
	}{{*weights, &o.Weights}, {*shifts, &o.Shifts}} {
		for _, f := range strings.Split(s.src, ",") {
			var v float64
			if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil {
				return fmt.Errorf("%q: %w", f, err)
			}
			*s.dst = append(*s.dst, v)
		}
	}
	if *splices {
		sp, err := lvSpeech(*models)
		if err != nil {
			return err
		}
		o.DigitScore = func(ctx context.Context, pcm []int16, digit string) (float64, error) {
			r, err := sp.CheckDigits(ctx, pcm, digit, nil)
			if errors.Is(err, liveness.ErrNoSpeech) {
				return math.Inf(-1), nil
			}
			return r.Score, err
		}
	}
	ents, err := fakeclip.Attacks(ctx, o)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Note != "" {
			fmt.Fprintf(os.Stderr, "%s %s %s: %s\n", e.Path, e.Digits, e.Label, e.Note)
		}
	}
	m := make([]ManifestEntry, len(ents))
	for i, e := range ents {
		m[i] = ManifestEntry{Path: e.Path, Digits: e.Digits, Label: e.Label, Speaker: e.Speaker}
	}
	mf, err := os.Create(filepath.Join(*out, "manifest.tsv"))
	if err != nil {
		return err
	}
	if err := WriteManifest(mf, m); err != nil {
		mf.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "%d clips, manifest %s\n", len(m), mf.Name())
	return mf.Close()
}
