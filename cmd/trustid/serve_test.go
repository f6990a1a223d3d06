package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// trustidBinary returns the real binary: TRUSTID_E2E_BIN when set (make test
// builds it once), otherwise built here.
func trustidBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TRUSTID_E2E_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trustid-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "trustid")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func needModels(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TRUSTID_MODELS")
	if _, err := os.Stat(filepath.Join(dir, "fr_detect.onnx")); dir == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("TRUSTID_MODELS is required in CI")
		}
		t.Skip("TRUSTID_MODELS not set; run deploy/setup.sh")
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running trustid serve process.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
	done chan error
}

// startServer runs the real binary on the zero-config default in a temp
// data directory and waits for /healthz.
func startServer(t *testing.T, extraEnv ...string) *server {
	t.Helper()
	models := needModels(t)
	addr := freeAddr(t)
	cmd := exec.Command(trustidBinary(t), "serve")
	cmd.Env = append(os.Environ(), "TRUSTID_CONFIG=", "TRUSTID_LISTEN="+addr, "TRUSTID_DATA_DIR="+t.TempDir(),
		"TRUSTID_MODELS="+models, "TRUSTID_ISSUER=http://"+addr, "TRUSTID_ADMIN_TOKEN=test-admin-token")
	cmd.Env = append(cmd.Env, extraEnv...)
	s := &server{cmd: cmd, base: "http://" + addr, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited: %v\n%s", err, s.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("server did not become healthy\n%s", s.logs.String())
	return nil
}

type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func TestServeEndToEnd(t *testing.T) {
	s := startServer(t)

	t.Run("readiness checks the stores", func(t *testing.T) {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || body["store"] != "ok" || body["ephemeral"] != "ok" {
			t.Fatalf("readyz %d %v", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Error("no request id header")
		}
	})

	t.Run("metrics are exposed", func(t *testing.T) {
		resp, err := http.Get(s.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "trustid_http_requests_total") {
			t.Fatalf("metrics lack trustid_http_requests_total")
		}
	})

	bad := []struct {
		name, method, path, ctype string
		body                      io.Reader
		header                    map[string]string
		status                    int
		code                      string
	}{
		{name: "malformed JSON", method: "POST", path: "/certs/verify", ctype: "application/json",
			body: strings.NewReader(`{"payload":`), header: map[string]string{"Authorization": "Basic " + "eDp5"},
			status: 401, code: "verifier_unauthenticated"},
		{name: "identity import without admin token", method: "POST", path: "/v1/admin/register/import", ctype: "multipart/form-data; boundary=x",
			body: strings.NewReader("--x--"), status: 401},
		{name: "oversize body", method: "POST", path: "/v1/face/verify", ctype: "multipart/form-data; boundary=x",
			body: io.MultiReader(strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n\r\n"),
				io.LimitReader(zeroReader{}, 40<<20)), header: map[string]string{"Authorization": "Bearer test-admin-token"}, status: 413},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.base+tc.path, tc.body)
			req.Header.Set("Content-Type", tc.ctype)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// A server may close the connection while an oversize upload is still being sent.
				if tc.status == 413 {
					return
				}
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			var e apiError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			if tc.code != "" && e.Error.Code != tc.code {
				t.Fatalf("code %q, want %q", e.Error.Code, tc.code)
			}
		})
	}

	t.Run("graceful shutdown finishes in-flight requests", func(t *testing.T) {
		// An upload still in progress when SIGTERM arrives must get its answer.
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", s.base+"/v1/face/verify", pr)
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		got := make(chan int, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				got <- -1
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		pw.Write([]byte("--x\r\n"))
		time.Sleep(300 * time.Millisecond) // the request is now in flight
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		pw.Write([]byte("--x--\r\n"))
		pw.Close()
		select {
		case code := <-got:
			if code <= 0 {
				t.Fatalf("in-flight request failed during shutdown")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("in-flight request not answered")
		}
		select {
		case err := <-s.done:
			if err != nil {
				t.Fatalf("exit: %v", err)
			}
			s.done <- nil // for the cleanup
		case <-time.After(30 * time.Second):
			t.Fatal("server did not stop")
		}
		if !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
			t.Errorf("no clean stop in logs")
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

// A configuration file with an unknown key stops the binary with a clear error.
func TestServeRefusesBadConfig(t *testing.T) {
	bin := trustidBinary(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("listen: ':0'\nstorage:\n  drivr: sqlite\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "-config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("serve accepted a bad config: %s", out)
	}
	if !strings.Contains(string(out), "drivr") {
		t.Fatalf("error does not name the unknown key: %s", out)
	}
}

// verify-audit passes on an intact log and names the seq of a tampered one.
func TestServeProfiler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := serveProfiler(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := serveProfiler(addr); err == nil {
		t.Fatal("a second profiler on the same address started")
	}
}
