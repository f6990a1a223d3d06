package certs

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/trustid/trustid/internal/httperr"
)

// downVerifiers is a verifier authenticator whose client store is down for
// the token "store-down" (cmd/trustid's verifierClients answers such a
// fault with an *httperr.Error).
type downVerifiers struct{ bearerAuth }

func (d downVerifiers) AuthenticateVerifier(r *http.Request) (Verifier, error) {
	if bearer(r) == "store-down" {
		return Verifier{}, httperr.Unavailable(errors.New("client store: connection refused"))
	}
	return d.bearerAuth.AuthenticateVerifier(r)
}

// TestVerifierStoreOutageIsNotACredentialError: when the verifier
// authenticator cannot decide (its client store is down), /verify and
// /face-check answer its 503, not 401 verifier_unauthenticated (issue 16,
// defect 3); a refused verifier still gets 401.
func TestVerifierStoreOutageIsNotACredentialError(t *testing.T) {
	o := newOnlineFixture(t)
	cfg := o.svc.cfg
	cfg.Verifiers = downVerifiers{cfg.Verifiers.(bearerAuth)}
	o.svc.cfg = cfg
	for _, path := range []string{"/verify", "/face-check"} {
		for _, tc := range []struct {
			token  string
			status int
			code   string
		}{
			{"store-down", http.StatusServiceUnavailable, httperr.CodeUnavailable},
			{"bogus", http.StatusUnauthorized, "verifier_unauthenticated"},
		} {
			t.Run(path+"/"+tc.token, func(t *testing.T) {
				status, body := o.call("POST", path, tc.token, map[string]string{})
				var e struct{ Error struct{ Code string } }
				_ = json.Unmarshal(body, &e)
				if status != tc.status || e.Error.Code != tc.code {
					t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
				}
			})
		}
	}
}
