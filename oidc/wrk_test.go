package oidc_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/trustid/trustid/oidc"
)

// TestWrkLoad measures the provider under wrk (HTTP load from the same
// machine, 2 threads, 16 connections) on PostgreSQL + Redis, or SQLite +
// memory when those are not configured. It is a measurement, not a unit
// test: it runs only with TRUSTID_OIDC_WRK=1 and asserts nothing about speed.
//
//	TRUSTID_OIDC_WRK=1 TRUSTID_TEST_POSTGRES=... TRUSTID_TEST_REDIS=... go test ./oidc -run TestWrkLoad -v
func TestWrkLoad(t *testing.T) {
	if os.Getenv("TRUSTID_OIDC_WRK") != "1" {
		t.Skip("set TRUSTID_OIDC_WRK=1 to run the wrk measurement")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	var e *env
	prod := func(c *oidc.Config) { c.ClientCacheTTL = 0 } // the production default (5s)
	backend := "postgres+redis"
	if os.Getenv("TRUSTID_TEST_POSTGRES") != "" && os.Getenv("TRUSTID_TEST_REDIS") != "" {
		e = newEnv(t, postgresStore(t), redisStore(t), prod)
	} else {
		backend = "sqlite+memory"
		e = newEnv(t, sqliteStore(t), memoryStore(t), prod)
	}
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("machine:" + e.mSecret))
	script := filepath.Join(dir, "cc.lua")
	lua := fmt.Sprintf(`wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=openid"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
done = function(summary, latency, requests)
  io.write(string.format("non2xx=%%d\n", summary.errors.status))
end
`, auth)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)|99%\s+([0-9.]+\w+)|non2xx=(\d+)`)
	run := func(name string, args ...string) {
		out, err := exec.Command(wrk, append([]string{"-t2", "-c16", "-d10s", "--latency"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", name, err, out)
		}
		var rps, p99, non2xx string
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			switch {
			case m[1] != "":
				rps = m[1]
			case m[2] != "":
				p99 = m[2]
			case m[3] != "":
				non2xx = m[3]
			}
		}
		t.Logf("%s on %s: %s requests/s, p99 %s, non-2xx %s", name, backend, rps, p99, non2xx)
	}
	run("token client_credentials", "-s", script, e.issuer+"/oauth2/token")
	run("jwks", e.issuer+"/oauth2/jwks")
	run("discovery", e.issuer+"/.well-known/openid-configuration")
}
