package oidc

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Assurance levels ("acr" values), lowest first. The provider reports the
// level actually achieved by the login, and acr_values in an authorization
// request name the minimum a client requires (step-up: a session below it
// must authenticate again).
//
//	urn:trustid:acr:passkey                 a passkey of the citizen (possession + device user verification)
//	urn:trustid:acr:face                    face 1:1 against the register photo
//	urn:trustid:acr:face+liveness           face 1:1 + spoken-digit liveness (live person, same face throughout)
//	urn:trustid:acr:face+liveness+passkey   the above and a passkey: two independent factors
const (
	ACRPasskey             = "urn:trustid:acr:passkey"
	ACRFace                = "urn:trustid:acr:face"
	ACRFaceLiveness        = "urn:trustid:acr:face+liveness"
	ACRFaceLivenessPasskey = "urn:trustid:acr:face+liveness+passkey"
)

// ACRLadder lists the assurance levels in increasing order.
var ACRLadder = []string{ACRPasskey, ACRFace, ACRFaceLiveness, ACRFaceLivenessPasskey}

// acrRank is the position of acr on the ladder, -1 if unknown.
func acrRank(acr string) int {
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
	AMRLiveness = "liveness" // spoken random digits checked on camera (TrustID)
	AMRHardware = "hwk"      // proof of possession of a hardware key: passkey (RFC 8176)
	AMRUser     = "user"     // user presence/verification on the authenticator (RFC 8176)
	AMRMFA      = "mfa"      // more than one factor (RFC 8176)
)

// ErrAuthenticationFailed is what an Authenticator returns for any failed
// attempt; callers and browsers are not told why (the reason goes to logs).
var ErrAuthenticationFailed = errors.New("oidc: authentication failed")

// LoginAttempt is what an Authenticator knows about the login in progress.
// It is persisted in the ephemeral store between steps, so every field must
// survive JSON.
type LoginAttempt struct {
	// ID is the opaque login id; bind challenges to it.
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	// LoginHint is the client's login_hint (the claimed citizen), may be empty.
	LoginHint string `json:"login_hint,omitempty"`
	// MinACR is the lowest acceptable acr ("" for any).
	MinACR string `json:"min_acr,omitempty"`
	// CitizenID is set when a previous factor already identified the citizen
	// (step-up from a session).
	CitizenID   string    `json:"citizen_id,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// Authentication is the result of a successful login step.
type Authentication struct {
	CitizenID string    `json:"citizen_id"`
	ACR       string    `json:"acr"`
	AMR       []string  `json:"amr"`
	AuthTime  time.Time `json:"auth_time"`
}

// Authenticator is one login method (face + liveness, passkey, ...). The
// provider mounts it at /oauth2/login/{Method}: POST .../begin returns the
// JSON challenge the login page shows (e.g. digits to read); POST
// .../finish carries the evidence. Implementations live in authn/ and
// liveness/ and are plugged in by cmd/.
type Authenticator interface {
	// Method is a short URL-safe name, e.g. "face".
	Method() string
	// MaxACR is the highest acr this method can achieve.
	MaxACR() string
	// Begin starts a step and returns data for the page (JSON-encoded).
	Begin(ctx context.Context, a *LoginAttempt) (any, error)
	// Finish checks the evidence in r (the body is limited by the provider)
	// and returns who authenticated, or an error wrapping ErrAuthenticationFailed.
	Finish(ctx context.Context, a *LoginAttempt, r *http.Request) (*Authentication, error)
}

// RequestBeginner is implemented by an Authenticator whose Begin needs the
// login page's request: an identifier the citizen typed (JSON body, at most
// MaxBeginBytes) or the client address for rate limits. The provider then
// calls BeginRequest instead of Begin.
type RequestBeginner interface {
	BeginRequest(ctx context.Context, a *LoginAttempt, r *http.Request) (any, error)
}

// MaxBeginBytes bounds the body of POST /oauth2/login/{method}/begin.
const MaxBeginBytes = 4 << 10
