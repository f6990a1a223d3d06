package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// downGetter is a client store that is down (PostgreSQL stopped).
type downGetter struct{}

func (downGetter) Get(context.Context, string) (*store.Client, error) {
	return nil, errors.New("failed to connect: connection refused")
}

// TestClientStoreOutageAdapters: the verifier API's and the identity API's
// client authentication answer a store fault with 503 and Retry-After (an
// *httperr.Error, which certs and authn/identity pass on), never a
// credential refusal (issue 16, defect 3); a wrong secret is still one.
func TestClientStoreOutageAdapters(t *testing.T) {
	secrets, err := clientauth.New(clientauth.Config{Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	good := clientMap{"hotel-1": {ID: "hotel-1", Role: "hotel", SecretHash: secrets.Hash([]byte("s"))}}
	auths := []struct {
		name string
		auth func(clientauth.ClientGetter, *http.Request) error
	}{
		{"verifier API", func(c clientauth.ClientGetter, r *http.Request) error {
			_, err := (&verifierClients{clients: c, secrets: secrets}).AuthenticateVerifier(r)
			return err
		}},
		{"identity API", func(c clientauth.ClientGetter, r *http.Request) error {
			_, err := identityAuth{clients: c, secrets: secrets}.Authenticate(r)
			return err
		}},
	}
	for _, a := range auths {
		t.Run(a.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.SetBasicAuth("hotel-1", "s")
			var he *httperr.Error
			err := a.auth(downGetter{}, r)
			if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || he.RetryAfter < time.Second {
				t.Fatalf("store down: %v, want a 503 *httperr.Error with Retry-After", err)
			}
			if err := a.auth(good, r); err != nil {
				t.Fatalf("store up: %v", err)
			}
			r.SetBasicAuth("hotel-1", "wrong")
			if err := a.auth(good, r); err == nil || errors.As(err, &he) {
				t.Fatalf("wrong secret: %v, want a credential refusal", err)
			}
		})
	}
}
