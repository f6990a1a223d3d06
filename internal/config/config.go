// Package config owns TrustID's configuration file format: a strict YAML
// document (unknown keys are an error), defaults in one place, environment
// overrides for secrets, and Validate, which reports every problem at once.
// It is kept apart from the live dependencies that packages take in their
// own Config structs; cmd/trustid translates one into the others.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the configuration file. Zero values are filled by Defaults.
type File struct {
	// Listen is the HTTP listen address, e.g. ":8080".
	Listen string `yaml:"listen"`
	// DebugListen, when set, serves Go's profiler (net/http/pprof) on a
	// second, loopback-only address, e.g. "127.0.0.1:6060"; off by default.
	DebugListen string `yaml:"debug_listen"`
	// Issuer is the public base URL (OIDC issuer), e.g. "https://id.example.gov".
	Issuer string `yaml:"issuer"`
	// DataDir holds the embedded database and generated development keys.
	DataDir string `yaml:"data_dir"`
	// ModelsDir holds the pinned face and speech models (deploy/setup.sh).
	ModelsDir string `yaml:"models_dir"`

	Storage   Storage   `yaml:"storage"`
	Ephemeral Ephemeral `yaml:"ephemeral"`
	Secrets   Secrets   `yaml:"secrets"`
	Limits    Limits    `yaml:"limits"`
	Face      Face      `yaml:"face"`
	Liveness  Liveness  `yaml:"liveness"`
	OIDC      OIDC      `yaml:"oidc"`
	Certs     Certs     `yaml:"certs"`
	Log       Log       `yaml:"log"`
	// Citizens configures what TrustID keeps about citizens under the 2025
	// national rules (the 网号).
	Citizens Citizens `yaml:"citizens"`

	// Dev is true when no file was given: the zero-config development setup.
	Dev bool `yaml:"-"`
	// Test enables test-only options (fixed challenge digits). It is set only by
	// TRUSTID_TEST_MODE=1 and refused whenever a configuration file is used, so
	// a production configuration can never enable it.
	Test bool `yaml:"-"`
}

// Storage selects the durable store.
type Storage struct {
	Driver string `yaml:"driver"` // "sqlite" (default) or "postgres"
	// SQLitePath defaults to DataDir/trustid.db.
	SQLitePath string `yaml:"sqlite_path"`
	// PostgresDSN may be given by TRUSTID_POSTGRES_DSN instead.
	PostgresDSN string `yaml:"postgres_dsn"`
}

// Ephemeral selects the TTL key-value store.
type Ephemeral struct {
	Driver string `yaml:"driver"` // "memory" (default) or "redis"
	// RedisURL may be given by TRUSTID_REDIS_URL instead.
	RedisURL string `yaml:"redis_url"`
	// RedisClusterAddrs are seed host:port addresses of a Redis Cluster
	// (TRUSTID_REDIS_CLUSTER_ADDRS, comma-separated); the client learns
	// the others from them. Use it instead of RedisURL, not with it.
	RedisClusterAddrs []string `yaml:"redis_cluster_addrs"`
	// RedisPassword authenticates to the cluster's nodes
	// (TRUSTID_REDIS_PASSWORD; a RedisURL carries its own).
	RedisPassword string `yaml:"redis_password"`
	// Prefix namespaces keys when a Redis is shared.
	Prefix string `yaml:"prefix"`
}

// Secrets holds key material. In production give it through the
// environment, not the file: TRUSTID_ENCRYPTION_KEYS ("kid:base64,kid:base64"),
// TRUSTID_PRIMARY_KEY_ID, TRUSTID_LOOKUP_KEY (base64), TRUSTID_ADMIN_TOKEN.
type Secrets struct {
	EncryptionKeys map[string]string `yaml:"encryption_keys"`
	PrimaryKeyID   string            `yaml:"primary_key_id"`
	LookupKey      string            `yaml:"lookup_key"`
	AdminToken     string            `yaml:"admin_token"`
}

