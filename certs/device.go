package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
)

// Binding a holder device to a certificate. The device (the account page,
// with WebCrypto) generates an ECDSA P-256 key that cannot be exported and
// sends only its public half as a JWK (RFC 7517), with a proof of
// possession: its signature over a single-use nonce the service gave to
// the same citizen session, so a public key is certified only for a holder
// who can sign with it at that moment. The proof is the message
//
//	"trustid-pop-v1." || base64url(nonce) || "." || base64url(JWK thumbprint, RFC 7638, SHA-256)
//
// signed with ES256 (SHA-256, the signature as r||s, 64 bytes: WebCrypto's
// and COSE's form). The service never receives or stores a private key.

// PoPNonceTTL is how long an issuance nonce may be used.
const PoPNonceTTL = 5 * time.Minute

// popNonceSize is the length of an issuance nonce.
const popNonceSize = 32

// maxIssueBody bounds POST /issue (a JWK, a nonce, a proof and a name).
const maxIssueBody = 4 << 10

// PoPMessage is the message a device signs to prove it holds the key
// whose thumbprint is given, for the nonce the service issued.
func PoPMessage(nonce []byte, thumbprint string) []byte {
	return []byte("trustid-pop-v1." + base64.RawURLEncoding.EncodeToString(nonce) + "." + thumbprint)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("certs: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ParseDeviceKey reads a device public key from a JWK: EC, P-256, a point
// on the curve, no private member. Anything else is ErrInvalidDeviceKey.
func ParseDeviceKey(raw json.RawMessage) (*ecdsa.PublicKey, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("%w: device_key is missing", ErrInvalidDeviceKey)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidDeviceKey)
	}
	if _, ok := probe["d"]; ok {
		// A private key must never leave the device: refuse it, do not use it.
		return nil, fmt.Errorf("%w: the JWK holds a private key; send only the public key", ErrInvalidDeviceKey)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDeviceKey, err)
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an EC public key (%T)", ErrInvalidDeviceKey, jwk.Key)
	}
	if pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: curve %s, want P-256", ErrInvalidDeviceKey, pub.Curve.Params().Name)
	}
	if _, err := pub.ECDH(); err != nil { // rejects points off the curve and the point at infinity
		return nil, fmt.Errorf("%w: %v", ErrInvalidDeviceKey, err)
	}
	return pub, nil
}

// VerifyPoP checks a proof of possession (r||s, 64 bytes) over PoPMessage.
func VerifyPoP(pub *ecdsa.PublicKey, nonce, proof []byte) error {
	tp, err := Thumbprint(pub)
	if err != nil {
		return err
	}
	if len(proof) != 64 {
		return fmt.Errorf("%w: proof is %d bytes, want 64 (r||s)", ErrInvalidProof, len(proof))
	}
	sum := sha256.Sum256(PoPMessage(nonce, tp))
	r, s := new(big.Int).SetBytes(proof[:32]), new(big.Int).SetBytes(proof[32:])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return fmt.Errorf("%w: signature does not verify", ErrInvalidProof)
	}
	return nil
}

func popKey(nonce []byte) string {
	sum := sha256.Sum256(nonce)
	return "certs:pop:" + hex.EncodeToString(sum[:])
}

// IssueNonce gives the citizen a single-use nonce for a proof of possession.
func (s *Service) IssueNonce(ctx context.Context, citizenID string) ([]byte, error) {
	nonce := make([]byte, popNonceSize)
	if _, err := io.ReadFull(s.cfg.Rand, nonce); err != nil {
		return nil, fmt.Errorf("certs: nonce: %w", err)
	}
	if err := s.cfg.Replay.Set(ctx, popKey(nonce), []byte(citizenID), PoPNonceTTL); err != nil {
		return nil, fmt.Errorf("certs: nonce: %w", err)
	}
	return nonce, nil
}

// takeNonce consumes a nonce issued to citizenID.
func (s *Service) takeNonce(ctx context.Context, nonce []byte, citizenID string) error {
	v, err := s.cfg.Replay.Take(ctx, popKey(nonce))
	switch {
	case errors.Is(err, ephemeral.ErrNotFound):
		return fmt.Errorf("%w: unknown, used or expired nonce", ErrInvalidProof)
	case err != nil:
		return fmt.Errorf("certs: nonce: %w", err)
	case string(v) != citizenID:
		return fmt.Errorf("%w: nonce of another session", ErrInvalidProof)
	}
	return nil
}

func (s *Service) citizen(r *http.Request) (CitizenSession, error) {
	sess, err := s.cfg.Citizen.AuthenticateCitizen(r)
	if httperr.IsUnavailable(err) {
		return CitizenSession{}, err // the session could not be read: 503, not "sign in"
	}
	if err != nil {
		return CitizenSession{}, fmt.Errorf("%w: %v", ErrNotSignedIn, err)
	}
	return sess, nil
}

