package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/config"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/node"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
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
	node   *node.Node
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

// openApp opens the node (key ring, migrated store, audit recorder,
// ephemeral store) named by the configuration (internal/node).
func openApp(ctx context.Context, configPath string) (*app, error) {
	n, err := node.Open(ctx, configPath)
	if err != nil {
		return nil, err
	}
	return &app{cfg: n.Config, log: n.Log, ring: n.Ring, store: n.Store, eph: n.Ephemeral, rec: n.Audit, node: n}, nil
}

// Close releases what the subcommand added (closer, in reverse order),
// then the node.
func (a *app) Close() error {
	var errs []error
	for i := len(a.closer) - 1; i >= 0; i-- {
		errs = append(errs, a.closer[i]())
	}
	a.closer = nil
	if a.node != nil {
		errs = append(errs, a.node.Close())
		a.node = nil
	}
	return errors.Join(errs...)
}
