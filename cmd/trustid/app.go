package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/config"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	eredis "github.com/trustid/trustid/internal/ephemeral/redis"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/sqlite"
)

// app holds the live dependencies built from the configuration file; every
// subcommand that touches state starts from one.
type app struct {
	cfg    *config.File
	log    *slog.Logger
	ring   *seal.Ring
	store  store.Store
	eph    ephemeral.Store
	rec    *audit.Recorder
	closer []func() error
}

// recorder returns the audit recorder of the app's store: every event this
// process writes goes through it (the store chains them with audit.Chain).
func (a *app) recorder() *audit.Recorder { return a.rec }

// operatorActor is the audit actor of an operator command: "operator:"
// and the name given (-actor), else $USER, else "cli".
func operatorActor(name string) string {
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = "cli"
	}
	return "operator:" + name
}

// configFlag registers the -config flag every stateful subcommand takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("TRUSTID_CONFIG"),
		"configuration file (YAML); empty runs the zero-config development setup")
}

// appCommand runs a stateful subcommand: it parses -config plus the flags
// define adds, opens the app and runs fn with it.
func appCommand(ctx context.Context, name string, args []string, define func(*flag.FlagSet), fn func(*app) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if define != nil {
		define(fs)
	}
	return runWithApp(ctx, fs, cfgPath, args, fn)
}

// runWithApp parses args into fs (which holds -config at cfgPath), refuses
// positional arguments, opens the app and runs fn with it.
func runWithApp(ctx context.Context, fs *flag.FlagSet, cfgPath *string, args []string, fn func(*app) error) error {
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
	return fn(a)
}

// loadConfig reads the configuration file (or the zero-config default).
func loadConfig(path string) (*config.File, error) {
	return config.Load(path, os.Getenv)
}

func newLogger(cfg *config.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// openApp builds the key ring, the durable store (migrated) and the
// ephemeral store named by the configuration.
func openApp(ctx context.Context, configPath string) (*app, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: newLogger(cfg)}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if cfg.Dev {
		a.log.Warn("development setup: no configuration file; keys are generated into the data directory. Do not use in production.",
			"data_dir", cfg.DataDir, "storage", cfg.Storage.Driver, "ephemeral", cfg.Ephemeral.Driver)
	}
	if len(cfg.Secrets.EncryptionKeys) > 0 {
		a.ring, err = seal.New(seal.Config{Keys: cfg.Secrets.EncryptionKeys, Primary: cfg.Secrets.PrimaryKeyID, LookupKey: cfg.Secrets.LookupKey})
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	} else {
		var created bool
		a.ring, created, err = seal.GenerateDev(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if created {
			a.log.Warn("generated development encryption keys", "file", filepath.Join(cfg.DataDir, seal.DevFile))
		}
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
	if a.rec, err = audit.New(audit.Config{Store: a.store.Audit(), Logger: a.log}); err != nil {
		return nil, err
	}
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

// Close releases everything openApp opened, in reverse order.
func (a *app) Close() error {
	var errs []error
	for i := len(a.closer) - 1; i >= 0; i-- {
		errs = append(errs, a.closer[i]())
	}
	a.closer = nil
	return errors.Join(errs...)
}