func (s *Service) handleNonce(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.citizen(r)
	if err != nil {
		return err
	}
	nonce, err := s.IssueNonce(r.Context(), sess.CitizenID)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"nonce": base64.RawURLEncoding.EncodeToString(nonce), "expires_in": int(PoPNonceTTL / time.Second),
	})
}

// IssueHTTPRequest is the body of POST /issue.
type IssueHTTPRequest struct {
	// DeviceKey is the device's public key as a JWK (EC, P-256).
	DeviceKey json.RawMessage `json:"device_key"`
	// Nonce is from POST /devices/challenge (base64url); Proof is the
	// device's signature over PoPMessage (base64url of r||s).
	Nonce string `json:"nonce"`
	Proof string `json:"proof"`
	// Name labels the device in the list ("Phone", a browser name).
	Name string `json:"name,omitempty"`
}

// IssueHTTPResponse answers POST /issue.
type IssueHTTPResponse struct {
	Certificate string    `json:"certificate"` // COSE_Sign1, base64url
	Serial      string    `json:"serial"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Name is the holder's name from the register, for the device's own
	// offline page: the certificate carries none (only the 网号).
	Name  string `json:"name"`
	Level string `json:"level"` // assurance level
	// StatusIndex is the certificate's entry in the status list.
	StatusIndex int64 `json:"status_index"`
}

func (s *Service) handleIssue(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.citizen(r)
	if err != nil {
		return err
	}
	var req IssueHTTPRequest
	if err := httperr.DecodeJSON(r, &req, maxIssueBody); err != nil {
		return err
	}
	// Every check of the input comes before anything is stored.
	pub, err := ParseDeviceKey(req.DeviceKey)
	if err != nil {
		return err
	}
	if len(req.Name) > MaxDeviceNameLen {
		return fmt.Errorf("%w: name longer than %d bytes", ErrBadRequest, MaxDeviceNameLen)
	}
	nonce, err := base64.RawURLEncoding.DecodeString(req.Nonce)
	if err != nil || len(nonce) != popNonceSize {
		return fmt.Errorf("%w: nonce must be the base64url nonce from /devices/challenge", ErrInvalidProof)
	}
	proof, err := base64.RawURLEncoding.DecodeString(req.Proof)
	if err != nil || len(proof) != 64 {
		return fmt.Errorf("%w: proof must be base64url of a 64-byte ES256 signature", ErrInvalidProof)
	}
	if err := s.takeNonce(r.Context(), nonce, sess.CitizenID); err != nil {
		return err
	}
	if err := VerifyPoP(pub, nonce, proof); err != nil {
		return err
	}
	cit, err := s.cfg.Citizens.Get(r.Context(), sess.CitizenID)
	if err != nil {
		return err
	}
	is, err := s.cfg.Issuer.Issue(r.Context(), IssueRequest{CitizenID: sess.CitizenID, AuthTime: sess.AuthTime, ACR: sess.ACR, DeviceKey: pub, DeviceName: req.Name})
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, IssueHTTPResponse{
		Certificate: base64.RawURLEncoding.EncodeToString(is.Cert), Serial: is.Serial, ExpiresAt: is.Claims.Expires(),
		Name: cit.Name, Level: LevelName(is.Claims.Level), StatusIndex: is.Claims.StatusIndex,
	})
}

func (s *Service) handleDevices(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.citizen(r)
	if err != nil {
		return err
	}
	ds, err := s.cfg.Issuer.Devices(r.Context(), sess.CitizenID)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{"devices": ds, "max_devices": s.cfg.Issuer.cfg.MaxDevices})
}

// RevokeDeviceRequest is the body of POST /devices/revoke.
type RevokeDeviceRequest struct {
	Serial string `json:"serial"`
}

func (s *Service) handleRevokeDevice(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.citizen(r)
	if err != nil {
		return err
	}
	var req RevokeDeviceRequest
	if err := httperr.DecodeJSON(r, &req, 1<<10); err != nil {
		return err
	}
	if b, err := hex.DecodeString(req.Serial); err != nil || len(b) != 10 {
		return fmt.Errorf("%w: serial must be 20 hex digits", ErrBadRequest)
	}
	if err := s.cfg.Issuer.RevokeDevice(r.Context(), sess.CitizenID, req.Serial); err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]string{"revoked": req.Serial})
}

// ProvePossession is the holder side of the proof (what the account page
// does with WebCrypto), for Go holders and tests: the r||s signature over
// PoPMessage for the nonce from POST /devices/challenge.
func ProvePossession(rand io.Reader, dev *ecdsa.PrivateKey, nonce []byte) ([]byte, error) {
	tp, err := Thumbprint(&dev.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(PoPMessage(nonce, tp))
	r, s, err := ecdsa.Sign(rand, dev, sum[:])
	if err != nil {
		return nil, fmt.Errorf("certs: proof of possession: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}
