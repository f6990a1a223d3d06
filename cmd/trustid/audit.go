package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/trustid/trustid/internal/audit"
)

// runVerifyAudit walks the hash-chained audit log and reports the first
// broken link: an edited, inserted or removed event makes it fail.
func runVerifyAudit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-audit", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	n, err := audit.Verify(ctx, a.store.Audit())
	var broken *audit.BrokenError
	if errors.As(err, &broken) {
		return fmt.Errorf("audit log tampered: %d events verified before seq %d: %s", n, broken.Seq, broken.Reason)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "audit log intact: %d events verified\n", n)
	return nil
}
