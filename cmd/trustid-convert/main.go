// Command trustid-convert converts a TFLite model to ONNX (opset 13) at
// set-up (deploy/setup.sh runs it on MediaPipe's face_landmark.tflite; the
// output is checked against deploy/models.sha256). It is a set-up tool: the
// service binary does not contain it.
//
//	trustid-convert -in face_landmark.tflite -out face_mesh.onnx
//	trustid-convert -in face_landmark.tflite -ops   # operator histogram
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/trustid/trustid/internal/tfliteconv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "trustid-convert:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("trustid-convert", flag.ContinueOnError)
	in := fs.String("in", "", "TFLite model to read")
	out := fs.String("out", "", "ONNX model to write")
	ops := fs.Bool("ops", false, "print the operator histogram and the graph's inputs and outputs instead of converting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || (*out == "" && !*ops) || fs.NArg() > 0 {
		return fmt.Errorf("usage: trustid-convert -in model.tflite (-out model.onnx | -ops)")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	if *ops {
		m, err := tfliteconv.Parse(data)
		if err != nil {
			return err
		}
		h := m.Histogram()
		names := make([]string, 0, len(h))
		for n := range h {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Printf("%-20s %d\n", n, h[n])
		}
		for _, i := range m.Inputs {
			fmt.Printf("input  %s %v\n", m.Tensors[i].Name, m.Tensors[i].Shape)
		}
		for _, i := range m.Outputs {
			fmt.Printf("output %s %v\n", m.Tensors[i].Name, m.Tensors[i].Shape)
		}
		return nil
	}
	onnx, err := tfliteconv.Convert(data)
	if err != nil {
		return err
	}
	// Write beside the target and rename, so a failed run leaves no
	// half-written model behind.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".convert-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(onnx); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), *out)
}
