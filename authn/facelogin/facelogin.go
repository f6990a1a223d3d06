// Package facelogin is the face + liveness login method: the citizen
// claims an identity (the relying party's login hint or the ID number typed
// on the login page), reads fresh random digits on camera or, where no
// recogniser serves the page's language, does random facial actions
// (kind.go), and passes when the liveness decision (speech and lip sync, or
// the actions; anti-spoof, same face, match with the register) passes. It implements authn.Method, knows no protocol, and
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
	"github.com/trustid/trustid/liveness/media"
)

// MethodName is the method's URL-safe name ("face").
const MethodName = "face"

// Register resolves the ID number a citizen claims to their internal id
// (identity.Service does). Any error counts as an unknown ID number.
type Register interface {
	ResolveIDNumber(ctx context.Context, idNumber string) (citizenID string, err error)
}

// Challenges issues the challenges, digits or actions (challenge.Manager
// does); the liveness decision consumes them.
type Challenges interface {
	IssueKind(ctx context.Context, kind challenge.Kind, sessionID, subject string, c challenge.Client) (challenge.Issued, error)
	IsKnownDevice(subject, device, proof string) bool
	KnownDeviceProof(subject, device string) string
}

// Device identity (see challenge.Client): the page sends a random id it
// keeps in the browser's storage as the "device" field, and after a
// success the method sets a cookie proving the device is known for the
// citizen, so that failures elsewhere never lock that device out.
const (
	FieldDevice      = "device"
	CookieKnown      = "trustid_known_device"
	knownCookieTTL   = 180 * 24 * time.Hour
	maxDeviceIDBytes = 64
)

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
	// Audit, when set, records each face consent (consent.go).
	Audit Auditor
	// DigitLanguages are the languages (BCP 47 primary tags, e.g. "en")
	// whose spoken digits the Verifier's recogniser serves (its language
	// tag); nil means English. A page in another language never asks for
	// digits.
	DigitLanguages []string
	// Actions says the Verifier checks action challenges (an
	// ActionTracker is configured).
	Actions bool
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
	if cfg.DigitLanguages == nil {
		// The recogniser shipped (liveness/speech) hears English digits.
		cfg.DigitLanguages = []string{"en"}
	}
	return &Login{cfg: cfg}, nil
}

// Method implements authn.Method.
func (f *Login) Method() string { return MethodName }

// MaxACR implements authn.Method.
func (f *Login) MaxACR() string { return authn.ACRFaceLiveness }

// beginResponse is what the login page shows: the digits to read or the
// actions to do, in order.
type beginResponse struct {
	ChallengeID string         `json:"challenge_id"`
	Kind        challenge.Kind `json:"kind"`
	Digits      string         `json:"digits,omitempty"`
	Actions     []string       `json:"actions,omitempty"`
	ExpiresIn   int            `json:"expires_in"`
}

// subject resolves the claimed citizen. An unknown, malformed or disabled
// ID number resolves to an opaque placeholder so that Begin answers the
// same way for every ID number (no enumeration); Finish then fails like any
// other mismatch. A lookup that failed (the register unavailable) is a
// fault, refused as unavailable: taken for an unknown number, it bound the
// challenge Begin issued during a database restart to the placeholder, and
// the Finish after the restart, which found the citizen, was refused as
// "challenge_refused" (cmd/trustid TestFault, PostgreSQL restart).
func (f *Login) subject(ctx context.Context, a *authn.Attempt, typed string) (string, error) {
	if a.CitizenID != "" {
		return a.CitizenID, nil
	}
	claimed := strings.TrimSpace(typed)
	if claimed == "" {
		claimed = strings.TrimSpace(a.LoginHint)
	}
	if claimed == "" {
		return "", authn.Refuse(authn.ErrMalformed, "missing_id_number", 0, errors.New("no claimed identity"))
	}
	id, err := f.cfg.Register.ResolveIDNumber(ctx, claimed)
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, identity.ErrUnknownIDNumber), errors.Is(err, identity.ErrInvalidIDNumber), errors.Is(err, identity.ErrDisabled):
		h := sha256.Sum256([]byte("trustid/unknown-subject\x00" + a.ID + "\x00" + claimed))
		return "unknown:" + hex.EncodeToString(h[:8]), nil
	}
	return "", authn.Refuse(authn.ErrUnavailable, "temporarily_unavailable", 2*time.Second, fmt.Errorf("facelogin: resolve the ID number: %w", err))
}

// Begin implements authn.Method for a claim made by the login hint or a
// previous factor.
func (f *Login) Begin(ctx context.Context, a *authn.Attempt) (any, error) {
	return f.begin(ctx, a, beginRequest{}, nil)
}

// BeginRequest is Begin with the page's request: the ID number the citizen
// typed (JSON {"id_number": ...}; optional when the client sent login_hint)
// and the client address for the per-address rate limit.
func (f *Login) BeginRequest(ctx context.Context, a *authn.Attempt, r *http.Request) (any, error) {
	body, err := beginBody(r)
	if err != nil {
		return nil, authn.Refuse(authn.ErrMalformed, "invalid_request", 0, err)
	}
	return f.begin(ctx, a, body, r)
}

