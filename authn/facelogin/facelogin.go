// Package facelogin is the face + spoken-digit login method: the citizen
// claims an identity (the relying party's login hint or the ID number typed
// on the login page), reads fresh random digits on camera, and passes when
// the liveness decision (speech, lip sync, anti-spoof, same face, match with
// the register) passes. It implements authn.Method, knows no protocol, and
// holds the adapters that connect the liveness decision to its engines
// (authn/face, liveness/speech, the register in authn/identity), so the
// service and the lab build the same decision.
package facelogin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
)

// MethodName is the method's URL-safe name ("face").
const MethodName = "face"

// Register resolves the ID number a citizen claims to their internal id
// (identity.Service does). Any error counts as an unknown ID number.
type Register interface {
	ResolveIDNumber(ctx context.Context, idNumber string) (citizenID string, err error)
}

// Challenges issues the digits to read (challenge.Manager does); the
// liveness decision consumes them.
type Challenges interface {
	Issue(ctx context.Context, sessionID, subject, addr string) (challenge.Issued, error)
}

// Verifier makes the liveness decision (liveness.Verifier does).
type Verifier interface {
	Verify(ctx context.Context, req liveness.Request) (liveness.Result, error)
}

var (
	_ Register   = (*identity.Service)(nil)
	_ Challenges = (*challenge.Manager)(nil)
	_ Verifier   = (*liveness.Verifier)(nil)
)

// Config holds the live dependencies and the evidence limits.
type Config struct {
	Register   Register
	Challenges Challenges
	Verifier   Verifier
	Logger     *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	// MaxVideoBytes bounds the video, and separately the audio, of the
	// evidence (required).
	MaxVideoBytes int64
	// MaxFrames bounds the number of JPEG frames, default 300.
	MaxFrames int
}

// ErrConfig wraps configuration problems.
var ErrConfig = errors.New("facelogin: invalid config")

// Login is the "face" login method. Its zero value only answers Method and
// MaxACR; build a working one with New.
type Login struct {
	cfg Config
}

var (
	_ authn.Method          = (*Login)(nil)
	_ authn.RequestBeginner = (*Login)(nil)
)

// New checks cfg and reports every problem at once.
func New(cfg Config) (*Login, error) {
	var errs []error
	if cfg.Register == nil || cfg.Challenges == nil || cfg.Verifier == nil || cfg.Logger == nil {
		errs = append(errs, fmt.Errorf("%w: Register, Challenges, Verifier and Logger are required", ErrConfig))
	}
	if cfg.MaxVideoBytes <= 0 {
		errs = append(errs, fmt.Errorf("%w: MaxVideoBytes must be positive", ErrConfig))
	}
	if cfg.MaxFrames < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxFrames must not be negative", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxFrames == 0 {
		cfg.MaxFrames = 300
	}
	return &Login{cfg: cfg}, nil
}

// Method implements authn.Method.
func (f *Login) Method() string { return MethodName }

// MaxACR implements authn.Method.
func (f *Login) MaxACR() string { return authn.ACRFaceLiveness }

// beginResponse is what the login page shows: the digits to read.
type beginResponse struct {
	ChallengeID string `json:"challenge_id"`
	Digits      string `json:"digits"`
	ExpiresIn   int    `json:"expires_in"`
}

// subject resolves the claimed citizen. An unknown ID number resolves to an
// opaque placeholder so that Begin answers the same way for every ID number
// (no enumeration); Finish then fails like any other mismatch.
func (f *Login) subject(ctx context.Context, a *authn.Attempt, typed string) string {
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
	if id, err := f.cfg.Register.ResolveIDNumber(ctx, claimed); err == nil {
		return id
	}
	h := sha256.Sum256([]byte("trustid/unknown-subject\x00" + a.ID + "\x00" + claimed))
	return "unknown:" + hex.EncodeToString(h[:8])
}

// Begin implements authn.Method for a claim made by the login hint or a
// previous factor.
func (f *Login) Begin(ctx context.Context, a *authn.Attempt) (any, error) {
	return f.begin(ctx, a, "", "")
}

// BeginRequest is Begin with the page's request: the ID number the citizen
// typed (JSON {"id_number": ...}; optional when the client sent login_hint)
// and the client address for the per-address rate limit.
func (f *Login) BeginRequest(ctx context.Context, a *authn.Attempt, r *http.Request) (any, error) {
	typed, err := beginIDNumber(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, err)
	}
	return f.begin(ctx, a, typed, clientAddr(r))
}

func (f *Login) begin(ctx context.Context, a *authn.Attempt, typed, addr string) (any, error) {
	sub := f.subject(ctx, a, typed)
	if sub == "" {
		return nil, fmt.Errorf("%w: no claimed identity", authn.ErrAuthenticationFailed)
	}
	iss, err := f.cfg.Challenges.Issue(ctx, a.ID, sub, addr)
	if err != nil {
		return nil, err
	}
	return beginResponse{ChallengeID: iss.ID, Digits: iss.Digits, ExpiresIn: int(iss.ExpiresAt.Sub(f.cfg.Clock()).Seconds())}, nil
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
func (f *Login) Finish(ctx context.Context, a *authn.Attempt, r *http.Request) (*authn.Result, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: evidence must be multipart/form-data: %v", authn.ErrAuthenticationFailed, err)
	}
	ev, err := readEvidence(mr, f.cfg.MaxVideoBytes, f.cfg.MaxFrames)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, err)
	}
	sub := f.subject(ctx, a, ev.idNumber)
	if sub == "" {
		return nil, fmt.Errorf("%w: no claimed identity", authn.ErrAuthenticationFailed)
	}
	req := liveness.Request{ChallengeID: ev.challengeID, SessionID: a.ID, Subject: sub, ClientAddr: clientAddr(r)}
	switch {
	case len(ev.video) > 0:
		req.Video = bytes.NewReader(ev.video)
	case len(ev.frames) > 0:
		req.Frames, req.WAV = ev.frames, ev.wav
	default:
		return nil, fmt.Errorf("%w: no evidence", authn.ErrAuthenticationFailed)
	}
	res, err := f.cfg.Verifier.Verify(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, err)
	}
	if !res.Pass || strings.HasPrefix(sub, "unknown:") {
		f.cfg.Logger.Info("face login refused", "reasons", res.Reasons, "elapsed_ms", res.Elapsed.Milliseconds())
		return nil, fmt.Errorf("%w: liveness %v", authn.ErrAuthenticationFailed, res.Reasons)
	}
	return &authn.Result{
		CitizenID: sub,
		ACR:       authn.ACRFaceLiveness,
		AMR:       []string{authn.AMRFace, authn.AMRLiveness},
		AuthTime:  f.cfg.Clock(),
	}, nil
}
