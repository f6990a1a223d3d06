package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
)

// assertionSkew is the clock skew allowed on a client assertion's iat/nbf.
const assertionSkew = 30 * time.Second

// clientAuth is fosite's client authentication (client_secret_basic,
// client_secret_post, private_key_jwt) inside the one client-authentication
// component's checks (internal/clientauth): credentials that are not UTF-8
// are refused as invalid_request and a limited address or client with 429
// temporarily_unavailable and Retry-After (limitedError), both before the
// store is read; failures are reported to clientauth, which logs and
// counts them. The time claims of a client assertion are checked first:
// fosite v0.49 passes an expired or not-yet-valid assertion's error through
// unwrapped, which would answer 500 instead of invalid_client. The
// pre-checks only refuse; they never authenticate.
func (p *Provider) clientAuth(next fosite.ClientAuthenticationStrategy) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		id, secret := requestCredentials(r, form)
		addr := clientauth.Address(r)
		if err := p.secrets.Precheck(ctx, id, secret, addr); err != nil {
			var le *clientauth.LimitedError
			if errors.As(err, &le) {
				return nil, limitedError(le)
			}
			return nil, fosite.ErrInvalidRequest.WithHint("The client credentials are not valid UTF-8.").WithWrap(err)
		}
		if a := form.Get("client_assertion"); a != "" {
			if hint := assertionTimesInvalid(a, p.now()); hint != "" {
				p.secrets.Failed(ctx, id, addr, hint)
				return nil, fosite.ErrInvalidClient.WithHint(hint)
			}
		}
		c, err := next(ctx, r, form)
		switch {
		case err == nil:
			p.secrets.Succeeded(ctx, c.GetID(), addr)
		case errors.Is(err, fosite.ErrInvalidClient) && !httperr.IsUnavailable(err):
			// Reported where every client-authentication failure is (clientauth).
			p.secrets.Failed(ctx, id, addr, "invalid_client at "+r.URL.Path)
		}
		return c, err
	}
}

// limitedError is the OAuth answer to a limited client authentication:
// HTTP 429 with temporarily_unavailable (RFC 6749 defines no code for a
// rate limit; temporarily_unavailable is the one clients already retry)
// and the limit's Retry-After, set by writeOAuthError.
func limitedError(le *clientauth.LimitedError) *fosite.RFC6749Error {
	return oauthErr(http.StatusTooManyRequests, fosite.ErrTemporarilyUnavailable.ErrorField,
		"Too many failed client authentications; retry after the time in Retry-After.").WithWrap(le)
}

// requestCredentials are the client id and secret a request presents: the
// HTTP Basic user name and password (form-decoded, RFC 6749 section 2.3.1)
// or the client_id and client_secret parameters.
func requestCredentials(r *http.Request, form url.Values) (id, secret string) {
	if id, secret, ok := r.BasicAuth(); ok {
		if dec, err := url.QueryUnescape(id); err == nil {
			id = dec
		}
		if dec, err := url.QueryUnescape(secret); err == nil {
			secret = dec
		}
		return id, secret
	}
	return form.Get("client_id"), form.Get("client_secret")
}

// assertionTimesInvalid says what is wrong with the exp, nbf and iat claims
// of a compact JWT (unverified: the signature is fosite's to check), or "".
func assertionTimesInvalid(jwt string, now time.Time) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "The client_assertion is not a compact JWT."
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "The client_assertion payload is not base64url."
	}
	var c struct {
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
		Iat *float64 `json:"iat"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "The client_assertion claims are not a JSON object with numeric times."
	}
	switch t := float64(now.Unix()); {
	case c.Exp == nil:
		return "The client_assertion has no exp claim."
	case *c.Exp <= t:
		return "The client_assertion has expired."
	case c.Nbf != nil && *c.Nbf > t+assertionSkew.Seconds():
		return "The client_assertion is not valid yet (nbf)."
	case c.Iat != nil && *c.Iat > t+assertionSkew.Seconds():
		return "The client_assertion was issued in the future (iat)."
	}
	return ""
}