// Limits bounds every input.
type Limits struct {
	MaxBodyBytes  int64         `yaml:"max_body_bytes"`
	MaxImageBytes int64         `yaml:"max_image_bytes"`
	MaxVideoBytes int64         `yaml:"max_video_bytes"`
	ReadTimeout   time.Duration `yaml:"read_timeout"`
	WriteTimeout  time.Duration `yaml:"write_timeout"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// GCPercent is the Go garbage collector's target heap growth (GOGC) of
	// the server; the GOGC environment variable, when set, wins. The
	// default 400 collects a fifth as often as Go's 100: the server's live
	// heap is small and a token request allocates ~50 kB, so at 100 the
	// collector costs a fifth of the CPU of a refresh (bench/oidc).
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitPercent sets Go's soft memory limit (GOMEMLIMIT) to this
	// share of the machine's memory (or of the cgroup's limit, if lower),
	// so a large live heap (the face index) cannot grow GCPercent times
	// over; the GOMEMLIMIT environment variable, when set, wins.
	MemoryLimitPercent int `yaml:"memory_limit_percent"`
}

// Face configures the face engine.
type Face struct {
	// OperatingPoint names the false-accept rate used for match decisions.
	OperatingPoint string `yaml:"operating_point"` // "1e-3", "1e-4" or "1e-5"
	// Population names whose calibrated thresholds the match decisions use
	// (authn/face/calibration.json lists them): default "east_asian", the
	// citizens of the seeds; "strictest" takes per false-accept rate the
	// highest threshold of any calibrated population, so the label holds
	// on all of them.
	Population string `yaml:"population"`
	// Workers is the number of pooled networks (default: number of CPUs).
	Workers int `yaml:"workers"`
	// TemplateRetention is how long a face template enrolled after a
	// verification (live) is kept; older ones are deleted (the face
	// measures: shortest retention). Default 8760h (a year); negative keeps them.
	// The register photo's template follows the register.
	TemplateRetention time.Duration `yaml:"template_retention"`
}

// Liveness configures the liveness challenges (spoken digits, facial actions).
type Liveness struct {
	ChallengeTTL time.Duration `yaml:"challenge_ttl"`
	// FixedDigits makes every challenge these digits (1-4: a real GRID
	// clip says one): test mode only, set by TRUSTID_TEST_FIXED_DIGITS.
	FixedDigits string        `yaml:"-"`
	MaxFailures int           `yaml:"max_failures"`
	FailWindow  time.Duration `yaml:"fail_window"`
	// Actions offers the action challenge where no recogniser serves the
	// page's language (it needs face_mesh.onnx); default true.
	Actions *bool `yaml:"actions"`
	// FixedActions makes every action challenge these actions
	// ("+"-joined): test mode only, set by TRUSTID_TEST_FIXED_ACTIONS.
	FixedActions string `yaml:"-"`
	// Recognizers are the spoken-digit recognisers, one per language;
	// default one English recogniser (kind "embedding"). A page whose
	// language none serves gets the action challenge.
	Recognizers []Recognizer `yaml:"recognizers"`
}

// Recognizer kinds.
const (
	// RecognizerEmbedding is liveness/speech's English digit recogniser
	// (speech embedding + the project's digit head) from models_dir.
	RecognizerEmbedding = "embedding"
	// RecognizerSherpaKWS is a sherpa-onnx keyword spotter (Mandarin:
	// kws-zipformer-wenetspeech-3.3M). Its adapter is not in this build
	// (no model to build it against); see README "Mandarin digits".
	RecognizerSherpaKWS = "sherpa-kws"
)

// Recognizer configures one spoken-digit recogniser.
type Recognizer struct {
	// Lang is the BCP 47 primary tag of the language it hears ("en", "zh").
	Lang string `yaml:"lang"`
	Kind string `yaml:"kind"`
	// ModelDir holds its model files; default models_dir.
	ModelDir string `yaml:"model_dir"`
	// SHA256 pins every model file (file name -> hex SHA-256): the
	// recogniser is enabled only when each file is present and matches.
	// Required for sherpa-kws; the embedding recogniser pins its own.
	SHA256 map[string]string `yaml:"sha256"`
}

// SherpaKWSFiles are the files a sherpa-kws model directory must pin.
var SherpaKWSFiles = []string{"encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt", "keywords.txt"}

// OIDC configures the provider.
type OIDC struct {
	AccessTokenTTL  time.Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl"`
	IDTokenTTL      time.Duration `yaml:"id_token_ttl"`
	AuthCodeTTL     time.Duration `yaml:"auth_code_ttl"`
	KeyRotation     time.Duration `yaml:"key_rotation"`
	// SigningAlg signs the ID and logout tokens of clients with no
	// id_token_signed_response_alg stored (registered before issue 21):
	// RS256 (the OIDC default every client accepts) or ES256 (about 30
	// times cheaper to sign; the JWKS always publishes both kinds of key).
	// New clients get ES256 stored unless they ask for RS256
	// (oidc.NewClientIDTokenAlg).
	SigningAlg string `yaml:"signing_alg"`
	// AccessTokenStore keeps access tokens in the ephemeral store
	// ("ephemeral": no database write per token; if Redis is lost, issued
	// access tokens are refused and clients refresh) or in the database
	// with the refresh tokens ("durable").
	AccessTokenStore string `yaml:"access_token_store"`
	// RefreshGracePeriod: a client that retries the refresh token it used
	// last, less than this after using it (its answer was lost), gets new
	// tokens instead of having the token family revoked as a reuse
	// (oidc/README.md, Storage). Default 5s; 0 disables it; at most 1m.
	RefreshGracePeriod *time.Duration `yaml:"refresh_grace_period"`
	// DynamicRegistration enables RFC 7591 registration for public clients.
	DynamicRegistration bool `yaml:"dynamic_registration"`
}