// client is who asks, for the abuse limits.
func (f *Login) client(r *http.Request, device, subject string) challenge.Client {
	c := challenge.Client{Addr: clientAddr(r), Device: device}
	if subject != "" && device != "" {
		if k, err := r.Cookie(CookieKnown); err == nil {
			c.Known = f.cfg.Challenges.IsKnownDevice(subject, device, k.Value)
		}
	}
	return c
}

// begin issues a challenge; r is the page's request (nil from Begin).
func (f *Login) begin(ctx context.Context, a *authn.Attempt, body beginRequest, r *http.Request) (any, error) {
	sub, err := f.subject(ctx, a, body.IDNumber)
	if err != nil {
		return nil, err
	}
	if err := f.permitted(ctx, a, body.IDNumber, body.FaceConsent, sub); err != nil {
		return nil, err
	}
	kind, err := f.kind(body.Lang, a.MinACR)
	if err != nil {
		return nil, err
	}
	var c challenge.Client
	if r != nil {
		c = f.client(r, body.Device, sub)
	}
	iss, err := f.cfg.Challenges.IssueKind(ctx, kind, a.ID, sub, c)
	var re *challenge.RetryError
	switch {
	case errors.As(err, &re) && errors.Is(err, challenge.ErrLocked):
		return nil, authn.Refuse(authn.ErrLimited, "locked_out", re.RetryAfter, err)
	case errors.As(err, &re):
		return nil, authn.Refuse(authn.ErrLimited, "rate_limited", re.RetryAfter, err)
	case err != nil:
		return nil, authn.Refuse(authn.ErrUnavailable, "temporarily_unavailable", 2*time.Second, err)
	}
	resp := beginResponse{ChallengeID: iss.ID, Kind: iss.Kind, Digits: iss.Digits, ExpiresIn: int(iss.ExpiresAt.Sub(f.cfg.Clock()).Seconds())}
	for _, x := range iss.Actions {
		resp.Actions = append(resp.Actions, string(x))
	}
	return resp, nil
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
		return nil, authn.Refuse(authn.ErrMalformed, "invalid_evidence", 0, fmt.Errorf("evidence must be multipart/form-data: %w", err))
	}
	ev, err := readEvidence(mr, f.cfg.MaxVideoBytes, f.cfg.MaxFrames)
	if err != nil {
		return nil, authn.Refuse(authn.ErrMalformed, "invalid_evidence", 0, err)
	}
	sub, err := f.subject(ctx, a, ev.idNumber)
	if err != nil {
		return nil, err
	}
	if err := f.permitted(ctx, a, ev.idNumber, ev.faceConsent, ""); err != nil {
		return nil, err
	}
	c := f.client(r, ev.device, sub)
	req := liveness.Request{ChallengeID: ev.challengeID, SessionID: a.ID, Subject: sub,
		ClientAddr: c.Addr, Device: c.Device, KnownDevice: c.Known}
	switch {
	case len(ev.video) > 0:
		req.Video = bytes.NewReader(ev.video)
	case len(ev.frames) > 0:
		req.Frames, req.WAV = ev.frames, ev.wav
	default:
		return nil, authn.Refuse(authn.ErrMalformed, "invalid_evidence", 0, errors.New("no video and no frames"))
	}
	res, err := f.cfg.Verifier.Verify(ctx, req)
	switch {
	case errors.Is(err, media.ErrBusy):
		return nil, authn.Refuse(authn.ErrUnavailable, "decoder_busy", 5*time.Second, err)
	case err != nil:
		return nil, authn.Refuse(authn.ErrUnavailable, "temporarily_unavailable", 2*time.Second, err)
	case res.Has(liveness.ReasonLocked):
		return nil, authn.Refuse(authn.ErrLimited, "locked_out", res.RetryAfter, fmt.Errorf("liveness %v", res.Reasons))
	case res.Malformed():
		// The challenge was refused (unknown, expired, used) or the evidence
		// could not be read: the page asks again, nothing was judged.
		return nil, authn.Refuse(authn.ErrMalformed, malformedCode(res), 0, fmt.Errorf("liveness %v", res.Reasons))
	}
	if !res.Pass || strings.HasPrefix(sub, "unknown:") {
		f.cfg.Logger.Info("face login refused", "reasons", res.Reasons, "elapsed_ms", res.Elapsed.Milliseconds())
		return nil, fmt.Errorf("%w: liveness %v", authn.ErrAuthenticationFailed, res.Reasons)
	}
	var cookies []*http.Cookie
	if c.Device != "" {
		cookies = append(cookies, &http.Cookie{
			Name: CookieKnown, Value: f.cfg.Challenges.KnownDeviceProof(sub, c.Device), Path: "/",
			MaxAge: int(knownCookieTTL.Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		})
	}
	acr, amr := methodOf(res.Kind)
	return &authn.Result{
		CitizenID: sub,
		ACR:       acr,
		AMR:       amr,
		AuthTime:  f.cfg.Clock(),
		Cookies:   cookies,
	}, nil
}

// malformedCode is the stable code of an attempt refused before judging.
func malformedCode(res liveness.Result) string {
	if res.Has(liveness.ReasonChallenge) {
		return "challenge_refused"
	}
	return "invalid_evidence"
}
