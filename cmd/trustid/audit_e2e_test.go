package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/oidc"
)

// TestVerifyAuditCommand drives the real binary through audited changes on
// each durable backend: client create/update/rotate-secret/delete from the
// CLI and from the admin API, a register import, a certificate verified
// over HTTP by a verifier client and revoked from the CLI (issued in
// process: issuing over HTTP needs a face login, which TestOIDCEndToEnd
// drives). `trustid verify-audit` must find the log intact, then, after one
// stored row is altered in the database, exit non-zero naming its seq.
func TestVerifyAuditCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in -short mode")
	}
	needModels(t)
	backends := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{name: "embedded default", env: func(*testing.T) []string { return nil }},
		// pgtest.DSN skips without TRUSTID_TEST_POSTGRES, and fails in CI.
		{name: "postgres", env: func(t *testing.T) []string { return []string{"TRUSTID_POSTGRES_DSN=" + pgtest.DSN(t)} }},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { auditTrail(t, be.env(t)) })
	}
}

// intactLine is verify-audit's success line.
var intactLine = regexp.MustCompile(`audit log intact: (\d+) events verified`)

func auditTrail(t *testing.T, backendEnv []string) {
	ctx := t.Context()
	lfw := filepath.Join(os.Getenv("TRUSTID_TESTDATA"), "faces", "lfw")
	if _, err := os.Stat(lfw); err != nil {
		skipOrFail(t, "LFW test data missing (TRUSTID_TESTDATA=%q)", os.Getenv("TRUSTID_TESTDATA"))
	}
	dataDir := t.TempDir()
	env := append([]string{"TRUSTID_CONFIG=", "TRUSTID_DATA_DIR=" + dataDir}, backendEnv...)
	cmdEnv := append(os.Environ(), env...)
	for _, kv := range env { // the in-process steps open the same store
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	type clientOut struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	cli := func(args ...string) clientOut {
		t.Helper()
		var c clientOut
		out := runTrustid(t, cmdEnv, append([]string{"client"}, args...)...)
		if len(bytes.TrimSpace(out)) > 0 {
			if err := json.Unmarshal(out, &c); err != nil {
				t.Fatalf("client %s output %q: %v", args[0], out, err)
			}
		}
		return c
	}

	// CLI client administration, as operator alice.
	app := cli("create", "-actor", "alice", "-name", "CLI App", "-redirect-uri", "https://app.example/cb")
	cli("update", "-actor", "alice", "-id", app.ID, "-name", "CLI App 2")
	cli("rotate-secret", "-actor", "alice", "-id", app.ID, "-grace", "0s")
	cli("delete", "-actor", "alice", "-id", app.ID)
	hotel := cli("create", "-actor", "alice", "-name", "Hotel desk", "-role", "hotel",
		"-grant-types", "client_credentials", "-scopes", "openid")
	if hotel.ID == "" || hotel.Secret == "" {
		t.Fatalf("verifier client: %+v", hotel)
	}

	// Register import (LFW photos, synthesised test ID numbers).
	const people = 3
	reg := runTrustid(t, cmdEnv, "import", "-synth-from", lfw, "-n", strconv.Itoa(people), "-min-images", "1")
	csvPath := filepath.Join(dataDir, "register.csv")
	if err := os.WriteFile(csvPath, reg, 0o600); err != nil {
		t.Fatal(err)
	}
	runTrustid(t, cmdEnv, "import", "-csv", csvPath, "-photos", lfw, "-test-ids", "-dataset", "-actor", "alice")

	// A certificate for the first imported citizen, issued in process on
	// the same store and keys as the binary.
	a, err := openApp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var citizen *store.Citizen
	for k := 0; k < people && citizen == nil; k++ {
		idn, _ := idnumber.Synthesize(k)
		citizen, _ = a.store.Citizens().GetByIDNumber(ctx, idn)
	}
	if citizen == nil {
		a.Close()
		t.Fatal("the import registered no citizen")
	}
	iss, err := newCertIssuer(a, a.log)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := iss.Issue(ctx, certs.IssueRequest{CitizenID: citizen.ID, AuthTime: time.Now(), ACR: oidc.ACRFaceLiveness, DeviceKey: &dev.PublicKey})
	a.Close()
	if err != nil {
		t.Fatalf("issue: %v", err)
	}

	s := startServer(t, env...)
	do := func(method, path, body string, auth func(*http.Request)) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, s.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		return resp.StatusCode, m
	}
	admin := func(r *http.Request) { r.Header.Set("Authorization", "Bearer test-admin-token") }

	// Admin API client administration.
	code, m := do("POST", "/admin/clients", `{"name":"API App","redirect_uris":["https://api.example/cb"]}`, admin)
	apiID, _ := m["client_id"].(string)
	if code != http.StatusCreated || apiID == "" {
		t.Fatalf("admin create: %d %v", code, m)
	}
	for _, step := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/admin/clients/" + apiID, `{"name":"API App 2","redirect_uris":["https://api.example/cb"]}`, http.StatusOK},
		{"POST", "/admin/clients/" + apiID + "/rotate-secret?grace=0s", "", http.StatusOK},
		{"DELETE", "/admin/clients/" + apiID, "", http.StatusNoContent},
	} {
		if code, m := do(step.method, step.path, step.body, admin); code != step.want {
			t.Fatalf("admin %s %s: %d %v, want %d", step.method, step.path, code, m, step.want)
		}
	}

	// Online verification by the hotel (client credentials, checked by
	// internal/clientauth); a wrong secret is refused.
	raw, err := (&certs.Holder{Cert: issued.Cert, Key: dev, Now: time.Now, Rand: rand.Reader}).PresentBytes(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifyBody, _ := json.Marshal(certs.VerifyRequest{Payload: certs.EncodePayload(raw), Purpose: "check_in"})
	if code, m := do("POST", "/certs/verify", string(verifyBody), func(r *http.Request) { r.SetBasicAuth(hotel.ID, "wrong") }); code != http.StatusUnauthorized {
		t.Fatalf("verify with a wrong secret: %d %v", code, m)
	}
	if code, m := do("POST", "/certs/verify", string(verifyBody), func(r *http.Request) { r.SetBasicAuth(hotel.ID, hotel.Secret) }); code != http.StatusOK || m["result"] != "ok" {
		t.Fatalf("verify: %d %v", code, m)
	}

	runTrustid(t, cmdEnv, "cert-revoke", "-serial", issued.Serial, "-operator", "alice", "-reason", "audit test")

	// The log is intact and holds every change, with the right actors.
	out := runTrustid(t, cmdEnv, "verify-audit")
	mm := intactLine.FindSubmatch(out)
	if mm == nil {
		t.Fatalf("verify-audit: %s", out)
	}
	n, _ := strconv.Atoi(string(mm[1]))
	a, err = openApp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	evs, err := a.store.Audit().List(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != len(evs) {
		t.Fatalf("verify-audit checked %d events, the log holds %d", n, len(evs))
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Actor+" "+e.Action+" "+e.Outcome] = true
		seen[e.Action] = true
	}
	for _, want := range []string{
		"operator:alice client.create ok", "operator:alice client.update ok",
		"operator:alice client.rotate_secret ok", "operator:alice client.delete ok",
		"operator:admin-api client.create ok", "operator:admin-api client.update ok",
		"operator:admin-api client.rotate_secret ok", "operator:admin-api client.delete ok",
		"operator:alice register.import_batch ok",
		"cert.issue",
		"client:" + hotel.ID + " cert.verify ok",
		"operator:alice cert.revoke ok",
	} {
		if !seen[want] {
			t.Errorf("no audit event %q", want)
		}
	}

	// Alter one stored row: verify-audit names its seq and exits 1.
	raw2, ok := a.store.(interface {
		RawExec(ctx context.Context, query string, args ...any) error
	})
	if !ok {
		t.Fatalf("%T cannot run raw SQL", a.store)
	}
	seq := evs[len(evs)/2].Seq
	if err := raw2.RawExec(ctx, `UPDATE audit_events SET outcome = ? WHERE seq = ?`, "tampered", seq); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(trustidBinary(t), "verify-audit")
	cmd.Env = cmdEnv
	msg, err := cmd.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 1 {
		t.Fatalf("verify-audit on a tampered log: %v\n%s", err, msg)
	}
	if want := fmt.Sprintf("before seq %d: hash does not match the event", seq); !strings.Contains(string(msg), want) {
		t.Fatalf("verify-audit on a tampered log says %q, want %q", msg, want)
	}
	t.Logf("verify-audit: %d events intact; after altering seq %d: %s", n, seq, bytes.TrimSpace(msg))
}
