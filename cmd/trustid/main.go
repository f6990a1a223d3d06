// Command trustid is the TrustID service and its admin tools. It is the only
// place that picks concrete backends (SQLite or PostgreSQL, memory or Redis,
// the OpenCV face engine, the ONNX speech recogniser) and wires them together.
// Evaluation, training, experiments, test clips and benchmark tokens are in
// the lab binary, cmd/trustid-lab, which this one never imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands lists every subcommand; each area keeps its functions in its own file.
func commands() map[string]command {
	return map[string]command{
		"serve":        {"run the HTTP service", runServe},
		"migrate":      {"apply database migrations and exit", runMigrate},
		"verify-audit": {"verify the hash chain of the audit log", runVerifyAudit},
		"compare":      {"compare the faces of two images: cosine score and decision", runCompare},
		"verify-cert":  {"verify a net certificate QR offline against the issuer key list (-keys, -payload or -qr)", runVerifyCert},
		"cert-demo":    {"issue a development net certificate and write keys, status list and a live QR to -dir", runCertDemo},
		"cert-present": {"holder helper: make a fresh live QR (PNG, SVG, text) from a certificate and device key", runCertPresent},
		"cert-revoke":  {"operator: revoke a net certificate (-serial or -citizen, -operator, -reason)", runCertRevoke},
		"cert-devices": {"operator: list a citizen's devices holding a net certificate (-citizen)", runCertDevices},
		"import":       {"import the population register: -csv FILE -photos DIR (JSON summary; -synth-from DIR writes a test CSV)", runImport},
		"client":       {"manage OAuth clients: create|update|rotate-secret|delete|list", runClient},
		"keygen":       {"print fresh encryption-at-rest keys (env or YAML); -kid/-keep add a new primary key for rotation", runKeygen},
		"reseal":       {"rewrite sealed columns under the primary encryption key (after a key rotation), online", runReseal},
		"auth-log":     {"operator: export a citizen's authentication log for a lawful request (-network-number|-id-number|-citizen, -operator, -reason); audited", runAuthLog},
		// more subcommands are added here, one line each
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmds := commands()
	if len(args) == 0 {
		usage(os.Stderr, cmds)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		// Asked for: the answer goes to standard output and is a success.
		usage(os.Stdout, cmds)
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "trustid: unknown command %q\n", args[0])
		usage(os.Stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // "-h" asked for the flags, which were printed
		}
		fmt.Fprintf(os.Stderr, "trustid %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: trustid <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, cmds[n].summary)
	}
}
