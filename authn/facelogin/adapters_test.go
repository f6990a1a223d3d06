package facelogin_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/media"
)

// TestFacesNoFace runs the real engine ($TRUSTID_MODELS) on a blank frame:
// the adapter reports the engine's ErrNoFace as liveness.ErrNoFace.
func TestFacesNoFace(t *testing.T) {
	models := os.Getenv("TRUSTID_MODELS")
	if _, err := os.Stat(filepath.Join(models, "fr_detect.onnx")); models == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("models (%q) missing", models)
		}
		t.Skip("models missing")
	}
	eng, err := face.New(face.Config{ModelDir: models, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const w, h = 320, 240
	blank := media.Frame{Width: w, Height: h, BGR: bytes.Repeat([]byte{128}, w*h*3)}
	_, err = facelogin.Faces{Engine: eng}.Analyze(context.Background(), blank, liveness.FaceOptions{Embedding: true})
	if !errors.Is(err, liveness.ErrNoFace) {
		t.Fatalf("err = %v, want liveness.ErrNoFace", err)
	}
}
