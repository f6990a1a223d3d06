package oidc

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
)

// The provider's error contracts, one per surface:
//
//   - OAuth endpoints (token, CIBA bc-authorize and its polling, RFC 7591
//     registration, userinfo, DPoP refusals) answer RFC 6749 section 5.2
//     JSON {"error", "error_description"} through writeOAuthError, built on
//     fosite's RFC6749Error and writer; PAR, introspection and revocation
//     use fosite's endpoint writers of the same error type.
//   - JSON APIs (client administration, the account page's CIBA list and
//     decision) answer through internal/httperr (jsonAPI).
//   - Pages (login, consent, logout) draw HTML pages.

// oauthErr is an RFC 6749 error with a code outside fosite's list (CIBA's
// and RFC 7591's) or a description of its own.
func oauthErr(status int, code, desc string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: code, DescriptionField: desc, CodeField: status}
}

// retryAfter is the Retry-After (seconds) of a temporarily_unavailable
// answer that set none.
const retryAfter = "1"

// writeOAuthError is the provider's one writer of OAuth errors. An
// *fosite.RFC6749Error in err's chain is answered as it is, unless a
// dependency's fault (httperr.IsUnavailable) caused it: that is 503
// temporarily_unavailable with Retry-After whatever fosite made of it (its
// client authentication, for one, calls a store failure invalid_client),
// so a client retries instead of taking a verdict that was never reached.
// A limited client authentication (clientauth.LimitedError) is 429
// temporarily_unavailable with the limit's Retry-After. Anything else is a
// 500 server_error. 5xx causes are logged, never sent.
func (p *Provider) writeOAuthError(ctx context.Context, w http.ResponseWriter, err error) {
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		rfc = fosite.ErrServerError.WithWrap(err)
	}
	if httperr.IsUnavailable(err) {
		rfc = fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	var le *clientauth.LimitedError
	if errors.As(err, &le) {
		// Whatever fosite wrapped it in (its PAR calls every client
		// authentication error invalid_client).
		rfc = limitedError(le)
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(le.RetryAfter.Seconds())), 10))
	}
	if rfc.CodeField >= 500 {
		p.log.LogAttrs(ctx, slog.LevelError, "oidc: oauth error", slog.String("error", rfc.ErrorField), slog.Any("err", err))
	}
	if rfc.ErrorField == fosite.ErrTemporarilyUnavailable.ErrorField && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	p.f.WriteAccessError(ctx, w, nil, rfc)
}

// jsonAPI adapts a JSON API handler of the provider to the one error
// writer of JSON APIs (internal/httperr).
func (p *Provider) jsonAPI(fn httperr.HandlerFunc) http.HandlerFunc {
	return httperr.Handle(p.log, fn).ServeHTTP
}
