package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/trustid/trustid/internal/store"
)

// runKeygen prints fresh encryption-at-rest key material as environment
// variables (or a YAML secrets block) for a production configuration.
// With -kid and -keep it adds a new primary key next to existing ones for a
// rotation; run `trustid reseal` afterwards, then drop the old key.
func runKeygen(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	kid := fs.String("kid", "k1", "id of the new primary encryption key")
	keep := fs.String("keep", os.Getenv("TRUSTID_ENCRYPTION_KEYS"), "existing keys to keep (kid:base64,...), for rotation")
	format := fs.String("format", "env", "output format: env or yaml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return keygen(os.Stdout, rand.Reader, *kid, *keep, *format)
}

func keygen(w io.Writer, rnd io.Reader, kid, keep, format string) error {
	if kid == "" || strings.ContainsAny(kid, ":, ") || len(kid) > 64 {
		return fmt.Errorf("bad -kid %q", kid)
	}
	keys := map[string]string{}
	for _, kv := range strings.Split(keep, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		id, k, ok := strings.Cut(kv, ":")
		if !ok || id == "" || k == "" {
			return fmt.Errorf("bad -keep entry (want kid:base64)")
		}
		keys[id] = k
	}
	if _, dup := keys[kid]; dup {
		return fmt.Errorf("key id %q already in -keep", kid)
	}
	fresh := func() (string, error) {
		b := make([]byte, 32)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	var err error
	if keys[kid], err = fresh(); err != nil {
		return err
	}
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	lookup := os.Getenv("TRUSTID_LOOKUP_KEY")
	newLookup := lookup == ""
	if newLookup {
		if lookup, err = fresh(); err != nil {
			return err
		}
	}
	switch format {
	case "env":
		pairs := make([]string, 0, len(ids))
		for _, id := range ids {
			pairs = append(pairs, id+":"+keys[id])
		}
		fmt.Fprintf(w, "TRUSTID_ENCRYPTION_KEYS=%s\nTRUSTID_PRIMARY_KEY_ID=%s\n", strings.Join(pairs, ","), kid)
		if newLookup {
			fmt.Fprintf(w, "TRUSTID_LOOKUP_KEY=%s\n", lookup)
		}
	case "yaml":
		fmt.Fprintln(w, "secrets:\n  encryption_keys:")
		for _, id := range ids {
			fmt.Fprintf(w, "    %q: %q\n", id, keys[id])
		}
		fmt.Fprintf(w, "  primary_key_id: %q\n", kid)
		if newLookup {
			fmt.Fprintf(w, "  lookup_key: %q\n", lookup)
		}
	default:
		return fmt.Errorf("unknown -format %q", format)
	}
	if !newLookup {
		fmt.Fprintln(os.Stderr, "keygen: keeping TRUSTID_LOOKUP_KEY (it cannot be rotated without rebuilding the ID-number index)")
	}
	return nil
}

// resealer is what a durable store offers for key rotation.
type resealer interface {
	Reseal(ctx context.Context) (int, error)
}

// runReseal rewrites every sealed column under the current primary key, so
// old keys can then be removed from the configuration. It runs online.
func runReseal(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reseal", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	actor := fs.String("actor", "", "operator name for the audit log (default $USER)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	rs, ok := a.store.(resealer)
	if !ok {
		return fmt.Errorf("storage %q cannot reseal", a.cfg.Storage.Driver)
	}
	n, err := rs.Reseal(ctx)
	ev := &store.AuditEvent{Actor: operatorActor(*actor), Action: "seal.reseal", Object: a.ring.Primary(), Outcome: "ok",
		Detail: map[string]string{"via": "cli", "resealed": strconv.Itoa(n)}}
	if err != nil {
		ev.Outcome = "fail"
	}
	if aerr := a.recorder().Record(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	a.log.Info("resealed values under the primary key", "count", n, "primary", a.ring.Primary())
	return nil
}
