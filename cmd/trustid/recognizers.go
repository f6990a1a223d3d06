package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustid/trustid/internal/config"
	"github.com/trustid/trustid/liveness/speech"
)

// digitRecognizers builds the configured spoken-digit recognisers. A
// recogniser whose files are absent or do not match their pinned sums is
// left out with a warning (its language then gets the action challenge);
// a sherpa-kws recogniser is always left out: its adapter is not in this
// build (README "Mandarin digits" says what an operator supplies).
func digitRecognizers(a *app) ([]speech.Recognizer, error) {
	var out []speech.Recognizer
	for _, rc := range a.cfg.Liveness.Recognizers {
		switch rc.Kind {
		case config.RecognizerEmbedding:
			rec, err := speech.NewEmbeddingRecognizer(speech.Config{ModelDir: rc.ModelDir})
			if err != nil {
				return nil, fmt.Errorf("speech recogniser %s: %w", rc.Lang, err)
			}
			out = append(out, rec)
		case config.RecognizerSherpaKWS:
			if err := checkPinned(rc.ModelDir, rc.SHA256); err != nil {
				a.log.Warn("liveness: recogniser disabled: model files absent or not the pinned ones", "lang", rc.Lang, "err", err)
				continue
			}
			a.log.Error("liveness: recogniser disabled: the sherpa-onnx keyword-spotter adapter is not in this build", "lang", rc.Lang)
		}
	}
	if len(out) > 1 {
		// The Verifier has one SpeechChecker; routing by the challenge's
		// language comes with the second recogniser that can be built.
		return nil, fmt.Errorf("liveness: %d digit recognisers enabled; this build checks one language", len(out))
	}
	return out, nil
}

// checkPinned verifies that every file of sums is in dir and has its
// SHA-256.
func checkPinned(dir string, sums map[string]string) error {
	if len(sums) == 0 {
		return fmt.Errorf("no pinned sums")
	}
	for name, want := range sums {
		if name != filepath.Base(name) {
			return fmt.Errorf("%s: pinned names are plain file names", name)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(want) {
			return fmt.Errorf("%s: sha256 %s, pinned %s", name, got, want)
		}
	}
	return nil
}