// Certs configures net certificates.
type Certs struct {
	Validity time.Duration `yaml:"validity"`
	// PresentationRefresh is how often the holder's page signs a new QR
	// presentation (30 s by default).
	PresentationRefresh time.Duration `yaml:"presentation_refresh"`
	// PresentationTTL is how long verifiers accept a presentation; it
	// follows the refresh (twice it) unless set.
	PresentationTTL time.Duration `yaml:"presentation_ttl"`
	// StatusInterval is how often the signed status list is re-signed
	// (offline verifiers see a revocation at most this much later, plus
	// their own fetch interval); 30 s by default.
	StatusInterval time.Duration `yaml:"status_interval"`
	// MaxDevices is how many devices of one citizen may hold an active
	// certificate at once (5 by default).
	MaxDevices int `yaml:"max_devices"`
	// MaxAuthAge is how recent the proof of identity must be to issue.
	MaxAuthAge time.Duration `yaml:"max_auth_age"`
	// Policy maps a verifier role to purposes to the attributes disclosed.
	Policy map[string]map[string][]string `yaml:"policy"`
}

// Citizens configures the citizen-facing rules.
type Citizens struct {
	// NetworkNumberKeyID names the key that makes new 网号 (1-4 upper-case
	// letters or digits, default "1"). The key is derived from the master
	// secret for this id. Rotating: set a new id; numbers already issued
	// are stored and never change, new citizens get numbers of the new key.
	NetworkNumberKeyID string `yaml:"network_number_key_id"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("config: invalid")

// DefaultRefreshGracePeriod is oidc.refresh_grace_period when unset.
const DefaultRefreshGracePeriod = 5 * time.Second

// Load reads path strictly, applies environment overrides and defaults and
// validates. An empty path gives the zero-config development setup.
func Load(path string, getenv func(string) string) (*File, error) {
	f := &File{}
	if path == "" {
		f.Dev = true
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := Decode(bytes.NewReader(b), f); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	f.applyEnv(getenv)
	f.Defaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// Decode parses a YAML document strictly into f.
func Decode(r io.Reader, f *File) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: all defaults
		}
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

func (f *File) applyEnv(getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&f.Storage.PostgresDSN, "TRUSTID_POSTGRES_DSN")
	set(&f.Ephemeral.RedisURL, "TRUSTID_REDIS_URL")
	set(&f.Ephemeral.RedisPassword, "TRUSTID_REDIS_PASSWORD")
	if v := getenv("TRUSTID_REDIS_CLUSTER_ADDRS"); v != "" {
		f.Ephemeral.RedisClusterAddrs = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				f.Ephemeral.RedisClusterAddrs = append(f.Ephemeral.RedisClusterAddrs, a)
			}
		}
	}
	set(&f.Secrets.PrimaryKeyID, "TRUSTID_PRIMARY_KEY_ID")
	set(&f.Secrets.LookupKey, "TRUSTID_LOOKUP_KEY")
	set(&f.Secrets.AdminToken, "TRUSTID_ADMIN_TOKEN")
	set(&f.ModelsDir, "TRUSTID_MODELS")
	set(&f.Listen, "TRUSTID_LISTEN")
	set(&f.DebugListen, "TRUSTID_DEBUG_LISTEN")
	set(&f.DataDir, "TRUSTID_DATA_DIR")
	set(&f.Issuer, "TRUSTID_ISSUER")
	set(&f.OIDC.SigningAlg, "TRUSTID_OIDC_SIGNING_ALG")
	set(&f.OIDC.AccessTokenStore, "TRUSTID_OIDC_ACCESS_TOKEN_STORE")
	set(&f.Liveness.FixedDigits, "TRUSTID_TEST_FIXED_DIGITS")
	set(&f.Liveness.FixedActions, "TRUSTID_TEST_FIXED_ACTIONS")
	f.Test = getenv("TRUSTID_TEST_MODE") == "1"
	// A DSN or URL in the environment selects its backend unless the file chose.
	if f.Storage.Driver == "" && f.Storage.PostgresDSN != "" {
		f.Storage.Driver = "postgres"
	}
	if f.Ephemeral.Driver == "" && (f.Ephemeral.RedisURL != "" || len(f.Ephemeral.RedisClusterAddrs) > 0) {
		f.Ephemeral.Driver = "redis"
	}
	if v := getenv("TRUSTID_ENCRYPTION_KEYS"); v != "" {
		f.Secrets.EncryptionKeys = map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			kid, key, _ := strings.Cut(strings.TrimSpace(kv), ":")
			f.Secrets.EncryptionKeys[kid] = key
		}
	}
}

// Defaults fills every unset field.
func (f *File) Defaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	defD := func(dst *time.Duration, v time.Duration) {
		if *dst == 0 {
			*dst = v
		}
	}
	defI := func(dst *int64, v int64) {
		if *dst == 0 {
			*dst = v
		}
	}
	def(&f.Listen, "127.0.0.1:8080")
	def(&f.DataDir, "data")
	def(&f.ModelsDir, "models")
	if f.Issuer == "" {
		// A host name, not an IP: WebAuthn relying party ids must be domains.
		host := f.Listen
		if h, port, err := net.SplitHostPort(host); err == nil && (h == "" || isLoopback(h)) {
			host = "localhost:" + port
		}
		f.Issuer = "http://" + host
	}
	def(&f.Citizens.NetworkNumberKeyID, "1")
	defD(&f.Face.TemplateRetention, 365*24*time.Hour)
	def(&f.Storage.Driver, "sqlite")
	def(&f.Storage.SQLitePath, filepath.Join(f.DataDir, "trustid.db"))
	def(&f.Ephemeral.Driver, "memory")
	def(&f.Ephemeral.Prefix, "trustid:")
	defI(&f.Limits.MaxBodyBytes, 1<<20)
	defI(&f.Limits.MaxImageBytes, 4<<20)
	defI(&f.Limits.MaxVideoBytes, 16<<20)
	defD(&f.Limits.ReadTimeout, 30*time.Second)
	defD(&f.Limits.WriteTimeout, 60*time.Second)
	defD(&f.Limits.ShutdownGrace, 20*time.Second)
	if f.Limits.GCPercent == 0 {
		f.Limits.GCPercent = 400
	}
	if f.Limits.MemoryLimitPercent == 0 {
		f.Limits.MemoryLimitPercent = 50
	}
	def(&f.Face.OperatingPoint, "1e-3") // identity.DefaultOperatingPoint; why 1e-3: README, Face results by population
	def(&f.Face.Population, "east_asian")
	defD(&f.Liveness.ChallengeTTL, 2*time.Minute)
	if f.Liveness.MaxFailures == 0 {
		f.Liveness.MaxFailures = 5
	}
	defD(&f.Liveness.FailWindow, 3*time.Minute)
	if f.Liveness.Actions == nil {
		on := true
		f.Liveness.Actions = &on
	}
	if f.Liveness.Recognizers == nil {
		f.Liveness.Recognizers = []Recognizer{{Lang: "en", Kind: RecognizerEmbedding}}
	}
	for i := range f.Liveness.Recognizers {
		def(&f.Liveness.Recognizers[i].ModelDir, f.ModelsDir)
	}
	defD(&f.OIDC.AccessTokenTTL, 10*time.Minute)
	defD(&f.OIDC.RefreshTokenTTL, 30*24*time.Hour)
	defD(&f.OIDC.IDTokenTTL, 10*time.Minute)
	defD(&f.OIDC.AuthCodeTTL, time.Minute)
	defD(&f.OIDC.KeyRotation, 30*24*time.Hour)
	def(&f.OIDC.SigningAlg, "RS256")
	def(&f.OIDC.AccessTokenStore, "ephemeral")
	if f.OIDC.RefreshGracePeriod == nil {
		g := DefaultRefreshGracePeriod
		f.OIDC.RefreshGracePeriod = &g
	}
	defD(&f.Certs.Validity, 365*24*time.Hour)
	defD(&f.Certs.PresentationRefresh, 30*time.Second)
	defD(&f.Certs.PresentationTTL, 2*f.Certs.PresentationRefresh)
	defD(&f.Certs.StatusInterval, 30*time.Second)
	if f.Certs.MaxDevices == 0 {
		f.Certs.MaxDevices = 5
	}
	defD(&f.Certs.MaxAuthAge, 10*time.Minute)
	def(&f.Log.Level, "info")
	def(&f.Log.Format, "json")
}

// Validate reports every problem at once, joined, each wrapping ErrInvalid.
func (f *File) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...))
	}
	if u, err := url.Parse(f.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer %q must be an absolute http(s) URL without query or fragment", f.Issuer)
	} else if u.Scheme == "http" && !f.Dev && !isLoopback(u.Hostname()) {
		bad("issuer %q must use https outside development", f.Issuer)
	}
	if k := f.Citizens.NetworkNumberKeyID; len(k) < 1 || len(k) > 4 || strings.Trim(k, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		bad("citizens.network_number_key_id %q must be 1-4 upper-case letters or digits", k)
	}
	if f.DebugListen != "" {
		if h, _, err := net.SplitHostPort(f.DebugListen); err != nil || !isLoopback(h) {
			bad("debug_listen %q must be a loopback host:port (the profiler is not for the network)", f.DebugListen)
		}
	}
	switch f.Storage.Driver {
	case "sqlite":
	case "postgres":
		if f.Storage.PostgresDSN == "" {
			bad("storage.postgres_dsn (or TRUSTID_POSTGRES_DSN) is required for driver postgres")
		}
	default:
		bad("storage.driver %q must be sqlite or postgres", f.Storage.Driver)
	}
	switch f.Ephemeral.Driver {
	case "memory":
	case "redis":
		switch {
		case f.Ephemeral.RedisURL == "" && len(f.Ephemeral.RedisClusterAddrs) == 0:
			bad("ephemeral.redis_url (or TRUSTID_REDIS_URL) or ephemeral.redis_cluster_addrs (or TRUSTID_REDIS_CLUSTER_ADDRS) is required for driver redis")
		case f.Ephemeral.RedisURL != "" && len(f.Ephemeral.RedisClusterAddrs) > 0:
			bad("ephemeral.redis_url and ephemeral.redis_cluster_addrs are exclusive: one Redis or one Redis Cluster")
		}
		for _, a := range f.Ephemeral.RedisClusterAddrs {
			if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
				bad("ephemeral.redis_cluster_addrs: %q is not host:port", a)
			}
		}
	default:
		bad("ephemeral.driver %q must be memory or redis", f.Ephemeral.Driver)
	}
	if !f.Dev {
		if len(f.Secrets.EncryptionKeys) == 0 {
			bad("secrets.encryption_keys (or TRUSTID_ENCRYPTION_KEYS) is required outside development")
		}
		if f.Secrets.LookupKey == "" {
			bad("secrets.lookup_key (or TRUSTID_LOOKUP_KEY) is required outside development")
		}
	}
	if len(f.Secrets.EncryptionKeys) > 0 {
		if _, ok := f.Secrets.EncryptionKeys[f.Secrets.PrimaryKeyID]; !ok {
			bad("secrets.primary_key_id %q is not one of secrets.encryption_keys", f.Secrets.PrimaryKeyID)
		}
	}
	switch f.Face.OperatingPoint {
	case "1e-3", "1e-4", "1e-5":
	default:
		bad("face.operating_point %q must be 1e-3, 1e-4 or 1e-5", f.Face.OperatingPoint)
	}
	if !validPopulation(f.Face.Population) {
		bad("face.population %q must be a calibrated population's name (lower-case letters, digits, _) or strictest", f.Face.Population)
	}
	if f.Face.Workers < 0 || f.Face.Workers > 256 {
		bad("face.workers %d out of range 0..256", f.Face.Workers)
	}
	pos := func(name string, v int64) {
		if v <= 0 {
			bad("%s must be positive", name)
		}
	}
	pos("limits.max_body_bytes", f.Limits.MaxBodyBytes)
	pos("limits.max_image_bytes", f.Limits.MaxImageBytes)
	pos("limits.max_video_bytes", f.Limits.MaxVideoBytes)
	if f.Limits.GCPercent < 25 || f.Limits.GCPercent > 10000 {
		bad("limits.gc_percent %d out of range 25..10000", f.Limits.GCPercent)
	}
	if f.Limits.MemoryLimitPercent < 10 || f.Limits.MemoryLimitPercent > 95 {
		bad("limits.memory_limit_percent %d out of range 10..95", f.Limits.MemoryLimitPercent)
	}
	for name, d := range map[string]time.Duration{
		"limits.read_timeout": f.Limits.ReadTimeout, "limits.write_timeout": f.Limits.WriteTimeout,
		"liveness.challenge_ttl": f.Liveness.ChallengeTTL, "oidc.access_token_ttl": f.OIDC.AccessTokenTTL,
		"oidc.refresh_token_ttl": f.OIDC.RefreshTokenTTL, "oidc.id_token_ttl": f.OIDC.IDTokenTTL,
		"oidc.auth_code_ttl": f.OIDC.AuthCodeTTL, "certs.presentation_ttl": f.Certs.PresentationTTL,
	} {
		pos(name, int64(d))
	}
	if r := f.Certs.PresentationRefresh; r < 5*time.Second || r > 5*time.Minute {
		bad("certs.presentation_refresh %s out of range 5s..5m", r)
	}
	if f.Certs.PresentationTTL < f.Certs.PresentationRefresh {
		bad("certs.presentation_ttl %s is shorter than certs.presentation_refresh %s: a QR on screen would not verify", f.Certs.PresentationTTL, f.Certs.PresentationRefresh)
	}
	if i := f.Certs.StatusInterval; i < time.Second || i > time.Hour {
		bad("certs.status_interval %s out of range 1s..1h", i)
	}
	if f.Certs.MaxDevices < 1 || f.Certs.MaxDevices > 100 {
		bad("certs.max_devices %d out of range 1..100", f.Certs.MaxDevices)
	}
	if f.OIDC.SigningAlg != "RS256" && f.OIDC.SigningAlg != "ES256" {
		bad("oidc.signing_alg %q: want RS256 or ES256", f.OIDC.SigningAlg)
	}
	if g := f.OIDC.RefreshGracePeriod; g != nil && (*g < 0 || *g > time.Minute) {
		bad("oidc.refresh_grace_period %s out of range 0..1m", *g)
	}
	if f.OIDC.AccessTokenStore != "ephemeral" && f.OIDC.AccessTokenStore != "durable" {
		bad("oidc.access_token_store %q: want ephemeral or durable", f.OIDC.AccessTokenStore)
	}
	if f.Liveness.ChallengeTTL > 10*time.Minute {
		bad("liveness.challenge_ttl %s exceeds 10m", f.Liveness.ChallengeTTL)
	}
	if f.Test && !f.Dev {
		bad("TRUSTID_TEST_MODE is refused with a configuration file: it exists only for the test harness")
	}
	if f.Liveness.FixedActions != "" && !f.Test {
		bad("TRUSTID_TEST_FIXED_ACTIONS requires TRUSTID_TEST_MODE=1")
	}
	langs := map[string]bool{}
	for i, r := range f.Liveness.Recognizers {
		if langs[r.Lang] {
			bad("liveness.recognizers[%d]: a second recogniser for %q", i, r.Lang)
		}
		langs[r.Lang] = true
		switch {
		case r.Kind == RecognizerEmbedding && r.Lang != "en":
			bad("liveness.recognizers[%d]: kind embedding hears English only (lang en), not %q", i, r.Lang)
		case r.Kind == RecognizerSherpaKWS:
			if r.Lang == "" {
				bad("liveness.recognizers[%d]: sherpa-kws needs lang", i)
			}
			for _, name := range SherpaKWSFiles {
				if sum := r.SHA256[name]; len(sum) != 64 || strings.Trim(strings.ToLower(sum), "0123456789abcdef") != "" {
					bad("liveness.recognizers[%d]: sha256 of %s must be 64 hex digits", i, name)
				}
			}
		case r.Kind != RecognizerEmbedding:
			bad("liveness.recognizers[%d]: kind %q: want embedding or sherpa-kws", i, r.Kind)
		}
	}
	if f.Liveness.FixedDigits != "" {
		if !f.Test {
			bad("TRUSTID_TEST_FIXED_DIGITS requires TRUSTID_TEST_MODE=1")
		}
		// 1-4 digits: the honest genuine test clips are real GRID speakers
		// saying the one digit of their sentence (#17).
		if n := len(f.Liveness.FixedDigits); n < 1 || n > 4 || strings.Trim(f.Liveness.FixedDigits, "0123456789") != "" {
			bad("TRUSTID_TEST_FIXED_DIGITS must be 1 to 4 digits")
		}
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q must be debug, info, warn or error", f.Log.Level)
	}
	switch f.Log.Format {
	case "json", "text":
	default:
		bad("log.format %q must be json or text", f.Log.Format)
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// validPopulation: a population name as calibrate-face writes it.
func validPopulation(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
