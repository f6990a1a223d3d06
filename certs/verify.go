package certs

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"time"
)

// Default verification windows.
const (
	DefaultWindow = 60 * time.Second // a presentation is valid this long
	DefaultSkew   = 10 * time.Second // tolerated clock difference
)

// Result is a verified presentation.
type Result struct {
	Claims      Claims
	KeyID       string    // issuer kid (KIDString form)
	PresentedAt time.Time // the holder's timestamp
	// ValidUntil is when the presentation stops being accepted (the replay
	// cache keeps its digest until then).
	ValidUntil time.Time
	// Digest identifies the presentation for replay detection.
	Digest []byte
	// Size is the length of the decoded presentation in bytes.
	Size int
	// DeviceKey is the certified holder device key that signed the presentation.
	DeviceKey *ecdsa.PublicKey
	// Purpose is the purpose the holder limited the presentation to ("" for any).
	Purpose string
}

// VerifyOptions tunes offline verification. The zero value uses the defaults
// and checks neither a challenge nor a status list.
type VerifyOptions struct {
	Window time.Duration // presentation validity; DefaultWindow when zero
	Skew   time.Duration // clock skew; DefaultSkew when zero
	// Challenge, when not nil, must equal the presentation's challenge.
	Challenge []byte
	// Status, when not nil, is a verified, cached status list of the issuer;
	// a certificate marked in it is refused as revoked.
	Status *StatusList
	// Purpose is the purpose the verifier checks for; a presentation the
	// holder limited to another purpose is refused (ErrPurposeMismatch).
	Purpose string
}

// Verify checks a scanned QR text offline against the published issuer key
// list at time now with the default options: structure, issuer signature
// and key validity, holder signature with the certified device key,
// freshness and certificate expiry.
func Verify(payload string, trust *TrustList, now time.Time) (*Result, error) {
	return VerifyOptions{}.Verify(payload, trust, now)
}

// Verify is the package-level Verify with these options.
func (o VerifyOptions) Verify(payload string, trust *TrustList, now time.Time) (*Result, error) {
	raw, err := DecodePayload(payload)
	if err != nil {
		return nil, err
	}
	return o.VerifyBytes(raw, trust, now)
}

// VerifyBytes verifies a decoded presentation (COSE_Sign1 bytes).
func (o VerifyOptions) VerifyBytes(raw []byte, trust *TrustList, now time.Time) (*Result, error) {
	res, err := o.verify(raw, trust, now)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// verify is VerifyBytes, except that on an error it still returns the
// result (with authentic claims) once the issuer signature has verified, so
// the online service can attribute a refused presentation to its holder.
func (o VerifyOptions) verify(raw []byte, trust *TrustList, now time.Time) (*Result, error) {
	window, skew := o.Window, o.Skew
	if window <= 0 {
		window = DefaultWindow
	}
	if skew <= 0 {
		skew = DefaultSkew
	}
	outer, err := parseSign1("presentation", raw)
	if err != nil {
		return nil, err
	}
	var p presentation
	if err := decMode.Unmarshal(outer.Payload, &p); err != nil {
		return nil, fmt.Errorf("%w: presentation content: %v", ErrMalformed, err)
	}
	if len(p.Cert) == 0 || len(p.Nonce) == 0 {
		return nil, fmt.Errorf("%w: presentation lacks certificate or nonce", ErrMalformed)
	}
	if len(p.Purpose) > MaxPurposeLen {
		return nil, fmt.Errorf("%w: purpose longer than %d bytes", ErrMalformed, MaxPurposeLen)
	}
	inner, err := parseSign1("certificate", p.Cert)
	if err != nil {
		return nil, err
	}
	kid, ok := kidOf(inner)
	if !ok {
		return nil, fmt.Errorf("%w: certificate has no kid", ErrMalformed)
	}
	tk, issuerKey := trust.find(kid)
	if tk == nil {
		return nil, fmt.Errorf("%w: kid %s", ErrUnknownIssuerKey, KIDString(kid))
	}
	if err := verifySign1("issuer", inner, issuerKey); err != nil {
		return nil, err
	}
	var c Claims
	if err := decMode.Unmarshal(inner.Payload, &c); err != nil {
		return nil, fmt.Errorf("%w: certificate claims: %v", ErrMalformed, err)
	}
	res := &Result{Claims: c, KeyID: tk.KID, Size: len(raw)}
	iat := c.Issued()
	if iat.Before(tk.NotBefore.Add(-skew)) || iat.After(tk.SignsUntil.Add(skew)) {
		return res, fmt.Errorf("%w: issued %s outside the key's signing window", ErrIssuerKeyNotValid, iat.Format(time.RFC3339))
	}
	if now.After(tk.NotAfter.Add(skew)) {
		return res, fmt.Errorf("%w: key %s expired %s", ErrIssuerKeyNotValid, tk.KID, tk.NotAfter.Format(time.RFC3339))
	}
	device, err := c.DeviceKey.PublicKey()
	if err != nil {
		return res, err
	}
	if err := verifySign1("holder", outer, device); err != nil {
		return res, err
	}
	res.DeviceKey = device
	res.Purpose = p.Purpose
	at := time.Unix(p.Time, 0).UTC()
	res.PresentedAt = at
	res.Digest = signedDigest(outer)
	if at.After(now.Add(skew)) {
		return res, fmt.Errorf("%w: presented at %s", ErrPresentationFuture, at.Format(time.RFC3339))
	}
	validUntil := at.Add(window + skew)
	res.ValidUntil = validUntil
	if now.After(validUntil) {
		return res, fmt.Errorf("%w: presented at %s", ErrPresentationExpired, at.Format(time.RFC3339))
	}
	if now.After(c.Expires().Add(skew)) {
		return res, fmt.Errorf("%w: expired %s", ErrCertificateExpired, c.Expires().Format(time.RFC3339))
	}
	if o.Challenge != nil && !bytes.Equal(o.Challenge, p.Challenge) {
		return res, ErrChallengeMismatch
	}
	if p.Purpose != "" && o.Purpose != "" && p.Purpose != o.Purpose {
		return res, fmt.Errorf("%w: shown for %q, verified for %q", ErrPurposeMismatch, p.Purpose, o.Purpose)
	}
	if o.Status != nil {
		revoked, err := o.Status.Revoked(c.StatusIndex, now)
		if err != nil {
			return res, err
		}
		if revoked {
			return res, fmt.Errorf("%w: status list index %d", ErrRevoked, c.StatusIndex)
		}
	}
	return res, nil
}
