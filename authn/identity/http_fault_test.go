package identity_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/httperr"
)

// downAuth cannot decide: its client store is down.
type downAuth struct{}

func (downAuth) Authenticate(*http.Request) (identity.Caller, error) {
	he := httperr.Unavailable(errors.New("client store: connection refused"))
	he.RetryAfter = time.Second
	return identity.Caller{}, he
}

// TestCallerStoreOutageIsNotACredentialError: an authenticator's 5xx
// (its client store is down) is answered as such, with Retry-After, not
// as 401 unauthorized (issue 16, defect 3).
func TestCallerStoreOutageIsNotACredentialError(t *testing.T) {
	f := newFixture(t)
	lim := memory.New(memory.Options{Now: f.clock.Now})
	t.Cleanup(func() { lim.Close() })
	h, err := identity.NewHandler(identity.HTTPConfig{Service: f.svc, Auth: downAuth{}, Limiter: lim, MaxImageBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", identity.PathVerify, nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d Retry-After %q: %s, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}
