package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/oidc"
)

// runBenchRefreshTokens mints refresh tokens for the load test of the
// refresh_token grant (bench/oidc/run.sh). BENCHMARKS ONLY: it issues real
// grants for a citizen without a login, so it refuses to run without
// -i-know-this-is-a-benchmark.
func runBenchRefreshTokens(ctx context.Context, args []string) error {
	var (
		really                     bool
		clientID, secret, redirect string
		citizen, out               string
		scopes                     listFlag
		n, workers                 int
	)
	define := func(fs *flag.FlagSet) {
		fs.BoolVar(&really, "i-know-this-is-a-benchmark", false, "required: grants are issued without a login")
		fs.StringVar(&clientID, "client", "", "client id (authorization_code and refresh_token grants)")
		fs.StringVar(&secret, "secret", os.Getenv("TRUSTID_BENCH_CLIENT_SECRET"), "client secret (default $TRUSTID_BENCH_CLIENT_SECRET)")
		fs.StringVar(&redirect, "redirect-uri", "", "one of the client's redirect URIs")
		fs.StringVar(&citizen, "citizen", "bench-citizen", "internal citizen id the grants are for")
		fs.Var(&scopes, "scopes", "scopes to grant (default openid,offline_access)")
		fs.IntVar(&n, "n", 1000, "number of refresh tokens")
		fs.IntVar(&workers, "workers", 4, "concurrent minting goroutines")
		fs.StringVar(&out, "out", "", "file to write the tokens to, one per line (required)")
	}
	return appCommand(ctx, "bench-tokens", args, define, func(a *app) error {
		if !really {
			return errors.New("bench-only command: issues grants without a login; pass -i-know-this-is-a-benchmark")
		}
		if out == "" {
			return errors.New("-out is required")
		}
		if len(scopes) == 0 {
			scopes = listFlag{oidc.ScopeOpenID, oidc.ScopeOffline}
		}
		// The provider needs a login method to start; no login happens here,
		// so the face method's zero value (name and acr only) stands in.
		p, err := oidc.New(providerConfig(a, &facelogin.Login{}))
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
				parts[i], errs[i] = p.MintRefreshTokensForBenchmark(ctx, oidc.BenchMint{
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
		a.log.Warn("bench: refresh tokens minted without a login (benchmark only)",
			"count", len(toks), "client", clientID, "took", time.Since(start).Round(time.Millisecond).String())
		return nil
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
