package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustid/trustid/oidc/storage"
)

// BenchMint describes refresh tokens to mint for a load test.
type BenchMint struct {
	ClientID, ClientSecret string // a confidential client allowed authorization_code and refresh_token
	RedirectURI            string // one of the client's redirect URIs
	Scopes                 []string
	CitizenID              string // the (internal) citizen the grants are for
	N                      int
}

// MintRefreshTokensForBenchmark issues m.N refresh tokens through fosite's
// real authorization-code flow (authorize request, code, code exchange with
// client authentication), skipping only the interactive login: the session
// is filled as if m.CitizenID had just logged in, with amr "bench" and no
// acr. It exists so bench/oidc/run.sh can load the refresh_token grant with
// a fresh token per request; `trustid bench-tokens` exposes it only
// behind an explicit flag, and serve never calls it.
func (p *Provider) MintRefreshTokensForBenchmark(ctx context.Context, m BenchMint) ([]string, error) {
	if m.ClientID == "" || m.ClientSecret == "" || m.RedirectURI == "" || m.CitizenID == "" || m.N <= 0 {
		return nil, errors.New("oidc: bench mint: client id and secret, redirect URI, citizen and N > 0 are required")
	}
	out := make([]string, 0, m.N)
	for range m.N {
		rt, err := p.mintOne(ctx, m)
		if err != nil {
			return out, err
		}
		out = append(out, rt)
	}
	return out, nil
}

func (p *Provider) mintOne(ctx context.Context, m BenchMint) (string, error) {
	q := url.Values{
		"response_type": {"code"}, "client_id": {m.ClientID}, "redirect_uri": {m.RedirectURI},
		"scope": {strings.Join(m.Scopes, " ")}, "state": {randomID()}, "nonce": {randomID()},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Issuer+PathAuth+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	ar, err := p.f.NewAuthorizeRequest(ctx, req)
	if err != nil {
		return "", fmt.Errorf("oidc: bench mint: authorize: %w", err)
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	client := ar.GetClient().(*storage.Client)
	now := p.now().UTC().Truncate(time.Second)
	sess := newSession()
	sess.CitizenID = m.CitizenID
	sub := p.subject(client.Client, m.CitizenID)
	sess.Subject = sub
	sess.Claims.Subject = sub
	sess.Claims.RequestedAt = now
	sess.Claims.AuthTime = now
	sess.Claims.AuthenticationMethodsReferences = []string{"bench"}
	resp, err := p.f.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		return "", fmt.Errorf("oidc: bench mint: authorize response: %w", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {resp.GetCode()}, "redirect_uri": {m.RedirectURI}}
	treq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.Issuer+PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	treq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	treq.SetBasicAuth(url.QueryEscape(m.ClientID), url.QueryEscape(m.ClientSecret))
	areq, err := p.f.NewAccessRequest(ctx, treq, newSession())
	if err != nil {
		return "", fmt.Errorf("oidc: bench mint: token request: %w", err)
	}
	aresp, err := p.f.NewAccessResponse(ctx, areq)
	if err != nil {
		return "", fmt.Errorf("oidc: bench mint: token response: %w", err)
	}
	rt, _ := aresp.GetExtra("refresh_token").(string)
	if rt == "" {
		return "", errors.New("oidc: bench mint: no refresh token issued (does the client allow refresh_token and the offline_access scope?)")
	}
	return rt, nil
}
