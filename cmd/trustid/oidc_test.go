package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
)

// TestClientCommand runs `trustid client` against the zero-config store in a
// temporary data directory.
func TestClientCommand(t *testing.T) {
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	t.Setenv("TRUSTID_CONFIG", "")
	ctx := context.Background()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"create web app", []string{"create", "-id", "web", "-name", "Web", "-redirect-uri", "https://app.example/cb", "-scopes", "openid,profile,offline_access"}, ""},
		{"create machine", []string{"create", "-id", "desk", "-grant-types", "client_credentials", "-role", "hotel"}, ""},
		{"duplicate id", []string{"create", "-id", "web", "-redirect-uri", "https://app.example/cb"}, "already exists"},
		{"insecure redirect", []string{"create", "-redirect-uri", "http://app.example/cb"}, "must be https"},
		{"update", []string{"update", "-id", "web", "-claims", "id_number", "-first-party"}, ""},
		{"id token alg", []string{"update", "-id", "web", "-id-token-alg", "ES256"}, ""},
		{"bad id token alg", []string{"update", "-id", "web", "-id-token-alg", "HS256"}, "unsupported id_token_signed_response_alg"},
		{"update unknown", []string{"update", "-id", "nope", "-name", "x"}, "not found"},
		{"update needs id", []string{"update", "-name", "x"}, "-id is required"},
		{"rotate secret", []string{"rotate-secret", "-id", "web", "-grace", "1h"}, ""},
		{"rotate public", []string{"rotate-secret", "-id", "nope"}, "not found"},
		{"list", []string{"list"}, ""},
		{"delete", []string{"delete", "-id", "desk"}, ""},
		{"delete again", []string{"delete", "-id", "desk"}, "not found"},
		{"unknown subcommand", []string{"frobnicate"}, "unknown client command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runClient(ctx, tt.args)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("runClient(%v) = %v", tt.args, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("runClient(%v) = %v, want error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestClientCreateIDTokenAlg: `trustid client create` registers ES256
// unless -id-token-alg names RS256, and `update` without -id-token-alg
// leaves a client's alg as it was (issue 21).
func TestClientCreateIDTokenAlg(t *testing.T) {
	t.Setenv("TRUSTID_DATA_DIR", t.TempDir())
	t.Setenv("TRUSTID_CONFIG", "")
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout := os.Stdout
		os.Stdout = w
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(r); done <- b }()
		err = runClient(ctx, args)
		os.Stdout = stdout
		w.Close()
		out := <-done
		if err != nil {
			t.Fatalf("runClient(%v) = %v", args, err)
		}
		var c struct {
			Alg string `json:"id_token_signed_response_alg"`
		}
		if err := json.Unmarshal(out, &c); err != nil {
			t.Fatalf("runClient(%v) printed %q: %v", args, out, err)
		}
		return c.Alg
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"create without alg", []string{"create", "-id", "new", "-redirect-uri", "https://app.example/cb"}, "ES256"},
		{"create RS256", []string{"create", "-id", "rs", "-redirect-uri", "https://app.example/cb", "-id-token-alg", "RS256"}, "RS256"},
		{"update keeps RS256", []string{"update", "-id", "rs", "-name", "Renamed"}, "RS256"},
		{"update keeps ES256", []string{"update", "-id", "new", "-scopes", "openid,profile"}, "ES256"},
		{"update to RS256", []string{"update", "-id", "new", "-id-token-alg", "RS256"}, "RS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args...); got != tt.want {
				t.Fatalf("runClient(%v): id_token_signed_response_alg %q, want %s", tt.args, got, tt.want)
			}
		})
	}
}
