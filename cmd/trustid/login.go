package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	authid "github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/oidc"
)

// identityRefs adapts the identity service to liveness.ReferenceMatcher: the
// live face is compared with the citizen's register and enrolled templates
// at the configured operating point.
type identityRefs struct{ svc *authid.Service }

var _ liveness.ReferenceMatcher = identityRefs{}

func (m identityRefs) MatchReference(ctx context.Context, subject string, emb []float32) (liveness.MatchResult, error) {
	ok, score, err := m.svc.MatchReference(ctx, subject, emb)
	if err != nil {
		return liveness.MatchResult{}, err
	}
	return liveness.MatchResult{Match: ok, Score: float64(score)}, nil
}

// faceLogin is the "face" login method of the provider: the citizen claims
// an identity (login_hint or the ID number typed on the login page), reads
// four fresh digits on camera, and passes when the liveness decision (speech,
// lip sync, anti-spoof, same face, match with the register) passes.
type faceLogin struct {
	ids        *authid.Service
	challenges *challenge.Manager
	verifier   *liveness.Verifier
	log        *slog.Logger
	now        func() time.Time
	// limits of the uploaded evidence
	maxVideo  int64
	maxFrames int
}

var _ oidc.Authenticator = (*faceLogin)(nil)

func (f *faceLogin) Method() string { return "face" }
func (f *faceLogin) MaxACR() string { return oidc.ACRFaceLiveness }

// beginResponse is what the login page shows: the digits to read.
type beginResponse struct {
	ChallengeID string `json:"challenge_id"`
	Digits      string `json:"digits"`
	ExpiresIn   int    `json:"expires_in"`
}

// subject resolves the claimed citizen. An unknown ID number resolves to an
// opaque placeholder so that Begin answers the same way for every ID number
// (no enumeration); Finish then fails like any other mismatch.
func (f *faceLogin) subject(ctx context.Context, a *oidc.LoginAttempt, typed string) string {
	if a.CitizenID != "" {
		return a.CitizenID
	}
	claimed := strings.TrimSpace(typed)
	if claimed == "" {
		claimed = strings.TrimSpace(a.LoginHint)
	}
	if claimed == "" {
		return ""
	}
	if id, err := f.ids.ResolveIDNumber(ctx, claimed); err == nil {
		return id
	}
	h := sha256.Sum256([]byte("trustid/unknown-subject\x00" + a.ID + "\x00" + claimed))
	return "unknown:" + hex.EncodeToString(h[:8])
}

func (f *faceLogin) Begin(ctx context.Context, a *oidc.LoginAttempt) (any, error) {
	return f.begin(ctx, a, "", "")
}

var _ oidc.RequestBeginner = (*faceLogin)(nil)

// BeginRequest is Begin with the page's request: the ID number the citizen
// typed (JSON {"id_number": ...}; optional when the client sent login_hint)
// and the client address for the per-address rate limit.
func (f *faceLogin) BeginRequest(ctx context.Context, a *oidc.LoginAttempt, r *http.Request) (any, error) {
	typed, err := beginIDNumber(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", oidc.ErrAuthenticationFailed, err)
	}
	return f.begin(ctx, a, typed, clientAddr(r))
}

