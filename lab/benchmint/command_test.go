package benchmint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchTokensGuard checks the bench-only minting refuses to run without
// its explicit flag and writes nothing when it fails.
func TestBenchTokensGuard(t *testing.T) {
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	t.Setenv("TRUSTID_CONFIG", "")
	out := filepath.Join(t.TempDir(), "tokens.txt")
	tests := []struct {
		name, wantErr string
		args          []string
	}{
		{"no flag", "pass -i-know-this-is-a-benchmark", []string{"-client", "rp", "-secret", "s", "-redirect-uri", "https://rp.example/cb", "-out", out}},
		{"no out", "-out is required", []string{"-i-know-this-is-a-benchmark", "-client", "rp"}},
		{"unknown client", "benchmint", []string{"-i-know-this-is-a-benchmark", "-client", "nope", "-secret", "s", "-redirect-uri", "https://rp.example/cb", "-n", "1", "-out", out}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := BenchTokens(context.Background(), tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("token file written by a refused run")
			}
		})
	}
}
