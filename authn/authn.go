// Package authn is the login-method contract: the types a login method
// (face + spoken digits in authn/facelogin, passkeys in authn/passkey) and
// its consumer (the OIDC provider in oidc/) share. It knows no protocol: a
// Method sees an Attempt and the HTTP request of its own step and answers
// with a Result; turning that into a session, a token or a certificate is
// the consumer's business. The assurance levels (acr) and method references
// (amr) a method reports are defined here so that methods and consumers
// agree on them without importing each other.
package authn

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Assurance levels ("acr" values), lowest first. A consumer reports the
// level actually achieved by the login, and a relying party names the
// minimum it requires (step-up: a session below it must authenticate again).
//
//	urn:trustid:acr:passkey                 a passkey of the citizen (possession + device user verification)
//	urn:trustid:acr:face                    face 1:1 against the register photo
//	urn:trustid:acr:face+actions            face 1:1 + action liveness (random facial actions in order, same face throughout)
//	urn:trustid:acr:face+liveness           face 1:1 + spoken-digit liveness (live person, same face throughout)
//
// Spoken digits rank above actions: 8,000-odd admissible codes read with
// the voice and lips checked against each other, against 80 action
// sequences of the face alone. A relying party that names
// urn:trustid:acr:face+liveness never gets a login completed with actions.
//
//	urn:trustid:acr:face+liveness+passkey   the above and a passkey: two independent factors
const (
	ACRPasskey             = "urn:trustid:acr:passkey"
	ACRFace                = "urn:trustid:acr:face"
	ACRFaceActions         = "urn:trustid:acr:face+actions"
	ACRFaceLiveness        = "urn:trustid:acr:face+liveness"
	ACRFaceLivenessPasskey = "urn:trustid:acr:face+liveness+passkey"
)

// ACRLadder lists the assurance levels in increasing order.
var ACRLadder = []string{ACRPasskey, ACRFace, ACRFaceActions, ACRFaceLiveness, ACRFaceLivenessPasskey}

// ACRRank is the position of acr on ACRLadder, -1 if unknown.
func ACRRank(acr string) int {
	for i, a := range ACRLadder {
		if a == acr {
			return i
		}
	}
	return -1
}

// AMR values (RFC 8176 where one exists).
const (
	AMRFace     = "face"     // facial recognition (RFC 8176)
	AMRLiveness = "liveness" // an active liveness challenge passed on camera (TrustID); the next two say which
	// AMRSpokenDigits: random digits read aloud, voice and lips checked (TrustID).
	AMRSpokenDigits = "spoken_digits"
	// AMRFaceActions: random facial actions done in order (TrustID).
	AMRFaceActions = "face_actions"
	AMRHardware    = "hwk"  // proof of possession of a hardware key: passkey (RFC 8176)
	AMRUser        = "user" // user presence/verification on the authenticator (RFC 8176)
	AMRMFA         = "mfa"  // more than one factor (RFC 8176)
)

// ErrAuthenticationFailed is what a Method returns for any failed attempt;
// callers and browsers are not told why (the reason goes to logs).
var ErrAuthenticationFailed = errors.New("authn: authentication failed")

// Refusals that are not a verdict on the citizen: the consumer answers them
// with their own status (a client error, a limit, a fault) and does not
// count them as failed sign-ins. A Method returns them wrapped in a
// *Refusal (use Refuse) so the consumer also learns a stable code and when
// to retry.
var (
	// ErrMalformed: the request or evidence could not be read (HTTP 400).
	ErrMalformed = errors.New("authn: malformed request")
	// ErrLimited: too many attempts for now (HTTP 429 with Retry-After).
	ErrLimited = errors.New("authn: too many attempts")
	// ErrUnavailable: a dependency is down or the node is full (HTTP 503
	// with Retry-After).
	ErrUnavailable = errors.New("authn: temporarily unavailable")
	// ErrNotPermitted: the method may not be used for this request or
	// person, whoever they are (HTTP 403): no face consent given, a child
	// without a guardian flow. The page offers another method.
	ErrNotPermitted = errors.New("authn: method not permitted here")
)

// Refusal is a refused step with a stable machine code for the client
// (e.g. "invalid_evidence", "locked_out", "decoder_busy") and a retry
// hint. It matches its Kind with errors.Is; Err is the internal cause (for
// logs, never shown).
type Refusal struct {
	Kind       error // ErrMalformed, ErrLimited, ErrUnavailable or ErrNotPermitted
	Code       string
	RetryAfter time.Duration
	Err        error
}

// Refuse returns a *Refusal.
func Refuse(kind error, code string, retryAfter time.Duration, cause error) *Refusal {
	return &Refusal{Kind: kind, Code: code, RetryAfter: retryAfter, Err: cause}
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return r.Kind.Error() + ": " + r.Code
	}
	return r.Kind.Error() + ": " + r.Code + ": " + r.Err.Error()
}

// Unwrap makes the Refusal match its Kind and its cause.
func (r *Refusal) Unwrap() []error { return []error{r.Kind, r.Err} }

// Attempt is what a Method knows about the login in progress. The consumer
// persists it between steps (the provider in its ephemeral store), so every
// field must survive JSON.
type Attempt struct {
	// ID is the opaque login id; bind challenges to it.
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	// LoginHint is the relying party's hint of the claimed citizen, may be empty.
	LoginHint string `json:"login_hint,omitempty"`
	// MinACR is the lowest acceptable acr ("" for any).
	MinACR string `json:"min_acr,omitempty"`
	// CitizenID is set when a previous factor already identified the citizen
	// (step-up from a session).
	CitizenID   string    `json:"citizen_id,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// Result is who authenticated, how and when: the outcome of a successful
// login step.
type Result struct {
	CitizenID string    `json:"citizen_id"`
	ACR       string    `json:"acr"`
	AMR       []string  `json:"amr"`
	AuthTime  time.Time `json:"auth_time"`
	// Cookies are set on the response of the successful step (e.g. a
	// method's proof that this device is known for the citizen); never
	// persisted.
	Cookies []*http.Cookie `json:"-"`
}

// Method is one login method (face + liveness, passkey, ...). A consumer
// runs it in two steps: Begin returns the JSON-encodable challenge the login
// page shows (e.g. digits to read, WebAuthn options); Finish checks the
// evidence the page sends back.
type Method interface {
	// Method is a short URL-safe name, e.g. "face".
	Method() string
	// MaxACR is the highest acr this method can achieve.
	MaxACR() string
	// Begin starts a step and returns data for the page (JSON-encoded).
	Begin(ctx context.Context, a *Attempt) (any, error)
	// Finish checks the evidence in r (the consumer limits the body) and
	// returns who authenticated, or an error wrapping ErrAuthenticationFailed.
	Finish(ctx context.Context, a *Attempt, r *http.Request) (*Result, error)
}

// RequestBeginner is implemented by a Method whose Begin needs the login
// page's request: an identifier the citizen typed (a small JSON body, the
// consumer limits it) or the client address for rate limits. The consumer
// then calls BeginRequest instead of Begin.
type RequestBeginner interface {
	BeginRequest(ctx context.Context, a *Attempt, r *http.Request) (any, error)
}
