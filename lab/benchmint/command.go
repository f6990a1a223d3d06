package benchmint

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/config"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	eredis "github.com/trustid/trustid/internal/ephemeral/redis"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/sqlite"
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
	a, err := openApp(ctx, *cfgPath)
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
			parts[i], errs[i] = RefreshTokens(ctx, p, a.cfg.Issuer, Request{
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

// app, openApp and providerConfig are the lab's copies of cmd/trustid's
// (app.go, features.go): the tokens minted here are refreshed by `trustid
// serve`, so both must open the same stores and derive the same issuer,
// secrets and token settings from one configuration.
// TODO(integrator): share one implementation with cmd/trustid.
type app struct {
	cfg    *config.File
	log    *slog.Logger
	ring   *seal.Ring
	store  store.Store
	eph    ephemeral.Store
	closer []func() error
}

func openApp(ctx context.Context, configPath string) (*app, error) {
	cfg, err := config.Load(configPath, os.Getenv)
	if err != nil {
		return nil, err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	a := &app{cfg: cfg, log: slog.New(slog.NewJSONHandler(os.Stderr, opts))}
	if cfg.Log.Format == "text" {
		a.log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if len(cfg.Secrets.EncryptionKeys) > 0 {
		a.ring, err = seal.New(seal.Config{Keys: cfg.Secrets.EncryptionKeys, Primary: cfg.Secrets.PrimaryKeyID, LookupKey: cfg.Secrets.LookupKey})
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	} else if a.ring, _, err = seal.GenerateDev(cfg.DataDir); err != nil {
		return nil, err
	}
	switch cfg.Storage.Driver {
	case "postgres":
		db, err := postgres.Open(ctx, cfg.Storage.PostgresDSN, a.ring)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		a.store = db
	default:
		if err := os.MkdirAll(filepath.Dir(cfg.Storage.SQLitePath), 0o700); err != nil {
			return nil, err
		}
		db, err := sqlite.Open(ctx, cfg.Storage.SQLitePath, a.ring)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		a.store = db
	}
	a.closer = append(a.closer, a.store.Close)
	switch cfg.Ephemeral.Driver {
	case "redis":
		r, err := eredis.New(ctx, cfg.Ephemeral.RedisURL, cfg.Ephemeral.Prefix)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		a.eph = r
	default:
		a.eph = memory.New(memory.Options{})
	}
	a.closer = append(a.closer, a.eph.Close)
	ok = true
	return a, nil
}

func (a *app) Close() error {
	var errs []error
	for i := len(a.closer) - 1; i >= 0; i-- {
		errs = append(errs, a.closer[i]())
	}
	a.closer = nil
	return errors.Join(errs...)
}

// providerConfig is cmd/trustid's providerConfig with a login method that
// refuses everyone (minting never logs in; oidc.New wants one).
func providerConfig(a *app) oidc.Config {
	return oidc.Config{
		Issuer:           a.cfg.Issuer,
		Store:            a.store,
		Ephemeral:        a.eph,
		Logger:           a.log.With("area", "oidc"),
		Secret:           a.ring.LookupHash("trustid/derived-key", []byte("oidc-master")),
		Authenticators:   []oidc.Authenticator{noLogin{}},
		AccessTokenTTL:   a.cfg.OIDC.AccessTokenTTL,
		AccessTokenStore: a.cfg.OIDC.AccessTokenStore,
		Sealer:           a.ring,
		RefreshTokenTTL:  a.cfg.OIDC.RefreshTokenTTL,
		IDTokenTTL:       a.cfg.OIDC.IDTokenTTL,
		AuthCodeTTL:      a.cfg.OIDC.AuthCodeTTL,
		KeyRotation:      a.cfg.OIDC.KeyRotation,
		SigningAlg:       a.cfg.OIDC.SigningAlg,
		AdminToken:       a.cfg.Secrets.AdminToken,
		InsecureCookies:  strings.HasPrefix(a.cfg.Issuer, "http://"),
	}
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
