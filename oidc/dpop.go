package oidc

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/trustid/trustid/internal/ephemeral"
)

// DPoP (RFC 9449) sender-constrains tokens: the client signs a short proof
// JWT per request with a key of its own and the token is bound to that
// key's thumbprint, so a leaked access token is useless without the key.

// DPoPAlgs are the proof signature algorithms accepted (asymmetric only).
var DPoPAlgs = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

const (
	dpopMaxProof  = 8 << 10          // bytes of the DPoP header
	dpopMaxJTI    = 256              // characters of the jti
	dpopPast      = 60 * time.Second // how old a proof's iat may be
	dpopFuture    = 5 * time.Second  // how far ahead (clock skew)
	dpopReplayTTL = dpopPast + dpopFuture + time.Second
)

// errDPoP is a rejected proof; the text says why (safe to show the client).
var errDPoP = errors.New("invalid DPoP proof")

type dpopClaims struct {
	JTI string  `json:"jti"`
	HTM string  `json:"htm"`
	HTU string  `json:"htu"`
	IAT float64 `json:"iat"`
	ATH string  `json:"ath,omitempty"`
}

// dpopProof checks the request's DPoP proof for method and url (the
// endpoint's URL without query and fragment) and, when accessToken is not
// empty, its ath hash; a proof's jti is accepted once. It returns the
// SHA-256 JWK thumbprint (RFC 7638) of the proof key, or "" when the
// request carries no proof.
func (d *dpopChecker) dpopProof(ctx context.Context, r *http.Request, htu, accessToken string) (string, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", fmt.Errorf("%w: more than one DPoP header", errDPoP)
	}
	raw := vals[0]
	if len(raw) > dpopMaxProof {
		return "", fmt.Errorf("%w: longer than %d bytes", errDPoP, dpopMaxProof)
	}
	jws, err := jose.ParseSigned(raw)
	if err != nil || len(jws.Signatures) != 1 {
		return "", fmt.Errorf("%w: not a compact JWS", errDPoP)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "dpop+jwt" {
		return "", fmt.Errorf("%w: typ must be dpop+jwt", errDPoP)
	}
	if !slices.Contains(DPoPAlgs, h.Algorithm) {
		return "", fmt.Errorf("%w: alg %q not supported", errDPoP, h.Algorithm)
	}
	key := h.JSONWebKey
	if key == nil || !key.Valid() || !key.IsPublic() {
		return "", fmt.Errorf("%w: jwk must be a valid public key", errDPoP)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", fmt.Errorf("%w: bad signature", errDPoP)
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: claims are not JSON", errDPoP)
	}
	switch {
	case c.JTI == "" || len(c.JTI) > dpopMaxJTI:
		return "", fmt.Errorf("%w: jti missing or too long", errDPoP)
	case c.HTM != r.Method:
		return "", fmt.Errorf("%w: htm does not match the request method", errDPoP)
	case !sameHTU(c.HTU, htu):
		return "", fmt.Errorf("%w: htu does not match the endpoint", errDPoP)
	}
	now := d.now()
	iat := time.Unix(int64(c.IAT), 0)
	if iat.Before(now.Add(-dpopPast)) || iat.After(now.Add(dpopFuture)) {
		return "", fmt.Errorf("%w: iat outside the accepted window", errDPoP)
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return "", fmt.Errorf("%w: ath does not match the access token", errDPoP)
		}
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: jwk thumbprint: %v", errDPoP, err)
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// One use per proof: jti is scoped by the key so clients cannot collide.
	// The hash tag groups the proofs of 1/256 of the keys in one Redis
	// Cluster slot with the memory marker that vouches for them.
	tag := dpopTag(jkt)
	fresh, err := d.eph.SetNX(ctx, "dpop:jti:"+tag+":"+jkt+":"+c.JTI, []byte{1}, dpopReplayTTL)
	if err != nil {
		return "", fmt.Errorf("oidc: dpop replay cache: %w", err)
	}
	if !fresh {
		return "", fmt.Errorf("%w: proof replayed", errDPoP)
	}
	// Fail closed across a loss of the replay cache: a proof dated before
	// the cache's memory began may have been used while it was forgetting.
	// Clients make a fresh proof per request, so only a replay is refused.
	since, err := ephemeral.MemorySince(ctx, d.eph, "dpop:memory:"+tag, now)
	if err != nil {
		return "", fmt.Errorf("oidc: dpop replay cache: %w", err)
	}
	if iat.Before(since.Truncate(time.Second)) {
		return "", fmt.Errorf("%w: proof older than the replay cache; make a new one", errDPoP)
	}
	return jkt, nil
}

// dpopTag is the Redis Cluster hash tag of a key thumbprint's proofs.
func dpopTag(jkt string) string {
	sum := sha256.Sum256([]byte(jkt))
	return ephemeral.MemoryTag(sum[0])
}

// startDPoPMemory creates the DPoP replay cache's memory markers when the
// provider starts, so that only a loss of the cache while it runs (not a
// first start) refuses proofs made before it.
func (d *dpopChecker) startDPoPMemory(ctx context.Context) {
	if err := ephemeral.StartMemories(ctx, d.eph, "dpop:memory:", d.now()); err != nil {
		d.log.Warn("oidc: dpop replay cache memory markers", "err", err)
	}
}

// dpopChecker checks DPoP proofs (RFC 9449) against its replay cache and
// finds the key an authorization code was bound to. It holds only what it
// uses (dpop_storage.go); New builds it for the token endpoints.
type dpopChecker struct {
	eph   ephemeral.Store
	now   func() time.Time
	log   *slog.Logger
	codes codeSigner
	auth  dpopCodes
}

// codeSigner computes the storage signature of an authorization code.
type codeSigner interface {
	AuthorizeCodeSignature(ctx context.Context, code string) string
}

// codeBinding returns the dpop_jkt the authorization code in the request
// was bound to, "" when none (or when the code is unknown: fosite then
// refuses it). It runs before fosite handles the request, because fosite
// spends the code's PKCE record while checking it: a proof by the wrong
// key must be refused before anything changes.
func (d *dpopChecker) codeBinding(ctx context.Context, r *http.Request) string {
	if r.PostFormValue("grant_type") != "authorization_code" || r.PostFormValue("code") == "" {
		return ""
	}
	req, err := d.auth.GetAuthorizeCodeSession(ctx, d.codes.AuthorizeCodeSignature(ctx, r.PostFormValue("code")), newSession())
	if err != nil || req == nil {
		return "" // fosite reports the bad code
	}
	if s, ok := req.GetSession().(*Session); ok {
		return s.DPoPJKT
	}
	return ""
}

// validJKT reports a base64url (unpadded) SHA-256 thumbprint.
func validJKT(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// sameHTU compares a proof's htu with the endpoint URL, ignoring any query
// and fragment and the case of scheme and host (RFC 9449 section 4.3).
func sameHTU(got, want string) bool {
	if i := strings.IndexAny(got, "?#"); i >= 0 {
		got = got[:i]
	}
	norm := func(u string) string {
		scheme, rest, ok := strings.Cut(u, "://")
		if !ok {
			return u
		}
		host, path, _ := strings.Cut(rest, "/")
		return strings.ToLower(scheme) + "://" + strings.ToLower(host) + "/" + path
	}
	return norm(got) == norm(want)
}

// accessTokenAndScheme reads "Authorization: Bearer|DPoP <token>".
func accessTokenAndScheme(r *http.Request) (tok, scheme string) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok {
		return "", ""
	}
	return strings.TrimSpace(tok), strings.ToLower(scheme)
}
