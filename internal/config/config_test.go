package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trustid.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const prodSecrets = `
secrets:
  encryption_keys: {k1: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
  primary_key_id: k1
  lookup_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
`

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string // "" = no file
		env     map[string]string
		wantErr []string // substrings that must all appear
		check   func(t *testing.T, f *File)
	}{
		{
			name: "zero config is a dev setup on sqlite and memory",
			check: func(t *testing.T, f *File) {
				if !f.Dev || f.Storage.Driver != "sqlite" || f.Ephemeral.Driver != "memory" {
					t.Errorf("got dev=%v storage=%s ephemeral=%s", f.Dev, f.Storage.Driver, f.Ephemeral.Driver)
				}
				if f.Liveness.ChallengeTTL != 2*time.Minute || f.Issuer != "http://localhost:8080" || f.OIDC.AccessTokenStore != "ephemeral" ||
					f.Limits.GCPercent != 400 || f.Limits.MemoryLimitPercent != 50 || f.Face.Population != "east_asian" {
					t.Errorf("defaults not applied: %+v", f)
				}
			},
		},
		{
			name: "env DSN and URL select postgres and redis",
			env:  map[string]string{"TRUSTID_POSTGRES_DSN": "postgres://x", "TRUSTID_REDIS_URL": "redis://y"},
			check: func(t *testing.T, f *File) {
				if f.Storage.Driver != "postgres" || f.Ephemeral.Driver != "redis" {
					t.Errorf("got %s %s", f.Storage.Driver, f.Ephemeral.Driver)
				}
			},
		},
		{
			name: "env cluster addresses select a Redis Cluster",
			env:  map[string]string{"TRUSTID_REDIS_CLUSTER_ADDRS": "10.0.0.1:6379, 10.0.0.2:6379,", "TRUSTID_REDIS_PASSWORD": "pw"},
			check: func(t *testing.T, f *File) {
				if f.Ephemeral.Driver != "redis" || len(f.Ephemeral.RedisClusterAddrs) != 2 || f.Ephemeral.RedisClusterAddrs[1] != "10.0.0.2:6379" || f.Ephemeral.RedisPassword != "pw" {
					t.Errorf("got %+v", f.Ephemeral)
				}
			},
		},
		{
			name:    "redis url and cluster addresses are exclusive",
			file:    "ephemeral: {redis_url: 'redis://r', redis_cluster_addrs: ['r1:6379']}\n",
			wantErr: []string{"exclusive"},
		},
		{
			name:    "a cluster address without a port",
			file:    "ephemeral: {driver: redis, redis_cluster_addrs: ['r1', 'r2:6379']}\n",
			wantErr: []string{`"r1" is not host:port`},
		},
		{
			name:    "unknown key is rejected",
			file:    "listen: ':9000'\nlisen: x\n",
			wantErr: []string{"lisen"},
		},
		{
			name:    "wrong type is rejected",
			file:    "limits:\n  max_body_bytes: lots\n",
			wantErr: []string{"line 2", "int64"},
		},
		{
			name: "every problem is reported at once",
			file: "issuer: ftp://x\nstorage: {driver: mysql}\nface: {operating_point: '0.1', population: East-Asian}\nlog: {level: loud}\n",
			wantErr: []string{"issuer", "storage.driver", "operating_point", "face.population", "log.level",
				"encryption_keys", "lookup_key"},
		},
		{
			name:    "the profiler listens on loopback only",
			env:     map[string]string{"TRUSTID_DEBUG_LISTEN": "0.0.0.0:6060"},
			wantErr: []string{"debug_listen"},
		},
		{
			name: "the profiler on loopback",
			env:  map[string]string{"TRUSTID_DEBUG_LISTEN": "127.0.0.1:6060"},
			check: func(t *testing.T, f *File) {
				if f.DebugListen != "127.0.0.1:6060" {
					t.Errorf("debug_listen %q", f.DebugListen)
				}
			},
		},
		{
			name:    "garbage collector settings out of range",
			file:    "issuer: https://id.example\nlimits: {gc_percent: 5, memory_limit_percent: 99}\n" + prodSecrets,
			wantErr: []string{"limits.gc_percent 5", "limits.memory_limit_percent 99"},
		},
		{
			name: "garbage collector settings from the file",
			file: "issuer: https://id.example\nlimits: {gc_percent: 200, memory_limit_percent: 30}\n" + prodSecrets,
			check: func(t *testing.T, f *File) {
				if f.Limits.GCPercent != 200 || f.Limits.MemoryLimitPercent != 30 {
					t.Errorf("got %d %d", f.Limits.GCPercent, f.Limits.MemoryLimitPercent)
				}
			},
		},
		{
			name:    "certificate presentation and device limits out of range",
			file:    "issuer: https://id.example\ncerts: {presentation_refresh: 2s, status_interval: 2h, max_devices: 101}\n" + prodSecrets,
			wantErr: []string{"certs.presentation_refresh 2s", "certs.status_interval 2h0m0s", "certs.max_devices 101"},
		},
		{
			name:    "a window shorter than the refresh",
			file:    "issuer: https://id.example\ncerts: {presentation_refresh: 40s, presentation_ttl: 30s}\n" + prodSecrets,
			wantErr: []string{"certs.presentation_ttl 30s is shorter"},
		},
		{
			name: "the window follows the refresh",
			file: "issuer: https://id.example\ncerts: {presentation_refresh: 45s}\n" + prodSecrets,
			check: func(t *testing.T, f *File) {
				if f.Certs.PresentationTTL != 90*time.Second || f.Certs.StatusInterval != 30*time.Second || f.Certs.MaxDevices != 5 {
					t.Errorf("certs %+v", f.Certs)
				}
			},
		},
		{
			name:    "postgres without dsn",
			file:    "issuer: https://id.example\nstorage: {driver: postgres}\n" + prodSecrets,
			wantErr: []string{"postgres_dsn"},
		},
		{
			name:    "test mode refused with a config file",
			file:    "issuer: https://id.example\n" + prodSecrets,
			env:     map[string]string{"TRUSTID_TEST_MODE": "1", "TRUSTID_TEST_FIXED_DIGITS": "4291"},
			wantErr: []string{"TRUSTID_TEST_MODE"},
		},
		{
			name:    "fixed digits need test mode",
			env:     map[string]string{"TRUSTID_TEST_FIXED_DIGITS": "4291"},
			wantErr: []string{"requires TRUSTID_TEST_MODE"},
		},
		{
			name: "fixed digits in test mode without file",
			env:  map[string]string{"TRUSTID_TEST_MODE": "1", "TRUSTID_TEST_FIXED_DIGITS": "4291"},
			check: func(t *testing.T, f *File) {
				if !f.Test || f.Liveness.FixedDigits != "4291" {
					t.Errorf("got test=%v digits=%q", f.Test, f.Liveness.FixedDigits)
				}
			},
		},
		{
			name: "one real GRID digit in test mode",
			env:  map[string]string{"TRUSTID_TEST_MODE": "1", "TRUSTID_TEST_FIXED_DIGITS": "5"},
			check: func(t *testing.T, f *File) {
				if f.Liveness.FixedDigits != "5" {
					t.Errorf("digits %q", f.Liveness.FixedDigits)
				}
			},
		},
		{
			name: "default recogniser: English, actions on",
			check: func(t *testing.T, f *File) {
				if len(f.Liveness.Recognizers) != 1 || f.Liveness.Recognizers[0].Lang != "en" ||
					f.Liveness.Recognizers[0].Kind != RecognizerEmbedding || f.Liveness.Actions == nil || !*f.Liveness.Actions {
					t.Errorf("liveness %+v", f.Liveness)
				}
			},
		},
		{
			name:    "one fixed digit refused with a config file",
			file:    "issuer: https://id.example\n" + prodSecrets,
			env:     map[string]string{"TRUSTID_TEST_MODE": "1", "TRUSTID_TEST_FIXED_DIGITS": "5"},
			wantErr: []string{"TRUSTID_TEST_MODE"},
		},
		{
			name:    "fixed digits too long",
			env:     map[string]string{"TRUSTID_TEST_MODE": "1", "TRUSTID_TEST_FIXED_DIGITS": "42915"},
			wantErr: []string{"1 to 4 digits"},
		},
		{
			name: "Mandarin keyword spotter pinned",
			file: "issuer: https://id.example\nliveness:\n  actions: false\n  recognizers:\n  - {lang: en, kind: embedding}\n  - lang: zh\n    kind: sherpa-kws\n    model_dir: /srv/kws\n    sha256: {encoder.onnx: " + strings.Repeat("a", 64) +
				", decoder.onnx: " + strings.Repeat("b", 64) + ", joiner.onnx: " + strings.Repeat("c", 64) +
				", tokens.txt: " + strings.Repeat("d", 64) + ", keywords.txt: " + strings.Repeat("e", 64) + "}\n" + prodSecrets,
			check: func(t *testing.T, f *File) {
				r := f.Liveness.Recognizers
				if len(r) != 2 || r[1].ModelDir != "/srv/kws" || r[1].SHA256["keywords.txt"] != strings.Repeat("e", 64) || *f.Liveness.Actions {
					t.Errorf("liveness %+v", f.Liveness)
				}
			},
		},
		{
			name:    "keyword spotter without pinned sums",
			file:    "issuer: https://id.example\nliveness: {recognizers: [{lang: zh, kind: sherpa-kws, sha256: {encoder.onnx: abc}}]}\n" + prodSecrets,
			wantErr: []string{"sha256 of encoder.onnx", "sha256 of keywords.txt"},
		},
		{
			name:    "English recogniser for another language, two for one language, unknown kind",
			file:    "issuer: https://id.example\nliveness: {recognizers: [{lang: zh, kind: embedding}, {lang: zh, kind: whisper}]}\n" + prodSecrets,
			wantErr: []string{"English only", "a second recogniser", "kind \"whisper\""},
		},
		{
			name:    "fixed actions need test mode",
			env:     map[string]string{"TRUSTID_TEST_FIXED_ACTIONS": "blink+nod"},
			wantErr: []string{"TRUSTID_TEST_FIXED_ACTIONS requires"},
		},
		{
			name:    "unknown signing alg",
			file:    "issuer: https://id.example\noidc: {signing_alg: HS256}\n" + prodSecrets,
			wantErr: []string{"oidc.signing_alg"},
		},
		{
			name: "signing alg from the environment",
			env:  map[string]string{"TRUSTID_OIDC_SIGNING_ALG": "ES256"},
			check: func(t *testing.T, f *File) {
				if f.OIDC.SigningAlg != "ES256" {
					t.Errorf("signing alg %q", f.OIDC.SigningAlg)
				}
			},
		},
		{
			name:    "unknown access token store",
			file:    "issuer: https://id.example\noidc: {access_token_store: redis}\n" + prodSecrets,
			wantErr: []string{"oidc.access_token_store", "ephemeral or durable"},
		},
		{
			name: "access token store default and from the environment",
			env:  map[string]string{"TRUSTID_OIDC_ACCESS_TOKEN_STORE": "durable"},
			check: func(t *testing.T, f *File) {
				if f.OIDC.AccessTokenStore != "durable" {
					t.Errorf("access token store %q", f.OIDC.AccessTokenStore)
				}
			},
		},
		{
			name: "refresh grace period default",
			check: func(t *testing.T, f *File) {
				if f.OIDC.RefreshGracePeriod == nil || *f.OIDC.RefreshGracePeriod != 5*time.Second {
					t.Errorf("refresh grace period %v, want 5s", f.OIDC.RefreshGracePeriod)
				}
			},
		},
		{
			name: "refresh grace period 0 disables it",
			file: "issuer: https://id.example\noidc: {refresh_grace_period: 0s}\n" + prodSecrets,
			check: func(t *testing.T, f *File) {
				if f.OIDC.RefreshGracePeriod == nil || *f.OIDC.RefreshGracePeriod != 0 {
					t.Errorf("refresh grace period %v, want 0", f.OIDC.RefreshGracePeriod)
				}
			},
		},
		{
			name:    "refresh grace period out of range",
			file:    "issuer: https://id.example\noidc: {refresh_grace_period: 2m}\n" + prodSecrets,
			wantErr: []string{"oidc.refresh_grace_period", "0..1m"},
		},
		{
			name:    "negative refresh grace period",
			file:    "issuer: https://id.example\noidc: {refresh_grace_period: -1s}\n" + prodSecrets,
			wantErr: []string{"oidc.refresh_grace_period"},
		},
		{
			name:    "http issuer outside dev",
			file:    "issuer: http://id.example\n" + prodSecrets,
			wantErr: []string{"https"},
		},
		{
			name: "production file with env secrets",
			file: "issuer: https://id.example\nstorage: {driver: postgres}\nephemeral: {driver: redis}\n",
			env: map[string]string{
				"TRUSTID_POSTGRES_DSN": "postgres://db", "TRUSTID_REDIS_URL": "redis://r",
				"TRUSTID_ENCRYPTION_KEYS": "k1:AAAA,k2:BBBB", "TRUSTID_PRIMARY_KEY_ID": "k2",
				"TRUSTID_LOOKUP_KEY": "CCCC",
			},
			check: func(t *testing.T, f *File) {
				if f.Dev || len(f.Secrets.EncryptionKeys) != 2 || f.Secrets.PrimaryKeyID != "k2" {
					t.Errorf("got %+v", f.Secrets)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = write(t, tc.file)
			}
			f, err := Load(path, env(tc.env))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got none", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, f)
		})
	}
}

func TestValidateWrapsErrInvalid(t *testing.T) {
	f := &File{Dev: true}
	f.Defaults()
	f.Log.Level = "loud"
	if err := f.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("listen: ':1'\n")
	f.Add("storage: {driver: postgres, postgres_dsn: x}\n")
	f.Add("certs:\n  policy:\n    hotel:\n      checkin: [name]\n")
	f.Add("a: [")
	f.Fuzz(func(t *testing.T, s string) {
		var file File
		_ = Decode(strings.NewReader(s), &file)
	})
}

// The shipped example must stay valid.
func TestExampleConfigLoads(t *testing.T) {
	f, err := Load("../../deploy/trustid.example.yaml", env(map[string]string{
		"TRUSTID_POSTGRES_DSN": "postgres://db", "TRUSTID_REDIS_URL": "redis://r",
		"TRUSTID_ENCRYPTION_KEYS": "k1:AAAA", "TRUSTID_PRIMARY_KEY_ID": "k1", "TRUSTID_LOOKUP_KEY": "CCCC",
	}))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if f.Storage.Driver != "postgres" || f.Ephemeral.Driver != "redis" || f.Dev {
		t.Errorf("got %+v", f)
	}
}
