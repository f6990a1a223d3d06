package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/trustid/trustid/internal/seal"
)

func TestKeygen(t *testing.T) {
	t.Setenv("TRUSTID_LOOKUP_KEY", "")
	old := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name, kid, keep, format string
		wantErr                 bool
		wantKeys                int
	}{
		{"fresh env", "k1", "", "env", false, 1},
		{"rotation keeps old key", "k2", "k1:" + old, "env", false, 2},
		{"yaml", "k1", "", "yaml", false, 1},
		{"duplicate kid", "k1", "k1:" + old, "env", true, 0},
		{"bad keep", "k2", "k1", "env", true, 0},
		{"bad kid", "a:b", "", "env", true, 0},
		{"bad format", "k1", "", "toml", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			seq := make([]byte, 64)
			for i := range seq {
				seq[i] = byte(i)
			}
			rnd := bytes.NewReader(seq)
			err := keygen(&out, rnd, tc.kid, tc.keep, tc.format)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; output %q", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.format != "env" {
				if !strings.Contains(out.String(), "primary_key_id: \""+tc.kid+"\"") {
					t.Fatalf("yaml output %q", out.String())
				}
				return
			}
			cfg := seal.Config{Keys: map[string]string{}}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				k, v, _ := strings.Cut(line, "=")
				switch k {
				case "TRUSTID_ENCRYPTION_KEYS":
					for _, kv := range strings.Split(v, ",") {
						id, key, _ := strings.Cut(kv, ":")
						cfg.Keys[id] = key
					}
				case "TRUSTID_PRIMARY_KEY_ID":
					cfg.Primary = v
				case "TRUSTID_LOOKUP_KEY":
					cfg.LookupKey = v
				}
			}
			if len(cfg.Keys) != tc.wantKeys {
				t.Fatalf("%d keys in %q", len(cfg.Keys), out.String())
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("generated config invalid: %v", err)
			}
		})
	}
}
