package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trustid/trustid/internal/audit"
)

// runVerifyAudit walks the hash-chained audit log and reports the first
// broken link: an edited, inserted or removed event makes it fail.
func runVerifyAudit(ctx context.Context, args []string) error {
	return appCommand(ctx, "verify-audit", args, nil, func(a *app) error {
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
	})
}
