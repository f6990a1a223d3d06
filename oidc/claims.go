package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc/storage"
)

// Scopes the provider knows. A client may request only the scopes
// registered for it; each identity scope also needs the citizen's consent.
//
// Result-only by default (MPS Order No. 173, 2025): the sign-in scopes
// (openid, offline_access, network_number) give the result of the
// authentication and its assurance (pairwise sub, acr, amr, auth_time) and
// nothing that names the citizen. The identity scopes (profile, id_number,
// identity) only ask: their plaintext claims are released after a separate
// consent step for that client and those claims (not pre-ticked, never
// bundled with the sign-in consent), read live from the consent store at
// every token and userinfo call, so a revoked consent stops the release at
// the next call.
const (
	ScopeOpenID   = "openid"
	ScopeOffline  = "offline_access" // refresh tokens
	ScopeProfile  = "profile"        // name, birthdate (plaintext: separate consent)
	ScopeIDNumber = "id_number"      // national ID number, masked unless the client may see it (plaintext: separate consent)
	ScopeIdentity = "identity"       // verified_claims (OpenID Connect for Identity Assurance 1.0; separate consent)
	// ScopeNetworkNumber asks for the citizen's 网号 (network_number claim);
	// granted only to first-party clients and clients registered with the
	// ClaimNetworkNumber permission.
	ScopeNetworkNumber = "network_number"
)

// KnownScopes lists every scope the provider supports.
var KnownScopes = []string{ScopeOpenID, ScopeOffline, ScopeProfile, ScopeIDNumber, ScopeIdentity, ScopeNetworkNumber}

// Claim names.
const (
	ClaimName          = "name"
	ClaimBirthdate     = "birthdate"
	ClaimVerified      = "verified_claims"
	ClaimNetworkNumber = "network_number" // also the client permission to receive it
)

// PlaintextClaims are the claims that identify a citizen in plaintext, in
// the order the claims consent lists them.
var PlaintextClaims = []string{ClaimName, ClaimBirthdate, ClaimIDNumber, ClaimVerified}

// identityScope says whether scope asks for plaintext claims (and so goes
// through the separate claims consent, not the sign-in consent).
func identityScope(scope string) bool { return len(scopeClaims[scope]) > 0 }

