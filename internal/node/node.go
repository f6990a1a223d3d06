// Package node opens what a TrustID process runs on, from one
// configuration: the key ring, the durable store (migrated), its audit
// recorder and the ephemeral store. The service (cmd/trustid) and the lab
// (cmd/trustid-lab, e.g. minting benchmark tokens that the service then
// refreshes) open the same state the same way and derive the same keys, so
// this is the one place that picks the concrete backends a configuration
// names.
package node

import (
	"context"
	"errors"
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

// Node holds the live dependencies built from a configuration.
type Node struct {
	Config    *config.File
	Log       *slog.Logger
	Ring      *seal.Ring
	Store     store.Store
	Ephemeral ephemeral.Store
	Audit     *audit.Recorder

	closer []func() error
}

// newLogger is the process logger the configuration asks for.
func newLogger(cfg *config.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// Open builds the key ring, the durable store (migrated), the audit
// recorder and the ephemeral store named by the configuration at path.
func Open(ctx context.Context, path string) (*Node, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	n := &Node{Config: cfg, Log: newLogger(cfg)}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	if cfg.Dev {
		n.Log.Warn("development setup: no configuration file; keys are generated into the data directory. Do not use in production.",
			"data_dir", cfg.DataDir, "storage", cfg.Storage.Driver, "ephemeral", cfg.Ephemeral.Driver)
	}
	if len(cfg.Secrets.EncryptionKeys) > 0 {
		n.Ring, err = seal.New(seal.Config{Keys: cfg.Secrets.EncryptionKeys, Primary: cfg.Secrets.PrimaryKeyID, LookupKey: cfg.Secrets.LookupKey})
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	} else {
		var created bool
		n.Ring, created, err = seal.GenerateDev(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if created {
			n.Log.Warn("generated development encryption keys", "file", filepath.Join(cfg.DataDir, seal.DevFile))
		}
	}
	switch cfg.Storage.Driver {
	case "postgres":
		db, err := postgres.Open(ctx, cfg.Storage.PostgresDSN, n.Ring)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		n.Store = db
	default:
		if err := os.MkdirAll(filepath.Dir(cfg.Storage.SQLitePath), 0o700); err != nil {
			return nil, err
		}
		db, err := sqlite.Open(ctx, cfg.Storage.SQLitePath, n.Ring)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		n.Store = db
	}
	n.closer = append(n.closer, n.Store.Close)
	if n.Audit, err = audit.New(audit.Config{Store: n.Store.Audit(), Logger: n.Log}); err != nil {
		return nil, err
	}
	switch cfg.Ephemeral.Driver {
	case "redis":
		var r *eredis.Store
		var err error
		if len(cfg.Ephemeral.RedisClusterAddrs) > 0 {
			r, err = eredis.NewCluster(ctx, cfg.Ephemeral.RedisClusterAddrs, cfg.Ephemeral.RedisPassword, cfg.Ephemeral.Prefix)
		} else {
			r, err = eredis.New(ctx, cfg.Ephemeral.RedisURL, cfg.Ephemeral.Prefix)
		}
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		n.Ephemeral = r
	default:
		n.Ephemeral = memory.New(memory.Options{})
	}
	n.closer = append(n.closer, n.Ephemeral.Close)
	ok = true
	return n, nil
}

// OnClose adds f to what Close runs (first added, last run).
func (n *Node) OnClose(f func() error) { n.closer = append(n.closer, f) }

// Close releases everything Open opened and OnClose added, in reverse order.
func (n *Node) Close() error {
	var errs []error
	for i := len(n.closer) - 1; i >= 0; i-- {
		errs = append(errs, n.closer[i]())
	}
	n.closer = nil
	return errors.Join(errs...)
}

// DerivedKey derives a 32-byte key for one purpose from the ring's lookup
// key, so every node with the same secrets agrees without more settings.
func (n *Node) DerivedKey(purpose string) []byte {
	return n.Ring.LookupHash("trustid/derived-key", []byte(purpose))
}

// OIDCMasterSecret is the OIDC provider's master key (oidc.Config.Secret):
// `trustid serve`, `trustid client` and `trustid-lab bench-tokens` must
// agree on it.
func (n *Node) OIDCMasterSecret() []byte { return n.DerivedKey("oidc-master") }
