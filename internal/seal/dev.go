package seal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DevFile is the name of the generated key file in the data directory.
const DevFile = "seal-keys.json"

// GenerateDev returns the ring kept in dir/seal-keys.json for the zero-config
// (development) setup: it is created with fresh random keys, mode 0600, on
// first use and reused on every later start. created reports whether the
// keys were generated now (the caller should log that this is a dev setup).
// A key file readable by group or others is refused.
func GenerateDev(dir string) (r *Ring, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("seal: data dir: %w", err)
	}
	path := filepath.Join(dir, DevFile)
	cfg, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		cfg, err = Generate(nil)
		if err != nil {
			return nil, false, err
		}
		if err := writeKeyFile(path, cfg); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return nil, false, err
			}
			// Another process won the race: use its keys.
			if cfg, err = readKeyFile(path); err != nil {
				return nil, false, err
			}
		} else {
			created = true
		}
	} else if err != nil {
		return nil, false, err
	}
	r, err = New(cfg)
	if err != nil {
		return nil, false, fmt.Errorf("seal: %s: %w", path, err)
	}
	return r, created, nil
}

func readKeyFile(path string) (Config, error) {
	var cfg Config
	st, err := os.Stat(path)
	if err != nil {
		return cfg, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return cfg, fmt.Errorf("seal: %s: mode %v is readable by others; want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("seal: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("seal: %s: %w", path, err)
	}
	return cfg, nil
}

// writeKeyFile writes to a temporary file and links it into place, so the
// key file is either absent or complete, and never overwritten.
func writeKeyFile(path string, cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".seal-keys-*")
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("seal: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("seal: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("seal: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}
