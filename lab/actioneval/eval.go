package actioneval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/lab/manifest"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media"
)

// recorder is an ActionTracker that keeps the last signals it measured, so
// the evaluation can re-run the action check with other thresholds.
type recorder struct {
	inner liveness.ActionTracker
	mu    sync.Mutex
	last  []action.Signal
}

func (r *recorder) Track(ctx context.Context, frames []media.Frame, anchors []liveness.Anchor) ([]action.Signal, error) {
	sig, err := r.inner.Track(ctx, frames, anchors)
	r.mu.Lock()
	r.last = sig
	r.mu.Unlock()
	return sig, err
}

// noSpeech satisfies liveness.Config for action challenges, which never
// ask for speech; a call is a bug in the decision.
type noSpeech struct{}

func (noSpeech) CheckDigits(context.Context, []int16, string, []float32) (liveness.SpeechResult, error) {
	return liveness.SpeechResult{}, errors.New("actioneval: speech asked for an action challenge")
}

// clipResult is one manifest entry through the decision.
type clipResult struct {
	Path      string            `json:"path"`
	Challenge string            `json:"challenge"`
	Label     string            `json:"label"`
	Group     string            `json:"group,omitempty"`
	Pass      bool              `json:"pass"`
	Reasons   []liveness.Reason `json:"reasons,omitempty"`
	Events    []string          `json:"events_found"`
	// Peaks: how far each signal went toward its threshold (1 reaches it).
	Peaks action.Peaks `json:"peak_over_threshold"`
	// AnyChallenge is how many of the 80 admissible challenges this clip
	// passes (the decision's other checks included): a photo or a replay
	// does not choose its challenge, so k/80 is its chance against a
	// random one.
	AnyChallenge int `json:"challenges_passed_of_80"`
	// PassLOPO is the decision with the thresholds chosen without this
	// clip's group.
	PassLOPO bool `json:"pass_leave_group_out"`

	otherPass bool
	seq       action.Sequence
	sig       []action.Signal
	attack    string
	genuine   bool
}

// rates are BPCER and APCER per attack type with their counts.
type rates struct {
	BPCER         float64         `json:"bpcer"`
	GenuineClips  int             `json:"genuine_clips"`
	GenuineReject int             `json:"genuine_rejected"`
	APCER         map[string]rate `json:"apcer"`
	WorstAPCER    float64         `json:"worst_apcer"`
}

type rate struct {
	Rate     float64 `json:"rate"`
	Accepted int     `json:"accepted"`
	Clips    int     `json:"clips"`
	// MaxPeak is the largest excursion toward any action's threshold on
	// any clip of the type (1 reaches it; default thresholds).
	MaxPeak float64 `json:"max_peak_over_threshold"`
	// RandomChallenge is the mean over the type's clips of the share of
	// the 80 admissible challenges the clip passes: the APCER against a
	// random challenge rather than the manifest's (default thresholds).
	RandomChallenge float64 `json:"apcer_random_challenge"`
	// ClipsPassingSome is how many clips pass at least one challenge.
	ClipsPassingSome int `json:"clips_passing_some_challenge"`
}

type evalReport struct {
	Date      string                   `json:"date"`
	Command   string                   `json:"command"`
	Manifest  string                   `json:"manifest"`
	FPS       float64                  `json:"fps"`
	Defaults  rates                    `json:"default_thresholds"`
	LOPO      rates                    `json:"leave_group_out"`
	Chosen    map[string]action.Config `json:"thresholds_chosen_per_held_out_group"`
	Grid      int                      `json:"threshold_grid_size"`
	Clips     []clipResult             `json:"clips"`
	Reference string                   `json:"reference_match"`
}

