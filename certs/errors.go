package certs

import (
	"errors"
	"net/http"

	"github.com/trustid/trustid/internal/httperr"
)

// Error is a refusal with a stable machine code (for API clients and the
// audit log) and a client-safe reason. Wrapped errors add detail for logs.
type Error struct {
	Code   string
	Reason string
	Status int // HTTP status for the online API
}

var _ httperr.Answerer = (*Error)(nil)

func (e *Error) Error() string { return "certs: " + e.Code + ": " + e.Reason }

// HTTPError is the refusal's answer in the JSON API's one error contract
// (httperr.Answerer): its status, code and reason.
func (e *Error) HTTPError() *httperr.Error { return httperr.New(e.Status, e.Code, e.Reason) }

// Sentinel refusals. Wrap with fmt.Errorf("%w: ...", ErrX); branch with
// errors.Is; read the code with CodeOf.
var (
	ErrMalformed            = &Error{"malformed_payload", "the payload is not a TrustID presentation", http.StatusBadRequest}
	ErrTampered             = &Error{"tampered_payload", "a signature does not verify: the payload was altered", http.StatusUnprocessableEntity}
	ErrUnknownIssuerKey     = &Error{"unknown_issuer_key", "the certificate is signed by a key that is not in the issuer key list", http.StatusUnprocessableEntity}
	ErrIssuerKeyNotValid    = &Error{"issuer_key_not_valid", "the issuer key is not valid for this certificate (outside its validity window)", http.StatusUnprocessableEntity}
	ErrPresentationExpired  = &Error{"expired_presentation", "the QR code has expired; ask the holder to show a fresh one", http.StatusUnprocessableEntity}
	ErrPresentationFuture   = &Error{"presentation_from_future", "the QR code is dated in the future; check the clocks", http.StatusUnprocessableEntity}
	ErrCertificateExpired   = &Error{"expired_certificate", "the certificate has expired", http.StatusUnprocessableEntity}
	ErrChallengeMismatch    = &Error{"challenge_mismatch", "the presentation does not answer this verifier's challenge", http.StatusUnprocessableEntity}
	ErrReplayed             = &Error{"replayed_presentation", "this QR code was already verified once", http.StatusConflict}
	ErrReplayUnknown        = &Error{"replay_unverifiable", "this QR code cannot be checked for reuse right now; ask the holder to show a fresh one", http.StatusConflict}
	ErrRevoked              = &Error{"revoked_certificate", "the certificate has been revoked", http.StatusUnprocessableEntity}
	ErrUnknownCertificate   = &Error{"unknown_certificate", "the issuer has no record of this certificate", http.StatusUnprocessableEntity}
	ErrPurposeNotAllowed    = &Error{"purpose_not_allowed", "the verifier's role does not allow this purpose", http.StatusForbidden}
	ErrUnauthenticated      = &Error{"verifier_unauthenticated", "verifier authentication is required", http.StatusUnauthorized}
	ErrNotSignedIn          = &Error{"not_signed_in", "sign in first: this needs the citizen's own session", http.StatusUnauthorized}
	ErrStaleAuthentication  = &Error{"stale_authentication", "the identity proof is too old; verify your face again", http.StatusForbidden}
	ErrInsufficientLevel    = &Error{"insufficient_assurance", "the identity proof does not reach the required assurance level", http.StatusForbidden}
	ErrCitizenDisabled      = &Error{"citizen_disabled", "the account is disabled", http.StatusForbidden}
	ErrNoReferenceTemplate  = &Error{"no_reference_template", "no reference face template is held for the certificate holder", http.StatusUnprocessableEntity}
	ErrVerificationNotFound = &Error{"verification_not_found", "no recent verification with this id for this verifier", http.StatusNotFound}
	ErrBadRequest           = &Error{"invalid_request", "the request is malformed", http.StatusBadRequest}
	ErrPurposeMismatch      = &Error{"purpose_mismatch", "the holder showed the certificate for another purpose", http.StatusUnprocessableEntity}
	ErrInvalidDeviceKey     = &Error{"invalid_device_key", "device_key must be the public half of an ECDSA P-256 key as a JWK", http.StatusBadRequest}
	ErrInvalidProof         = &Error{"invalid_proof", "the proof of possession of the device key does not verify; start again", http.StatusUnprocessableEntity}
	ErrTooManyDevices       = &Error{"too_many_devices", "the certificate is already on the most devices allowed; revoke one first", http.StatusConflict}
	ErrDeviceNotFound       = &Error{"device_not_found", "no such certificate among your devices", http.StatusNotFound}
)

// CodeOf returns the machine code of err's refusal, or "internal_error".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal_error"
}

// ErrStatusStale reports a cached status list past its expiry.
var ErrStatusStale = &Error{"stale_status_list", "the cached status list has expired; fetch a fresh one", http.StatusServiceUnavailable}

// ErrPhotoUnusable reports a counter photo in which no usable face was found
// (FaceMatcher implementations wrap it).
var ErrPhotoUnusable = &Error{"photo_unusable", "no usable face in the photo; take it again, facing the camera", http.StatusUnprocessableEntity}
