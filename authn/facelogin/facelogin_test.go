package facelogin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/action"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// register knows one ID number; "110101199001010000" finds the register
// down.
type register struct{}

func (register) ResolveIDNumber(_ context.Context, n string) (string, error) {
	switch n {
	case "110101199003074512":
		return "cit-1", nil
	case "110101199001010000":
		return "", errors.New("store: unavailable")
	}
	return "", identity.ErrUnknownIDNumber
}

// challenges records the last issue.
type challenges struct {
	kind                     challenge.Kind
	sessionID, subject, addr string
	client                   challenge.Client
	err                      error
}

func (c *challenges) IssueKind(_ context.Context, kind challenge.Kind, sessionID, subject string, cl challenge.Client) (challenge.Issued, error) {
	c.kind, c.sessionID, c.subject, c.addr, c.client = kind, sessionID, subject, cl.Addr, cl
	if c.err != nil {
		return challenge.Issued{}, c.err
	}
	if kind == challenge.KindActions {
		return challenge.Issued{ID: "ch-1", Kind: kind, Actions: action.Sequence{action.Nod, action.Blink}, ExpiresAt: now.Add(90 * time.Second)}, nil
	}
	return challenge.Issued{ID: "ch-1", Kind: kind, Digits: "4071", ExpiresAt: now.Add(90 * time.Second)}, nil
}

func (c *challenges) KnownDeviceProof(subject, device string) string {
	return "proof:" + subject + ":" + device
}

func (c *challenges) IsKnownDevice(subject, device, proof string) bool {
	return device != "" && proof == c.KnownDeviceProof(subject, device)
}

// verifier records the last request and answers res, err.
type verifier struct {
	req liveness.Request
	res liveness.Result
	err error
}

func (v *verifier) Verify(_ context.Context, req liveness.Request) (liveness.Result, error) {
	v.req = req
	return v.res, v.err
}

