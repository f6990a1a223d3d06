// Command trustid-lab is TrustID's lab: everything that evaluates, trains,
// experiments, generates test clips or mints benchmark tokens, with the
// commands and flags the README's results were produced with. It builds on
// the lab/ packages; the service binary (cmd/trustid) never imports them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/trustid/trustid/lab/actioneval"
	"github.com/trustid/trustid/lab/benchmint"
	"github.com/trustid/trustid/lab/faceeval"
	"github.com/trustid/trustid/lab/livenesseval"
	"github.com/trustid/trustid/lab/speechlab"
)

// command is one subcommand. run gets the arguments after the subcommand name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands lists every subcommand.
func commands() map[string]command {
	return map[string]command{
		"train-digits":     {"train the spoken-digit head (liveness/speech)", speechlab.TrainDigits},
		"eval-speech":      {"evaluate the spoken-digit check on held-out FSDD speakers (JSON)", speechlab.EvalSpeech},
		"eval-face":        {"evaluate the face engine: LFW pairs (-pairs -root) or ORL rank-1 (-orl), JSON", faceeval.EvalFace},
		"calibrate-face":   {"face match thresholds per false-accept rate and population, checked on held-out identities (JSON)", faceeval.CalibrateFace},
		"onnx-nchwc":       {"write a model as the service hands it to ONNX Runtime (internal/onnx.NCHWc), for bench/face/ortprof", faceeval.NCHWcModel},
		"face-quality":     {"what the face capture gates refuse, the alignment residual, and faces cut by the frame's edge (JSON)", faceeval.FaceQuality},
		"eval-liveness":    {"evaluate the liveness checks on GRID, spoof and PAD data; latency; or a manifest's clips per attack type (-manifest), JSON", livenesseval.EvalLiveness},
		"make-attacks":     {"write the shared-data liveness attack set and its manifest (for eval-liveness -manifest)", livenesseval.MakeAttacks},
		"make-fake-clip":   {"build the GRID dub with synthetic digits, an attack of #17 (-check runs it through liveness)", livenesseval.MakeFakeClip},
		"action-signals":   {"print the per-frame action signals (eye, mouth, yaw, pitch) of a clip (TSV)", actioneval.ActionSignals},
		"make-action-set":  {"cut genuine and attack action clips from testdata/action into a folder with a manifest", actioneval.MakeActionSet},
		"eval-actions":     {"evaluate the action challenge on a manifest: BPCER, APCER per attack type, leave people out (JSON)", actioneval.EvalActions},
		"train-synthvoice": {"train the synthetic-voice check (liveness/synthvoice)", speechlab.TrainSynthVoice},
		"eval-synthvoice":  {"evaluate the synthetic-voice check leaving engines and real speakers out (JSON)", speechlab.EvalSynthVoice},
		"bench-tokens":     {"BENCHMARK ONLY: mint refresh tokens without a login for bench/oidc/run.sh (-i-know-this-is-a-benchmark)", benchmint.BenchTokens},
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(cmds)
		return 2
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "trustid-lab: unknown command %q\n", args[0])
		usage(cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintf(os.Stderr, "trustid-lab %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: trustid-lab <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-16s %s\n", n, cmds[n].summary)
	}
}
