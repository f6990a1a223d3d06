package actioneval

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

// ActionSignals (`trustid-lab action-signals -clip PATH`) prints the
// per-frame action signals of a clip as TSV: the measurements the action
// detectors' thresholds were chosen from.
func ActionSignals(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("action-signals", flag.ContinueOnError)
	models := fs.String("models", os.Getenv("TRUSTID_MODELS"), "model directory")
	clip := fs.String("clip", "", "video file")
	maxDur := fs.Duration("max-duration", 60*time.Second, "longest clip accepted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := openEngines(*models, *maxDur)
	if err != nil {
		return err
	}
	defer e.Close()
	sig, err := e.signals(ctx, *clip)
	if err != nil {
		return err
	}
	fmt.Println("t_s\tface\teye\tmouth\tyaw\tpitch")
	for _, s := range sig {
		fmt.Printf("%.3f\t%v\t%.4f\t%.4f\t%.4f\t%.4f\n", s.T.Seconds(), s.Face, s.Eye, s.Mouth, s.Yaw, s.Pitch)
	}
	return nil
}
