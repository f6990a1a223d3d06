package main

import (
	"context"
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
