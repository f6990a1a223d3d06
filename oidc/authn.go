package oidc

import "github.com/trustid/trustid/authn"

// The provider consumes login methods through the contract of package
// authn (it never imports a method's package; cmd/ plugs them in). These
// are the provider's names for that contract.

// Assurance levels ("acr" values) the provider reports and acr_values in an
// authorization request name (see authn.ACRLadder).
const (
	ACRPasskey             = authn.ACRPasskey
	ACRFace                = authn.ACRFace
	ACRFaceActions         = authn.ACRFaceActions
	ACRFaceLiveness        = authn.ACRFaceLiveness
	ACRFaceLivenessPasskey = authn.ACRFaceLivenessPasskey
)

// ACRLadder lists the assurance levels in increasing order.
var ACRLadder = authn.ACRLadder

// acrRank is the position of acr on the ladder, -1 if unknown.
func acrRank(acr string) int { return authn.ACRRank(acr) }

// AMR values (RFC 8176 where one exists).
const (
	AMRFace     = authn.AMRFace
	AMRLiveness = authn.AMRLiveness
	// AMRSpokenDigits and AMRFaceActions name the liveness challenge.
	AMRSpokenDigits = authn.AMRSpokenDigits
	AMRFaceActions  = authn.AMRFaceActions
	AMRHardware     = authn.AMRHardware
	AMRUser         = authn.AMRUser
	AMRMFA          = authn.AMRMFA
)

// AMRValues lists every amr value the provider reports (discovery).
var AMRValues = []string{AMRFace, AMRLiveness, AMRSpokenDigits, AMRFaceActions, AMRHardware, AMRUser, AMRMFA}

// ErrAuthenticationFailed is what an Authenticator returns for any failed
// attempt; callers and browsers are not told why (the reason goes to logs).
var ErrAuthenticationFailed = authn.ErrAuthenticationFailed

// LoginAttempt is what an Authenticator knows about the login in progress;
// the provider keeps it in the ephemeral store between steps.
type LoginAttempt = authn.Attempt

// Authentication is the result of a successful login step.
type Authentication = authn.Result

// Authenticator is one login method. The provider mounts it at
// /oauth2/login/{Method}: POST .../begin returns the JSON challenge the
// login page shows (e.g. digits to read); POST .../finish carries the
// evidence. Implementations live under authn/ and are plugged in by cmd/.
type Authenticator = authn.Method

// RequestBeginner is implemented by an Authenticator whose Begin needs the
// login page's request (a typed identifier, at most MaxBeginBytes of JSON,
// or the client address); the provider then calls BeginRequest instead of
// Begin.
type RequestBeginner = authn.RequestBeginner

// MaxBeginBytes bounds the body of POST /oauth2/login/{method}/begin.
const MaxBeginBytes = 4 << 10
