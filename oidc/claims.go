package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// Scopes the provider knows. A client may request only the scopes
// registered for it; each identity scope also needs the citizen's consent.
const (
	ScopeOpenID   = "openid"
	ScopeOffline  = "offline_access" // refresh tokens
	ScopeProfile  = "profile"        // name
	ScopeIDNumber = "id_number"      // national ID number (masked unless the client may see it)
	ScopeIdentity = "identity"       // verified_claims (OpenID Connect for Identity Assurance 1.0)
)

// KnownScopes lists every scope the provider supports.
var KnownScopes = []string{ScopeOpenID, ScopeOffline, ScopeProfile, ScopeIDNumber, ScopeIdentity}

// ScopeFaceVerify registers a client as a caller of the identity API's 1:1
// face verification (POST /v1/face/verify): "is this photo the person with
// ID number X?" is answered only to clients registered with it. It is a
// permission of the client, not a citizen's data: it is not published in
// discovery and a citizen is never asked to consent to it.
const ScopeFaceVerify = "identity:face_verify"

// APIScopes are the permissions a client may be registered with beside
// KnownScopes.
var APIScopes = []string{ScopeFaceVerify}

// ClaimIDNumber is the client claim permission for the full ID number.
const ClaimIDNumber = "id_number"

// scopeClaims names the claims each scope releases (shown on the consent page).
var scopeClaims = map[string][]string{
	ScopeProfile:  {"name"},
	ScopeIDNumber: {"id_number"},
	ScopeIdentity: {"verified_claims"},
}

// scopeText is the consent page's wording.
var scopeText = map[string]string{
	ScopeOpenID:   "Sign you in (a pseudonymous identifier for this service, how and when you were verified)",
	ScopeOffline:  "Stay signed in (refresh without asking you again)",
	ScopeProfile:  "Your real name",
	ScopeIDNumber: "Your ID number",
	ScopeIdentity: "Proof of how and when your identity was verified (verified claims)",
}

// sector is the client's sector identifier: configured, or the host of its
// first redirect URI (OpenID Connect Core 8.1).
func sector(c *store.Client) string {
	if c.SectorIdentifier != "" {
		return c.SectorIdentifier
	}
	for _, u := range c.RedirectURIs {
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			return p.Host
		}
	}
	return c.ID
}

// claimSource computes what a client learns about a citizen: the
// subject identifier (pairwise unless first-party) and the consented
// identity claims, read live from the citizen register.
type claimSource struct {
	citizens       claimCitizens
	subKey         []byte // the pairwise-subject key
	trustFramework string // verified_claims' trust_framework
}

// claimCitizens is the claims' part of the citizen register.
type claimCitizens interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
}

var _ claimCitizens = store.CitizenStore(nil)

// subject is the sub a client sees for a citizen: pairwise (HMAC of sector
// and citizen id, OpenID Connect Core 8.1) unless the client is first-party.
func (cs *claimSource) subject(c *store.Client, citizenID string) string {
	if c.FirstParty {
		return citizenID
	}
	m := hmac.New(sha256.New, cs.subKey)
	m.Write([]byte(sector(c)))
	m.Write([]byte{0})
	m.Write([]byte(citizenID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// MaskIDNumber keeps the first 3 and last 4 characters; shorter numbers are fully masked.
func MaskIDNumber(n string) string {
	r := []rune(n)
	if len(r) < 10 {
		return strings.Repeat("*", len(r))
	}
	for i := 3; i < len(r)-4; i++ {
		r[i] = '*'
	}
	return string(r)
}

// identityClaims builds the claims released for scopes: name, id_number and
// verified_claims (OpenID Connect for Identity Assurance 1.0, section 5).
func (cs *claimSource) identityClaims(ctx context.Context, c *store.Client, citizenID string, scopes []string, acr string, amr []string, authTime time.Time) (map[string]any, error) {
	out := map[string]any{}
	if !slices.Contains(scopes, ScopeProfile) && !slices.Contains(scopes, ScopeIDNumber) && !slices.Contains(scopes, ScopeIdentity) {
		return out, nil
	}
	cit, err := cs.citizens.Get(ctx, citizenID)
	if err != nil {
		return nil, fmt.Errorf("oidc: citizen for claims: %w", err)
	}
	idn := MaskIDNumber(cit.IDNumber)
	if slices.Contains(c.Claims, ClaimIDNumber) {
		idn = cit.IDNumber
	}
	if slices.Contains(scopes, ScopeProfile) {
		out["name"] = cit.Name
	}
	if slices.Contains(scopes, ScopeIDNumber) {
		out["id_number"] = idn
	}
	if slices.Contains(scopes, ScopeIdentity) && acrRank(acr) >= acrRank(ACRFace) {
		var checks []map[string]any
		if slices.Contains(amr, AMRFace) {
			// Biometric verification, remote: the live face against the register photo.
			checks = append(checks, map[string]any{"check_method": "bvr"})
		}
		if slices.Contains(amr, AMRHardware) {
			checks = append(checks, map[string]any{"check_method": "auth"})
		}
		verified := map[string]any{"name": cit.Name}
		if slices.Contains(scopes, ScopeIDNumber) {
			verified["id_number"] = idn
		}
		out["verified_claims"] = map[string]any{
			"verification": map[string]any{
				"trust_framework": cs.trustFramework,
				"time":            authTime.UTC().Format(time.RFC3339),
				"assurance_level": acr,
				"evidence": []any{map[string]any{
					"type":          "electronic_record",
					"check_details": checks,
					"time":          authTime.UTC().Format(time.RFC3339),
					"record":        map[string]any{"type": "population_register"},
				}},
			},
			"claims": verified,
		}
	}
	return out, nil
}
