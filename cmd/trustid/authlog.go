package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/store"
)

// runAuthLog is the operator's export of a citizen's authentication log
// for a lawful request (MPS Order No. 173): every verification (when,
// which app or verifier, method, assurance, result) as JSON. The citizen is
// named by 网号, ID number or internal id. The export itself is recorded
// in the audit log first, as the named operator with the request's
// reference; when that record cannot be written nothing is exported.
func runAuthLog(ctx context.Context, args []string) error { return authLog(ctx, args, os.Stdout) }

func authLog(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("auth-log", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	nn := fs.String("network-number", "", "the citizen's 网号")
	idNumber := fs.String("id-number", "", "the citizen's ID number")
	citizen := fs.String("citizen", "", "the citizen's internal id")
	operator := fs.String("operator", "", "operator name recorded in the audit log (required)")
	reason := fs.String("reason", "", "the lawful request's reference, recorded in the audit log (required)")
	limit := fs.Int("limit", 100000, "audit events read at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	named := 0
	for _, v := range []string{*nn, *idNumber, *citizen} {
		if v != "" {
			named++
		}
	}
	if *operator == "" || *reason == "" || named != 1 || *limit <= 0 {
		fs.Usage()
		return errors.New("need -operator, -reason and one of -network-number, -id-number or -citizen")
	}
	if *nn != "" && !netnumber.Valid(*nn) {
		return fmt.Errorf("-network-number %q is not a network number", *nn)
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	var cit *store.Citizen
	switch {
	case *nn != "":
		cit, err = a.store.Citizens().GetByNetworkNumber(ctx, *nn)
	case *idNumber != "":
		cit, err = a.store.Citizens().GetByIDNumber(ctx, *idNumber)
	default:
		cit, err = a.store.Citizens().Get(ctx, *citizen)
	}
	if err != nil {
		return fmt.Errorf("citizen: %w", err)
	}
	rec, err := audit.New(audit.Config{Store: a.store.Audit(), Logger: a.log})
	if err != nil {
		return err
	}
	entries, err := audit.ExportAuthLog(ctx, rec, a.store.Audit(), cit, "operator:"+*operator, *reason, *limit)
	if err != nil {
		return err
	}
	return printJSONTo(w, map[string]any{"citizen": cit.ID, "network_number": cit.NetworkNumber, "entries": entries})
}
