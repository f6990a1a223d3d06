package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPinned(t *testing.T) {
	dir := t.TempDir()
	body := []byte("s ān q ī y ī j iǔ :1.5 #0.2 @3719\n")
	if err := os.WriteFile(filepath.Join(dir, "keywords.txt"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	tests := []struct {
		name string
		sums map[string]string
		want string // error substring; "" passes
	}{
		{"matches", map[string]string{"keywords.txt": good}, ""},
		{"upper-case sum", map[string]string{"keywords.txt": strings.ToUpper(good)}, ""},
		{"other sum", map[string]string{"keywords.txt": strings.Repeat("0", 64)}, "pinned"},
		{"file absent", map[string]string{"keywords.txt": good, "encoder.onnx": good}, "encoder.onnx"},
		{"path in name", map[string]string{"../keywords.txt": good}, "plain file names"},
		{"nothing pinned", nil, "no pinned sums"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPinned(dir, tt.sums)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