// requestedClaims lists the plaintext claims the identity scopes among
// scopes ask for, in PlaintextClaims order.
func requestedClaims(scopes []string) []string {
	var out []string
	for _, c := range PlaintextClaims {
		for _, s := range scopes {
			if slices.Contains(scopeClaims[s], c) && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

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
	ScopeProfile:  {ClaimName, ClaimBirthdate},
	ScopeIDNumber: {ClaimIDNumber},
	ScopeIdentity: {ClaimVerified},
}

// scopeText is the consent page's wording.
var scopeText = map[string]string{
	ScopeOpenID:        "Sign you in: the result only (a pseudonymous identifier for this service, how and when you were verified), not your name or ID number",
	ScopeOffline:       "Stay signed in (refresh without asking you again)",
	ScopeProfile:       "Your real name and date of birth",
	ScopeIDNumber:      "Your ID number",
	ScopeIdentity:      "Proof of how and when your identity was verified (verified claims)",
	ScopeNetworkNumber: "Your network number (网号)",
}

// claimText is the claims consent page's wording.
var claimText = map[string]string{
	ClaimName:      "Your real name",
	ClaimBirthdate: "Your date of birth",
	ClaimIDNumber:  "Your ID number",
	ClaimVerified:  "How and when your identity was verified, with the items above that you share",
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
	consents       claimConsents
	numbers        NetworkNumbers // nil: no network_number claim
	subKey         []byte         // the pairwise-subject key
	trustFramework string         // verified_claims' trust_framework
}

// claimCitizens is the claims' part of the citizen register.
type claimCitizens interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
}

// claimConsents is the claims' part of the consent store: the live
// consent is read at every release.
type claimConsents interface {
	Get(ctx context.Context, citizenID, clientID string) (*store.Consent, error)
}

// NetworkNumbers gives a citizen's 网号, assigning it at the first verified
// sign-in (*netnumber.Assigner satisfies it; cmd wires it).
type NetworkNumbers interface {
	Ensure(ctx context.Context, citizenID string) (string, error)
}

var (
	_ claimCitizens = store.CitizenStore(nil)
	_ claimConsents = store.ConsentStore(nil)
)

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

// mayReceiveNetworkNumber says whether the client may be given the 网号.
func mayReceiveNetworkNumber(c *store.Client) bool {
	return c.FirstParty || slices.Contains(c.Claims, ClaimNetworkNumber)
}

// releasedClaims are the plaintext claims scopes ask for that the citizen's
// current consent for the client releases.
func (cs *claimSource) releasedClaims(ctx context.Context, c *store.Client, citizenID string, scopes []string) ([]string, error) {
	asked := requestedClaims(scopes)
	if len(asked) == 0 {
		return nil, nil
	}
	con, err := cs.consents.Get(ctx, citizenID, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: consent for claims: %w", err)
	}
	var out []string
	for _, a := range asked {
		if slices.Contains(con.Claims, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Birthdate is the date of birth in a resident ID number (GB 11643:
// characters 7-14, YYYYMMDD) as YYYY-MM-DD, or "" when the number holds
// no valid date.
func Birthdate(idNumber string) string {
	if len(idNumber) != 18 {
		return ""
	}
	d, err := time.Parse("20060102", idNumber[6:14])
	if err != nil {
		return ""
	}
	return d.Format(time.DateOnly)
}

// identityClaims builds what a client learns beyond the result: the
// network_number (first-party or authorised clients that asked for it) and
// the plaintext claims (name, birthdate, id_number, verified_claims: OpenID
// Connect for Identity Assurance 1.0, section 5) that the scopes ask for
// and the citizen's current, separate consent releases. With only openid
// it is empty.
func (cs *claimSource) identityClaims(ctx context.Context, c *store.Client, citizenID string, scopes []string, acr string, amr []string, authTime time.Time) (map[string]any, error) {
	out := map[string]any{}
	if slices.Contains(scopes, ScopeNetworkNumber) && mayReceiveNetworkNumber(c) && cs.numbers != nil {
		nn, err := cs.numbers.Ensure(ctx, citizenID)
		if err != nil {
			return nil, fmt.Errorf("oidc: network number: %w", err)
		}
		out[ClaimNetworkNumber] = nn
	}
	released, err := cs.releasedClaims(ctx, c, citizenID, scopes)
	if err != nil || len(released) == 0 {
		return out, err
	}
	cit, err := cs.citizens.Get(ctx, citizenID)
	if err != nil {
		return nil, fmt.Errorf("oidc: citizen for claims: %w", err)
	}
	idn := MaskIDNumber(cit.IDNumber)
	if slices.Contains(c.Claims, ClaimIDNumber) {
		idn = cit.IDNumber
	}
	plain := map[string]any{}
	for _, name := range released {
		switch name {
		case ClaimName:
			plain[ClaimName] = cit.Name
		case ClaimBirthdate:
			if b := Birthdate(cit.IDNumber); b != "" {
				plain[ClaimBirthdate] = b
			}
		case ClaimIDNumber:
			plain[ClaimIDNumber] = idn
		}
	}
	for k, v := range plain {
		out[k] = v
	}
	if slices.Contains(released, ClaimVerified) && acrRank(acr) >= acrRank(ACRFace) {
		var checks []map[string]any
		if slices.Contains(amr, AMRFace) {
			// Biometric verification, remote: the live face against the register photo.
			checks = append(checks, map[string]any{"check_method": "bvr"})
		}
		if slices.Contains(amr, AMRHardware) {
			checks = append(checks, map[string]any{"check_method": "auth"})
		}
		// verified_claims repeats only the claims released on their own:
		// consenting to "how I was verified" releases no name by itself.
		out[ClaimVerified] = map[string]any{
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
			"claims": plain,
		}
	}
	return out, nil
}

// releasable are the claim names identityClaims may set; the ID token
// strategy clears them before adding the live ones.
var releasable = []string{ClaimName, ClaimBirthdate, ClaimIDNumber, ClaimVerified, ClaimNetworkNumber}

// idTokenClaims are those of them an ID token carries; the ID number and
// verified_claims are given only by userinfo (an ID token travels through
// the browser and client logs).
var idTokenClaims = []string{ClaimName, ClaimBirthdate, ClaimNetworkNumber}

// liveClaimsStrategy puts the claims released now into every ID token
// (authorization code, refresh, CIBA): the session stored with a grant
// holds no identity claim, so a consent revoked after the grant stops the
// release at the next token call.
type liveClaimsStrategy struct {
	openid.OpenIDConnectTokenStrategy
	claims func(ctx context.Context, c *store.Client, citizenID string, scopes []string, acr string, amr []string, authTime time.Time) (map[string]any, error)
}

func (s liveClaimsStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	sess, ok := r.GetSession().(*Session)
	c, cok := r.GetClient().(*storage.Client)
	if ok && cok && sess.CitizenID != "" {
		idc := sess.IDTokenClaims()
		if idc.Extra == nil {
			idc.Extra = map[string]any{}
		}
		for _, k := range releasable {
			delete(idc.Extra, k)
		}
		extra, err := s.claims(ctx, c.Client, sess.CitizenID, r.GetGrantedScopes(), idc.AuthenticationContextClassReference,
			idc.AuthenticationMethodsReferences, idc.AuthTime)
		if err != nil {
			return "", fosite.ErrServerError.WithWrap(err)
		}
		for k, v := range extra {
			if slices.Contains(idTokenClaims, k) {
				idc.Extra[k] = v
			}
		}
	}
	return s.OpenIDConnectTokenStrategy.GenerateIDToken(ctx, lifespan, r)
}
