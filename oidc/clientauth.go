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

	"github.com/trustid/trustid/oidc/storage"
)

// assertionSkew is the clock skew allowed on a client assertion's iat/nbf.
const assertionSkew = 30 * time.Second

// clientAuth is fosite's client authentication (client_secret_basic,
// client_secret_post, private_key_jwt) with the time claims of a client
// assertion checked first: fosite v0.49 passes an expired or not-yet-valid
// assertion's error through unwrapped, which would answer 500 instead of
// invalid_client. The pre-check only refuses; it never authenticates.
func (p *Provider) clientAuth(next fosite.ClientAuthenticationStrategy) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		if a := form.Get("client_assertion"); a != "" {
			if hint := assertionTimesInvalid(a, p.now()); hint != "" {
				p.secrets.Failed(ctx, requestClientID(r, form), hint)
				return nil, fosite.ErrInvalidClient.WithHint(hint)
			}
		}
		c, err := next(ctx, r, form)
		if errors.Is(err, storage.ErrClientUnavailable) {
			// fosite wraps a failed client lookup as invalid_client: an
			// outage is not a credential error (issue 16.3).
			return nil, clientUnavailable(err)
		}
		if err != nil && errors.Is(err, fosite.ErrInvalidClient) {
			// Reported where every client-authentication failure is (clientauth).
			p.secrets.Failed(ctx, requestClientID(r, form), "invalid_client at "+r.URL.Path)
		}
		return c, err
	}
}

// clientUnavailable is the answer to a client that could not be read:
// temporarily_unavailable (503), which the endpoints send with Retry-After.
func clientUnavailable(err error) error {
	debug := err.Error()
	if d := fosite.ErrorToRFC6749Error(err).DebugField; d != "" {
		debug = d // the store's error, which fosite's wrapper carries here
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(debug).
		WithHint("The client could not be authenticated now; retry later.")
}

// requestClientID is the client id a request claims: the HTTP Basic user
// name (form-decoded, RFC 6749 section 2.3.1) or the client_id parameter.
func requestClientID(r *http.Request, form url.Values) string {
	if id, _, ok := r.BasicAuth(); ok {
		if dec, err := url.QueryUnescape(id); err == nil {
			return dec
		}
		return id
	}
	return form.Get("client_id")
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
