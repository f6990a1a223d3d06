package benchmint

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/node"
	"github.com/trustid/trustid/oidc"
)

// BenchTokens (`trustid-lab bench-tokens`) mints refresh tokens for the
// load test of the refresh_token grant (bench/oidc/run.sh). BENCHMARKS
// ONLY: it issues real grants for a citizen without a login, so it refuses
// to run without -i-know-this-is-a-benchmark. It opens the stores named by
// the same -config (or zero-config default) as `trustid serve`.
func BenchTokens(ctx context.Context, args []string) error {
	var (
		really                     bool
		clientID, secret, redirect string
		citizen, out               string
		scopes                     listFlag
		n, workers                 int
	)
	fs := flag.NewFlagSet("bench-tokens", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("TRUSTID_CONFIG"),
		"configuration file (YAML); empty runs the zero-config development setup")
	fs.BoolVar(&really, "i-know-this-is-a-benchmark", false, "required: grants are issued without a login")
	fs.StringVar(&clientID, "client", "", "client id (authorization_code and refresh_token grants)")
	fs.StringVar(&secret, "secret", os.Getenv("TRUSTID_BENCH_CLIENT_SECRET"), "client secret (default $TRUSTID_BENCH_CLIENT_SECRET)")
	fs.StringVar(&redirect, "redirect-uri", "", "one of the client's redirect URIs")
	fs.StringVar(&citizen, "citizen", "bench-citizen", "internal citizen id the grants are for")
	fs.Var(&scopes, "scopes", "scopes to grant (default openid,offline_access)")
	fs.IntVar(&n, "n", 1000, "number of refresh tokens")
	fs.IntVar(&workers, "workers", 4, "concurrent minting goroutines")
	fs.StringVar(&out, "out", "", "file to write the tokens to, one per line (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	a, err := node.Open(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	if !really {
		return errors.New("bench-only command: issues grants without a login; pass -i-know-this-is-a-benchmark")
	}
	if out == "" {
		return errors.New("-out is required")
	}
	if len(scopes) == 0 {
		scopes = listFlag{oidc.ScopeOpenID, oidc.ScopeOffline}
	}
	p, err := oidc.New(providerConfig(a))
	if err != nil {
		return fmt.Errorf("oidc: %w", err)
	}
	start := time.Now()
	workers = max(1, min(workers, n))
	parts := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			parts[i], errs[i] = RefreshTokens(ctx, p, a.Config.Issuer, Request{
				ClientID: clientID, ClientSecret: secret, RedirectURI: redirect,
				Scopes: scopes, CitizenID: citizen, N: n/workers + btoi(i < n%workers),
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	toks := slices.Concat(parts...)
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(strings.Join(toks, "\n") + "\n")
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return err
	}
	a.Log.Warn("bench: refresh tokens minted without a login (benchmark only)",
		"count", len(toks), "client", clientID, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listFlag is a comma-separated (or repeated) string list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// providerConfig is the provider as `trustid serve` configures it from the
// same node (the same master secret and token settings, so that the service
// refreshes what is minted here), with a login method that refuses everyone
// (minting never logs in; oidc.New wants one).
func providerConfig(a *node.Node) oidc.Config {
	c := oidc.Config{
		Issuer:           a.Config.Issuer,
		Store:            a.Store,
		Ephemeral:        a.Ephemeral,
		Logger:           a.Log.With("area", "oidc"),
		Secret:           a.OIDCMasterSecret(),
		Authenticators:   []oidc.Authenticator{noLogin{}},
		AccessTokenTTL:   a.Config.OIDC.AccessTokenTTL,
		AccessTokenStore: a.Config.OIDC.AccessTokenStore,
		Sealer:           a.Ring,
		RefreshTokenTTL:  a.Config.OIDC.RefreshTokenTTL,
		IDTokenTTL:       a.Config.OIDC.IDTokenTTL,
		AuthCodeTTL:      a.Config.OIDC.AuthCodeTTL,
		KeyRotation:      a.Config.OIDC.KeyRotation,
		SigningAlg:       a.Config.OIDC.SigningAlg,
		AdminToken:       a.Config.Secrets.AdminToken,
		InsecureCookies:  strings.HasPrefix(a.Config.Issuer, "http://"),
	}
	if g := a.Config.OIDC.RefreshGracePeriod; g != nil {
		c.RefreshGracePeriod = *g
	}
	return c
}

// noLogin is a login method that refuses every attempt.
type noLogin struct{}

func (noLogin) Method() string { return "face" }
func (noLogin) MaxACR() string { return oidc.ACRFaceLiveness }
func (noLogin) Begin(context.Context, *oidc.LoginAttempt) (any, error) {
	return nil, oidc.ErrAuthenticationFailed
}
func (noLogin) Finish(context.Context, *oidc.LoginAttempt, *http.Request) (*oidc.Authentication, error) {
	return nil, oidc.ErrAuthenticationFailed
}
