package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key statuses in a published key list.
const (
	KeyNext    = "next"    // published, not signing yet
	KeyActive  = "active"  // signing new certificates
	KeyRetired = "retired" // no longer signing; verifies certificates until not_after
)

// TrustedKey is one issuer public key in the published key list.
type TrustedKey struct {
	// KID is base64url (no padding) of the 8-byte COSE kid.
	KID string `json:"kid"`
	Alg string `json:"alg"`
	// JWK is the public key (RFC 7517).
	JWK jose.JSONWebKey `json:"jwk"`
	// NotBefore is when the key starts signing; SignsUntil when it stops;
	// NotAfter is when the last certificate it signed expires.
	NotBefore  time.Time `json:"not_before"`
	SignsUntil time.Time `json:"signs_until"`
	NotAfter   time.Time `json:"not_after"`
	Status     string    `json:"status"`
}

// TrustList is the issuer key list that verifiers fetch and cache
// (GET .../keys), in the spirit of the EU DCC trust list: key ids, public
// keys, validity windows, rotation status.
type TrustList struct {
	Issuer    string       `json:"issuer"`
	Generated time.Time    `json:"generated"`
	Keys      []TrustedKey `json:"keys"`
}

// KeyIDOf is the COSE kid of an issuer key: the first 8 bytes of SHA-256 of
// its PKIX DER encoding (as the DCC does).
func KeyIDOf(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("certs: key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:8], nil
}

// KIDString is the text form of a COSE kid used in the key list and store.
func KIDString(kid []byte) string { return base64.RawURLEncoding.EncodeToString(kid) }

// ParseTrustList decodes and checks a published key list: every key must be
// an ES256 P-256 public key whose kid matches its key.
func ParseTrustList(data []byte) (*TrustList, error) {
	var tl TrustList
	if err := json.Unmarshal(data, &tl); err != nil {
		return nil, fmt.Errorf("certs: key list: %w", err)
	}
	for i := range tl.Keys {
		k := &tl.Keys[i]
		pub, ok := k.JWK.Key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() || k.Alg != "ES256" {
			return nil, fmt.Errorf("certs: key list: key %q is not an ES256 P-256 public key", k.KID)
		}
		kid, err := KeyIDOf(pub)
		if err != nil {
			return nil, err
		}
		if KIDString(kid) != k.KID {
			return nil, fmt.Errorf("certs: key list: kid %q does not match its key", k.KID)
		}
	}
	return &tl, nil
}

// find returns the key with the given COSE kid.
func (tl *TrustList) find(kid []byte) (*TrustedKey, *ecdsa.PublicKey) {
	if tl == nil {
		return nil, nil
	}
	s := KIDString(kid)
	for i := range tl.Keys {
		if tl.Keys[i].KID == s {
			pub, _ := tl.Keys[i].JWK.Key.(*ecdsa.PublicKey)
			if pub == nil {
				return nil, nil
			}
			return &tl.Keys[i], pub
		}
	}
	return nil, nil
}

// newTrustedKey describes pub for the key list at time now.
func newTrustedKey(pub *ecdsa.PublicKey, kid []byte, notBefore, signsUntil, notAfter, now time.Time) TrustedKey {
	status := KeyActive
	switch {
	case now.Before(notBefore):
		status = KeyNext
	case !now.Before(signsUntil):
		status = KeyRetired
	}
	return TrustedKey{
		KID:        KIDString(kid),
		Alg:        "ES256",
		JWK:        jose.JSONWebKey{Key: pub, KeyID: KIDString(kid), Algorithm: "ES256", Use: "sig"},
		NotBefore:  notBefore.UTC(),
		SignsUntil: signsUntil.UTC(),
		NotAfter:   notAfter.UTC(),
		Status:     status,
	}
}
