package faceeval

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/trustid/trustid/internal/onnx"
)

// NCHWcModel writes a model as the face engine and the face mesh hand it
// to ONNX Runtime (onnx.NCHWc: padded depthwise stages, channel pads as
// convolutions, PRelus rewritten), so that bench/face/ortprof profiles what
// the service runs:
//
//	trustid-lab onnx-nchwc -in $TRUSTID_MODELS/fr_feature.onnx -out /tmp/fr_feature.onnx
func NCHWcModel(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("onnx-nchwc", flag.ContinueOnError)
	in := fs.String("in", "", "the pinned model (ONNX)")
	out := fs.String("out", "", "where to write the rewritten model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("-in and -out are required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	data, err := onnx.NCHWc(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	return os.WriteFile(*out, data, 0o644)
}