func newLogin(t *testing.T, v *verifier, c *challenges) *facelogin.Login {
	t.Helper()
	l, err := facelogin.New(facelogin.Config{Register: register{}, Challenges: c, Verifier: v,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: func() time.Time { return now }, MaxVideoBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNew(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	full := facelogin.Config{Register: register{}, Challenges: &challenges{}, Verifier: &verifier{}, Logger: log, MaxVideoBytes: 1}
	tests := []struct {
		name  string
		edit  func(*facelogin.Config)
		wants []string // substrings of the error; none: valid
	}{
		{name: "complete", edit: func(*facelogin.Config) {}},
		{name: "no verifier", edit: func(c *facelogin.Config) { c.Verifier = nil }, wants: []string{"required"}},
		{name: "no limits", edit: func(c *facelogin.Config) { c.MaxVideoBytes = 0; c.MaxFrames = -1 }, wants: []string{"MaxVideoBytes", "MaxFrames"}},
		{name: "every problem at once", edit: func(c *facelogin.Config) { *c = facelogin.Config{} }, wants: []string{"required", "MaxVideoBytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.edit(&cfg)
			l, err := facelogin.New(cfg)
			if len(tc.wants) == 0 {
				if err != nil || l == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, facelogin.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBeginChoosesTheChallengeKind(t *testing.T) {
	tests := []struct {
		name    string
		lang    string
		minACR  string
		actions bool // the deployment checks actions
		want    challenge.Kind
		code    string // refusal code when want is ""
	}{
		{name: "English page gets digits", lang: "en", actions: true, want: challenge.KindDigits},
		{name: "English region tag", lang: "en-GB", actions: true, want: challenge.KindDigits},
		{name: "no page language: the recogniser's", lang: "", actions: true, want: challenge.KindDigits},
		{name: "Chinese page gets actions", lang: "zh-CN", actions: true, want: challenge.KindActions},
		{name: "Chinese page, actions required by the app", lang: "zh", minACR: authn.ACRFaceActions, actions: true, want: challenge.KindActions},
		{name: "English page, actions enough for the app: digits still", lang: "en", minACR: authn.ACRFaceActions, actions: true, want: challenge.KindDigits},
		{name: "Chinese page, app requires spoken digits", lang: "zh", minACR: authn.ACRFaceLiveness, actions: true, code: "digits_unavailable"},
		{name: "Chinese page, app requires two factors", lang: "zh", minACR: authn.ACRFaceLivenessPasskey, actions: true, code: "digits_unavailable"},
		{name: "Chinese page, no action checker", lang: "zh", code: "no_challenge_for_language"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &challenges{}
			l, err := facelogin.New(facelogin.Config{Register: register{}, Challenges: c, Verifier: &verifier{},
				Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return now }, MaxVideoBytes: 1,
				DigitLanguages: []string{"en"}, Actions: tc.actions})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]any{"id_number": "110101199003074512", "lang": tc.lang, "face_consent": true})
			r := httptest.NewRequest("POST", "/begin", bytes.NewReader(body))
			got, err := l.BeginRequest(context.Background(), &authn.Attempt{ID: "l1", MinACR: tc.minACR}, r)
			if tc.want == "" {
				var ref *authn.Refusal
				if !errors.As(err, &ref) || ref.Code != tc.code || !errors.Is(err, authn.ErrMalformed) {
					t.Fatalf("got %+v, %v; want refusal %q", got, err, tc.code)
				}
				if c.subject != "" {
					t.Error("a challenge was issued anyway")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.kind != tc.want {
				t.Fatalf("issued %q, want %q", c.kind, tc.want)
			}
			b, _ := json.Marshal(got)
			var resp map[string]any
			json.Unmarshal(b, &resp)
			if resp["kind"] != string(tc.want) {
				t.Errorf("response %s", b)
			}
			if tc.want == challenge.KindActions && (resp["digits"] != nil || len(resp["actions"].([]any)) != 2) {
				t.Errorf("action response %s", b)
			}
		})
	}
}

func TestZeroValueNamesTheMethod(t *testing.T) {
	var l facelogin.Login
	if l.Method() != "face" || l.MaxACR() != authn.ACRFaceLiveness {
		t.Fatalf("method %q acr %q", l.Method(), l.MaxACR())
	}
}

func TestBeginRequest(t *testing.T) {
	tests := []struct {
		name        string
		attempt     authn.Attempt
		body        string
		wantSubject string // "unknown:" prefix for a placeholder
		wantErr     error
	}{
		{name: "typed ID number", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101199003074512","face_consent":true}`, wantSubject: "cit-1"},
		{name: "login hint", attempt: authn.Attempt{ID: "l1", LoginHint: " 110101199003074512 "}, body: `{"face_consent":true}`, wantSubject: "cit-1"},
		{name: "typed wins over hint", attempt: authn.Attempt{ID: "l1", LoginHint: "x"}, body: `{"id_number":"110101199003074512","face_consent":true}`, wantSubject: "cit-1"},
		{name: "step-up citizen", attempt: authn.Attempt{ID: "l1", CitizenID: "cit-9"}, body: `{"id_number":"110101199003074512","face_consent":true}`, wantSubject: "cit-9"},
		{name: "unknown ID number answers alike", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"999","face_consent":true}`, wantSubject: "unknown:"},
		// A register that cannot answer is a fault (503), not an unknown
		// number: the challenge must not be bound to a placeholder.
		{name: "register down", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101199001010000","face_consent":true}`, wantErr: authn.ErrUnavailable},
		// The face measures: no processing without the separate consent, none for a child under 14.
		{name: "no face consent", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101199003074512"}`, wantErr: authn.ErrNotPermitted},
		{name: "face consent refused", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101199003074512","face_consent":false}`, wantErr: authn.ErrNotPermitted},
		{name: "under 14", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101201501011234","face_consent":true}`, wantErr: authn.ErrNotPermitted},
		{name: "under 14 by login hint", attempt: authn.Attempt{ID: "l1", LoginHint: "110101201501011234"}, body: `{"face_consent":true}`, wantErr: authn.ErrNotPermitted},
		{name: "no claim", attempt: authn.Attempt{ID: "l1"}, wantErr: authn.ErrMalformed},
		{name: "malformed body", attempt: authn.Attempt{ID: "l1"}, body: `{"id":`, wantErr: authn.ErrMalformed},
		{name: "bad device id", attempt: authn.Attempt{ID: "l1"}, body: `{"id_number":"110101199003074512","device":"a b"}`, wantErr: authn.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &challenges{}
			l := newLogin(t, &verifier{}, c)
			r := httptest.NewRequest("POST", "/oauth2/login/face/begin", strings.NewReader(tc.body))
			r.RemoteAddr = "192.0.2.7:5555"
			got, err := l.BeginRequest(context.Background(), &tc.attempt, r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.subject, tc.wantSubject) || (tc.wantSubject != "unknown:" && c.subject != tc.wantSubject) {
				t.Errorf("subject %q, want %q", c.subject, tc.wantSubject)
			}
			if c.sessionID != "l1" || c.addr != "192.0.2.7" {
				t.Errorf("issued for session %q address %q", c.sessionID, c.addr)
			}
			want := `{"challenge_id":"ch-1","kind":"digits","digits":"4071","expires_in":90}`
			if b := mustJSON(t, got); b != want {
				t.Errorf("begin = %s, want %s", b, want)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	pass := liveness.Result{Pass: true}
	judged := []liveness.CheckResult{{Name: liveness.CheckChallenge, Pass: true}, {Name: liveness.CheckIntake, Pass: true}}
	fail := liveness.Result{Reasons: []liveness.Reason{liveness.ReasonStillMouth}, Checks: judged}
	locked := liveness.Result{Reasons: []liveness.Reason{liveness.ReasonLocked}, RetryAfter: time.Minute}
	refused := liveness.Result{Reasons: []liveness.Reason{liveness.ReasonChallenge},
		Checks: []liveness.CheckResult{{Name: liveness.CheckChallenge, Reason: liveness.ReasonChallenge}}}
	video := map[string]string{"challenge_id": "ch-1", "video": "webm", "face_consent": "yes"}
	tests := []struct {
		name    string
		attempt authn.Attempt
		parts   map[string]string // "" body: not multipart
		res     liveness.Result
		err     error
		want    *authn.Result
		wantErr error  // when want is nil; default ErrAuthenticationFailed
		code    string // the Refusal's code, when wantErr is a refusal kind
	}{
		{name: "pass", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: pass,
			want: &authn.Result{CitizenID: "cit-1", ACR: authn.ACRFaceLiveness, AMR: []string{authn.AMRFace, authn.AMRLiveness, authn.AMRSpokenDigits}, AuthTime: now}},
		{name: "typed ID number in the evidence", attempt: authn.Attempt{ID: "l1"},
			parts: map[string]string{"challenge_id": "ch-1", "id_number": "110101199003074512", "video": "webm", "face_consent": "yes"}, res: pass,
			want: &authn.Result{CitizenID: "cit-1", ACR: authn.ACRFaceLiveness, AMR: []string{authn.AMRFace, authn.AMRLiveness, authn.AMRSpokenDigits}, AuthTime: now}},
		{name: "pass with actions", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video,
			res:  liveness.Result{Pass: true, Kind: challenge.KindActions},
			want: &authn.Result{CitizenID: "cit-1", ACR: authn.ACRFaceActions, AMR: []string{authn.AMRFace, authn.AMRLiveness, authn.AMRFaceActions}, AuthTime: now}},
		{name: "liveness fails", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: fail},
		{name: "unknown citizen never passes", attempt: authn.Attempt{ID: "l1", LoginHint: "999"}, parts: video, res: pass},
		{name: "verifier down", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: pass, err: errors.New("store down"),
			wantErr: authn.ErrUnavailable, code: "temporarily_unavailable"},
		{name: "register down", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199001010000"}, parts: video, res: pass,
			wantErr: authn.ErrUnavailable, code: "temporarily_unavailable"},
		{name: "decoder busy", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: pass, err: media.ErrBusy,
			wantErr: authn.ErrUnavailable, code: "decoder_busy"},
		{name: "locked out", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: locked,
			wantErr: authn.ErrLimited, code: "locked_out"},
		{name: "challenge refused is not a verdict", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: video, res: refused,
			wantErr: authn.ErrMalformed, code: "challenge_refused"},
		{name: "no claim", attempt: authn.Attempt{ID: "l1"}, parts: video, res: pass, wantErr: authn.ErrMalformed, code: "missing_id_number"},
		{name: "no face consent", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: map[string]string{"challenge_id": "ch-1", "video": "webm"}, res: pass,
			wantErr: authn.ErrNotPermitted, code: "face_consent_required"},
		{name: "under 14", attempt: authn.Attempt{ID: "l1", LoginHint: "110101201501011234"}, parts: video, res: pass,
			wantErr: authn.ErrNotPermitted, code: "guardian_required"},
		{name: "no evidence", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, parts: map[string]string{"challenge_id": "ch-1", "face_consent": "yes"}, res: pass,
			wantErr: authn.ErrMalformed, code: "invalid_evidence"},
		{name: "not multipart", attempt: authn.Attempt{ID: "l1", LoginHint: "110101199003074512"}, res: pass, wantErr: authn.ErrMalformed, code: "invalid_evidence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &verifier{res: tc.res, err: tc.err}
			l := newLogin(t, v, &challenges{})
			r := httptest.NewRequest("POST", "/oauth2/login/face/finish", strings.NewReader("{}"))
			if tc.parts != nil {
				var buf bytes.Buffer
				w := multipart.NewWriter(&buf)
				for _, name := range []string{"challenge_id", "id_number", "face_consent", "video"} {
					if body, ok := tc.parts[name]; ok {
						w.WriteField(name, body)
					}
				}
				w.Close()
				r = httptest.NewRequest("POST", "/oauth2/login/face/finish", &buf)
				r.Header.Set("Content-Type", w.FormDataContentType())
			}
			r.RemoteAddr = "192.0.2.7:5555"
			got, err := l.Finish(context.Background(), &tc.attempt, r)
			if tc.want == nil {
				want := tc.wantErr
				if want == nil {
					want = authn.ErrAuthenticationFailed
				}
				if !errors.Is(err, want) || got != nil {
					t.Fatalf("got %+v, %v; want %v", got, err, want)
				}
				var ref *authn.Refusal
				if tc.code != "" && (!errors.As(err, &ref) || ref.Code != tc.code) {
					t.Fatalf("refusal %v, want code %q", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if v.req.ChallengeID != "ch-1" || v.req.SessionID != "l1" || v.req.Subject != "cit-1" || v.req.ClientAddr != "192.0.2.7" || v.req.Video == nil {
				t.Errorf("verify request %+v", v.req)
			}
		})
	}
}

// recognizer answers res, err.
type recognizer struct {
	res speech.Result
	err error
}

func (recognizer) Lang() string { return "en" }
func (r recognizer) Score(context.Context, []int16, string) (speech.Result, error) {
	return r.res, r.err
}

// activityRecognizer also takes the voice activity, and answers with a
// margin of its length (so a test sees which method ran, and with what).
type activityRecognizer struct{ recognizer }

func (r activityRecognizer) ScoreActivity(_ context.Context, _ []int16, _ string, act []float32) (speech.Result, error) {
	res := r.res
	res.Margin = float64(len(act))
	return res, r.err
}

func TestSpeech(t *testing.T) {
	down := errors.New("runtime down")
	tests := []struct {
		name    string
		rec     recognizer
		want    liveness.SpeechResult
		wantErr error
	}{
		{name: "match", rec: recognizer{res: speech.Result{Match: true, Margin: 3.5}}, want: liveness.SpeechResult{Match: true, Score: 3.5}},
		{name: "segments", rec: recognizer{res: speech.Result{Match: true, Margin: 1, Segments: []speech.Segment{{Start: time.Second, End: 2 * time.Second}}}},
			want: liveness.SpeechResult{Match: true, Score: 1, Segments: []liveness.Segment{{Start: time.Second, End: 2 * time.Second}}}},
		{name: "wrong digits", rec: recognizer{res: speech.Result{Margin: -2}}, want: liveness.SpeechResult{Score: -2}},
		{name: "no speech", rec: recognizer{err: speech.ErrNoSpeech}, wantErr: liveness.ErrNoSpeech},
		{name: "failure passes through", rec: recognizer{err: down}, wantErr: down},
	}
	// The voice check's activity reaches a recogniser that takes it; without
	// one it finds its own.
	ar := activityRecognizer{recognizer{res: speech.Result{Match: true, Margin: 9}}}
	got, err := facelogin.Speech{Recognizer: ar}.CheckDigits(context.Background(), nil, "4071", []float32{0.1, 0.9})
	if err != nil || got.Score != 2 {
		t.Errorf("with activity: %+v, %v; want ScoreActivity with 2 values", got, err)
	}
	got, err = facelogin.Speech{Recognizer: ar}.CheckDigits(context.Background(), nil, "4071", nil)
	if err != nil || got.Score != 9 {
		t.Errorf("without activity: %+v, %v; want Score", got, err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := facelogin.Speech{Recognizer: tc.rec}.CheckDigits(context.Background(), nil, "4071", nil)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMemoryRefs(t *testing.T) {
	refs := facelogin.MemoryRefs{Refs: map[string][]float32{"s": {1, 0}}, Threshold: 0.5}
	tests := []struct {
		name    string
		subject string
		emb     []float32
		want    liveness.MatchResult
	}{
		{name: "same", subject: "s", emb: []float32{1, 0}, want: liveness.MatchResult{Match: true, Score: 1}},
		{name: "orthogonal", subject: "s", emb: []float32{0, 1}, want: liveness.MatchResult{Score: 0}},
		{name: "unknown subject", subject: "x", emb: []float32{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := refs.MatchReference(context.Background(), tc.subject, tc.emb)
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