// beginIDNumber reads the optional id_number of a begin request.
func beginIDNumber(r *http.Request) (string, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", fmt.Errorf("begin body: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return "", nil
	}
	var body struct {
		IDNumber string `json:"id_number"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return "", fmt.Errorf("begin body: %w", err)
	}
	if len(body.IDNumber) > 64 {
		return "", errors.New("begin body: id_number too long")
	}
	return body.IDNumber, nil
}

func (f *faceLogin) begin(ctx context.Context, a *oidc.LoginAttempt, typed, addr string) (any, error) {
	sub := f.subject(ctx, a, typed)
	if sub == "" {
		return nil, fmt.Errorf("%w: no claimed identity", oidc.ErrAuthenticationFailed)
	}
	iss, err := f.challenges.Issue(ctx, a.ID, sub, addr)
	if err != nil {
		return nil, err
	}
	return beginResponse{ChallengeID: iss.ID, Digits: iss.Digits, ExpiresIn: int(iss.ExpiresAt.Sub(f.now()).Seconds())}, nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Finish reads the evidence: multipart with challenge_id, id_number
// (optional, as typed at Begin), and either a "video" file or "frame" JPEG
// files with a "timestamps_ms" field (comma-separated) plus an "audio" WAV.
func (f *faceLogin) Finish(ctx context.Context, a *oidc.LoginAttempt, r *http.Request) (*oidc.Authentication, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: evidence must be multipart/form-data: %v", oidc.ErrAuthenticationFailed, err)
	}
	ev, err := readEvidence(mr, f.maxVideo, f.maxFrames)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", oidc.ErrAuthenticationFailed, err)
	}
	sub := f.subject(ctx, a, ev.idNumber)
	if sub == "" {
		return nil, fmt.Errorf("%w: no claimed identity", oidc.ErrAuthenticationFailed)
	}
	req := liveness.Request{ChallengeID: ev.challengeID, SessionID: a.ID, Subject: sub, ClientAddr: clientAddr(r)}
	switch {
	case len(ev.video) > 0:
		req.Video = bytes.NewReader(ev.video)
	case len(ev.frames) > 0:
		req.Frames, req.WAV = ev.frames, ev.wav
	default:
		return nil, fmt.Errorf("%w: no evidence", oidc.ErrAuthenticationFailed)
	}
	res, err := f.verifier.Verify(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", oidc.ErrAuthenticationFailed, err)
	}
	if !res.Pass || strings.HasPrefix(sub, "unknown:") {
		f.log.Info("face login refused", "reasons", res.Reasons, "elapsed_ms", res.Elapsed.Milliseconds())
		return nil, fmt.Errorf("%w: liveness %v", oidc.ErrAuthenticationFailed, res.Reasons)
	}
	return &oidc.Authentication{
		CitizenID: sub,
		ACR:       oidc.ACRFaceLiveness,
		AMR:       []string{oidc.AMRFace, oidc.AMRLiveness},
		AuthTime:  f.now(),
	}, nil
}

type evidence struct {
	challengeID, idNumber string
	video, wav            []byte
	frames                []media.JPEGFrame
}

var errEvidence = errors.New("bad evidence")

// readEvidence parses the multipart evidence with limits on every part.
func readEvidence(mr *multipart.Reader, maxVideo int64, maxFrames int) (*evidence, error) {
	ev := &evidence{}
	var stamps []time.Duration
	var jpegs [][]byte
	const maxField = 4 << 10
	const maxFrameBytes = 512 << 10
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errEvidence, err)
		}
		read := func(limit int64) ([]byte, error) {
			b, err := io.ReadAll(io.LimitReader(p, limit+1))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", errEvidence, p.FormName(), err)
			}
			if int64(len(b)) > limit {
				return nil, fmt.Errorf("%w: %s larger than %d bytes", errEvidence, p.FormName(), limit)
			}
			return b, nil
		}
		var b []byte
		switch p.FormName() {
		case "challenge_id", "id_number", "timestamps_ms":
			b, err = read(maxField)
		case "video", "audio":
			b, err = read(maxVideo)
		case "frame":
			if len(jpegs) >= maxFrames {
				return nil, fmt.Errorf("%w: more than %d frames", errEvidence, maxFrames)
			}
			b, err = read(maxFrameBytes)
		default:
			return nil, fmt.Errorf("%w: unknown field %q", errEvidence, p.FormName())
		}
		if err != nil {
			return nil, err
		}
		switch p.FormName() {
		case "challenge_id":
			ev.challengeID = string(b)
		case "id_number":
			ev.idNumber = string(b)
		case "timestamps_ms":
			for _, s := range strings.Split(string(b), ",") {
				ms, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil || ms < 0 || ms > 60_000 {
					return nil, fmt.Errorf("%w: bad timestamp %q", errEvidence, s)
				}
				stamps = append(stamps, time.Duration(ms*float64(time.Millisecond)))
			}
		case "video":
			ev.video = b
		case "audio":
			ev.wav = b
		case "frame":
			jpegs = append(jpegs, b)
		}
	}
	if ev.challengeID == "" {
		return nil, fmt.Errorf("%w: missing challenge_id", errEvidence)
	}
	if len(jpegs) > 0 {
		if len(stamps) != len(jpegs) {
			return nil, fmt.Errorf("%w: %d frames but %d timestamps", errEvidence, len(jpegs), len(stamps))
		}
		if len(ev.wav) == 0 {
			return nil, fmt.Errorf("%w: frames without audio", errEvidence)
		}
		for i := range jpegs {
			ev.frames = append(ev.frames, media.JPEGFrame{T: stamps[i], JPEG: jpegs[i]})
		}
		sort.SliceStable(ev.frames, func(i, j int) bool { return ev.frames[i].T < ev.frames[j].T })
	}
	return ev, nil
}
