// Package benchmint mints refresh tokens without a login, for the load test
// of the refresh_token grant (bench/oidc/run.sh, `trustid-lab
// bench-tokens`). BENCHMARKS ONLY. It drives fosite's real
// authorization-code flow in-process through the provider's engine
// (oidc.Provider.OAuth2), so it needs no fosite import of its own; the
// service never imports it.
package benchmint

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustid/trustid/oidc"
	"github.com/trustid/trustid/oidc/storage"
)

// Request describes refresh tokens to mint for a load test.
type Request struct {
	ClientID, ClientSecret string // a confidential client allowed authorization_code and refresh_token
	RedirectURI            string // one of the client's redirect URIs
	Scopes                 []string
	CitizenID              string // the (internal) citizen the grants are for
	N                      int
}

// RefreshTokens issues m.N refresh tokens through fosite's
// real authorization-code flow (authorize request, code, code exchange with
// client authentication), skipping only the interactive login: the session
// is filled as if m.CitizenID had just logged in, with amr "bench" and no
// acr. It exists so bench/oidc/run.sh can load the refresh_token grant with
// a fresh token per request; `trustid-lab bench-tokens` exposes it
// only behind an explicit flag, and the service binary does not link it.
func RefreshTokens(ctx context.Context, p *oidc.Provider, issuer string, m Request) ([]string, error) {
	if m.ClientID == "" || m.ClientSecret == "" || m.RedirectURI == "" || m.CitizenID == "" || m.N <= 0 {
		return nil, errors.New("benchmint: client id and secret, redirect URI, citizen and N > 0 are required")
	}
	out := make([]string, 0, m.N)
	for range m.N {
		rt, err := mintOne(ctx, p, issuer, m)
		if err != nil {
			return out, err
		}
		out = append(out, rt)
	}
	return out, nil
}

func mintOne(ctx context.Context, p *oidc.Provider, issuer string, m Request) (string, error) {
	f := p.OAuth2()
	q := url.Values{
		"response_type": {"code"}, "client_id": {m.ClientID}, "redirect_uri": {m.RedirectURI},
		"scope": {strings.Join(m.Scopes, " ")}, "state": {randomID()}, "nonce": {randomID()},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+oidc.PathAuth+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	ar, err := f.NewAuthorizeRequest(ctx, req)
	if err != nil {
		return "", fmt.Errorf("benchmint: authorize: %w", err)
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	client := ar.GetClient().(*storage.Client)
	now := time.Now().UTC().Truncate(time.Second)
	sess := oidc.NewSession()
	sess.CitizenID = m.CitizenID
	sub := p.Subject(client.Client, m.CitizenID)
	sess.Subject = sub
	sess.Claims.Subject = sub
	sess.Claims.RequestedAt = now
	sess.Claims.AuthTime = now
	sess.Claims.AuthenticationMethodsReferences = []string{"bench"}
	resp, err := f.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		return "", fmt.Errorf("benchmint: authorize response: %w", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {resp.GetCode()}, "redirect_uri": {m.RedirectURI}}
	treq, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+oidc.PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	treq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	treq.SetBasicAuth(url.QueryEscape(m.ClientID), url.QueryEscape(m.ClientSecret))
	areq, err := f.NewAccessRequest(ctx, treq, oidc.NewSession())
	if err != nil {
		return "", fmt.Errorf("benchmint: token request: %w", err)
	}
	aresp, err := f.NewAccessResponse(ctx, areq)
	if err != nil {
		return "", fmt.Errorf("benchmint: token response: %w", err)
	}
	rt, _ := aresp.GetExtra("refresh_token").(string)
	if rt == "" {
		return "", errors.New("benchmint: no refresh token issued (does the client allow refresh_token and the offline_access scope?)")
	}
	return rt, nil
}

// randomID is a random state or nonce.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