// EvalActions (`trustid-lab eval-actions -manifest M`) runs every clip of
// a manifest through the real liveness decision with an action challenge
// and prints JSON: BPCER and APCER per attack type with counts, with the
// default thresholds and with thresholds chosen leaving each group
// (person) out.
func EvalActions(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval-actions", flag.ContinueOnError)
	models := fs.String("models", os.Getenv("TRUSTID_MODELS"), "model directory")
	mpath := fs.String("manifest", "", "manifest (path, challenge, genuine|attack:<type>, group)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	entries, err := manifest.ReadFile(*mpath)
	if err != nil {
		return err
	}
	e, err := openEngines(*models, 10*time.Second)
	if err != nil {
		return err
	}
	defer e.Close()
	results, err := runDecisions(ctx, e, entries)
	if err != nil {
		return err
	}
	rep := evalReport{
		Date: time.Now().UTC().Format(time.DateOnly), Command: "trustid-lab eval-actions " + joinArgs(args),
		Manifest: *mpath, FPS: FPS, Chosen: map[string]action.Config{},
		Reference: "each clip's reference is its own first frame's embedding (no register photos of these people): the reference check is not what is measured here",
	}
	for i := range results {
		results[i].Pass = results[i].otherPass && action.Check(results[i].seq, results[i].sig, action.Config{}).Pass
	}
	rep.Defaults = summarise(results, func(r clipResult) bool { return r.Pass })
	grid := thresholdGrid()
	rep.Grid = len(grid)
	groups := map[string]bool{}
	for _, r := range results {
		groups[r.Group] = true
	}
	for g := range groups {
		var train []clipResult
		for _, r := range results {
			if r.Group != g {
				train = append(train, r)
			}
		}
		best, bestCost := action.Config{}, 2.0
		for _, cfg := range grid {
			s := summarise(train, func(r clipResult) bool { return r.otherPass && action.Check(r.seq, r.sig, cfg).Pass })
			if cost := s.BPCER + s.WorstAPCER; cost < bestCost {
				best, bestCost = cfg, cost
			}
		}
		rep.Chosen[g] = best
		for i := range results {
			if results[i].Group == g {
				results[i].PassLOPO = results[i].otherPass && action.Check(results[i].seq, results[i].sig, best).Pass
			}
		}
	}
	rep.LOPO = summarise(results, func(r clipResult) bool { return r.PassLOPO })
	rep.Clips = results
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}

func joinArgs(a []string) string {
	var b bytes.Buffer
	for i, s := range a {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// thresholdGrid is the small grid the leave-group-out selection searches.
func thresholdGrid() []action.Config {
	var out []action.Config
	for _, turn := range []float64{0.10, 0.15, 0.20} {
		for _, nod := range []float64{0.08, 0.12, 0.16} {
			for _, mouth := range []float64{0.15, 0.20, 0.25} {
				for _, blink := range []float64{0.65, 0.75} {
					out = append(out, action.Config{Turn: turn, NodDown: nod, MouthOpen: mouth, BlinkClose: blink, BlinkOpen: blink + 0.15})
				}
			}
		}
	}
	return out
}

func summarise(rs []clipResult, pass func(clipResult) bool) rates {
	s := rates{APCER: map[string]rate{}}
	for _, r := range rs {
		if r.genuine {
			s.GenuineClips++
			if !pass(r) {
				s.GenuineReject++
			}
			continue
		}
		a := s.APCER[r.attack]
		a.Clips++
		a.MaxPeak = max(a.MaxPeak, r.Peaks.Max())
		a.RandomChallenge += float64(r.AnyChallenge) / float64(len(challenge.AllSequences()))
		if r.AnyChallenge > 0 {
			a.ClipsPassingSome++
		}
		if pass(r) {
			a.Accepted++
		}
		s.APCER[r.attack] = a
	}
	if s.GenuineClips > 0 {
		s.BPCER = float64(s.GenuineReject) / float64(s.GenuineClips)
	}
	for k, a := range s.APCER {
		a.Rate = float64(a.Accepted) / float64(a.Clips)
		a.RandomChallenge /= float64(a.Clips)
		s.APCER[k] = a
		s.WorstAPCER = max(s.WorstAPCER, a.Rate)
	}
	return s
}

// runDecisions runs each entry through a Verifier whose challenge is the
// entry's own (a challenge manager fixed to it, as test mode does).
func runDecisions(ctx context.Context, e *engines, entries []manifest.Entry) ([]clipResult, error) {
	faces := facelogin.Faces{Engine: e.face}
	rec := &recorder{inner: facelogin.MeshTracker{Mesh: e.mesh}}
	var out []clipResult
	for _, en := range entries {
		seq, err := action.ParseSequence(en.Challenge)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", en.Path, en.Line, err)
		}
		clip, err := e.video.DecodeFile(ctx, en.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", en.Path, err)
		}
		ref, err := faces.Analyze(ctx, clip.Frames[0], liveness.FaceOptions{Embedding: true})
		if err != nil {
			return nil, fmt.Errorf("%s: reference: %w", en.Path, err)
		}
		ch, err := challenge.New(challenge.Config{Store: memory.New(memory.Options{}), Secret: bytes.Repeat([]byte{1}, 32), FixedActions: seq.String()})
		if err != nil {
			return nil, err
		}
		v, err := liveness.New(liveness.Config{
			Challenges: ch, Faces: faces, Speech: noSpeech{}, Video: e.video,
			References: facelogin.MemoryRefs{Refs: map[string][]float32{"p": ref.Embedding}, Threshold: 0.3},
			Actions:    rec, ActionVideo: e.video,
		})
		if err != nil {
			return nil, err
		}
		iss, err := ch.IssueKind(ctx, challenge.KindActions, "s", "p", challenge.Client{Addr: "eval"})
		if err != nil {
			return nil, err
		}
		res, err := v.Verify(ctx, liveness.Request{ChallengeID: iss.ID, SessionID: "s", Subject: "p", ClientAddr: "eval", Clip: clip})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", en.Path, err)
		}
		r := clipResult{Path: en.Path, Challenge: en.Challenge, Label: en.Label(), Group: en.Group,
			Reasons: res.Reasons, seq: seq, attack: en.Attack, genuine: en.Genuine(), otherPass: true}
		for _, c := range res.Checks {
			if !c.Pass && c.Name != liveness.CheckActions {
				r.otherPass = false
			}
		}
		rec.mu.Lock()
		r.sig, rec.last = rec.last, nil
		rec.mu.Unlock()
		r.Peaks = action.PeakRatios(r.sig, action.Config{})
		if r.otherPass {
			for _, seq := range challenge.AllSequences() {
				if action.Check(seq, r.sig, action.Config{}).Pass {
					r.AnyChallenge++
				}
			}
		}
		for _, ev := range action.Detect(r.sig, action.Config{}) {
			r.Events = append(r.Events, fmt.Sprintf("%s@%.2f-%.2fs", ev.Action, ev.Start.Seconds(), ev.End.Seconds()))
		}
		out = append(out, r)
		fmt.Fprintf(os.Stderr, "%s\t%s\t%s\tpass=%v\t%v\n", en.Path, en.Challenge, en.Label(), res.Pass, res.Reasons)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, nil
}
