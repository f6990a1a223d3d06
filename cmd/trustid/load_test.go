package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustid/trustid/bench/load"
)

// TestLoadReport is the load report of issue 22 (bench/load): the real
// binary, TRUSTID_LOAD_NODES nodes (default 2) behind the client-side
// balancer on a private PostgreSQL and redis-server, driven at fixed
// concurrencies (2, 4, 8) with a mix of token refreshes, online certificate
// verifications, 1:1 face verifies and face + spoken-digit logins, then
// each operation alone (its server CPU per request). It writes report.json
// and report.svg into TRUSTID_LOAD_REPORT and runs only when that is set:
//
//	make build && TRUSTID_LOAD_REPORT=bench/load TRUSTID_E2E_BIN=$PWD/bin/trustid \
//	  go test -count=1 -timeout 20m -run '^TestLoadReport$' -v ./cmd/trustid
//
// TRUSTID_LOAD_SECONDS sets each mixed level's length (default 10).
func TestLoadReport(t *testing.T) {
	out := os.Getenv("TRUSTID_LOAD_REPORT")
	if out == "" {
		t.Skip("TRUSTID_LOAD_REPORT not set (a benchmark, not a check)")
	}
	if !filepath.IsAbs(out) {
		// go test runs in the package directory; the path is the caller's.
		out = filepath.Join("..", "..", out)
	}
	nodes := envIntDefault("TRUSTID_LOAD_NODES", 2)
	secs := envIntDefault("TRUSTID_LOAD_SECONDS", 10)
	models := needModels(t)
	clips := sharedE2EClips(t)
	pg := startPrivatePG(t)
	rd := startPrivateRedis(t)
	// Keep-alive connections for every worker (Go's default keeps 2 idle
	// per host: the rest would reconnect, and the server's CPU per request
	// would include TCP and HTTP set-up).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	lb := func(f *faultRig) http.RoundTripper {
		u, _ := url.Parse(f.issuer)
		return &balancer{host: u.Host, nodes: f.nodes, next: tr}
	}
	if nodes == 1 {
		lb = func(*faultRig) http.RoundTripper { return tr }
	}
	f := newRig(t, models, clips, pg, rd, "TRUSTID_REDIS_URL="+rd.URL, nodes, lb)
	// More refresh chains, so that concurrent refreshes never wait for one.
	f.chains = append(f.chains, f.mintChains(t, 200)...)

	// 1:1 verify callers: the API allows 30 per caller per minute.
	var verifiers []faultClient
	for i := range 32 {
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		b := runTrustid(t, f.srv.env, "client", "create", "-name", fmt.Sprintf("Load verifier %d", i),
			"-grant-types", "client_credentials", "-scopes", "identity:face_verify")
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, faultClient{c.ID, c.Secret})
	}
	photo, err := os.ReadFile(clips.photo)
	if err != nil {
		t.Fatal(err)
	}
	var nextVerifier atomic.Uint64

	status := func(a answer) error {
		if a.status == 200 {
			return nil
		}
		return errors.New(a.String())
	}
	ops := []load.Op{
		{Name: "refresh", Weight: 60, Do: func(context.Context) error {
			ch := f.takeChain()
			if ch == nil {
				return errors.New("no refresh chain free")
			}
			defer f.putChain(ch)
			a := f.form("/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.rt}})
			var ta tokenAnswer
			if a.status == 200 && json.Unmarshal(a.body, &ta) == nil && ta.RefreshToken != "" {
				ch.rt = ta.RefreshToken
			}
			return status(a)
		}},
		{Name: "certificate verification", Weight: 30, Do: func(context.Context) error {
			p, err := f.holder.Present(nil)
			if err != nil {
				return err
			}
			return status(f.verify(p))
		}},
		{Name: "1:1 face verify", Weight: 2, Do: func(ctx context.Context) error {
			c := verifiers[nextVerifier.Add(1)%uint64(len(verifiers))]
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("id_number", f.id)
			pw, _ := mw.CreateFormFile("photo", "probe.jpg")
			pw.Write(photo)
			mw.Close()
			req, _ := http.NewRequestWithContext(ctx, "POST", f.base()+"/v1/face/verify", &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.SetBasicAuth(c.id, c.secret)
			a := f.do(req)
			if a.status == 200 && !bytes.Contains(a.body, []byte(`"match":true`)) {
				return fmt.Errorf("no match: %s", a)
			}
			return status(a)
		}},
		// Not in the mix (weight 0): one citizen may start 10 logins per
		// 10 minutes and one address 30 (liveness/challenge), so a test
		// client cannot sustain them; measured alone below, 8 in a row.
		{Name: "face + liveness login", Weight: 0, Do: func(ctx context.Context) error {
			_, class, detail := f.login(ctx, f.browser())
			if class != cOK {
				return fmt.Errorf("%s: %s", classNames[class], detail)
			}
			return nil
		}},
	}
	cpu := func() float64 {
		s := 0.0
		for _, n := range f.nodes {
			n.mu.Lock()
			pid := n.cmd.Process.Pid
			n.mu.Unlock()
			v, err := load.ProcCPU(pid)
			if err != nil {
				t.Fatal(err)
			}
			s += v
		}
		return s
	}
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	rep := &load.Report{
		Date:   time.Now().UTC().Format(time.RFC3339),
		Commit: strings.TrimSpace(string(commit)),
		Machine: fmt.Sprintf("%d CPUs (%s/%s), shared with other sessions' builds and tests; load average at the start %s",
			runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, loadAvgNow()),
		Setup: fmt.Sprintf("%d trustid node(s) (the real binary, default configuration, face workers = CPUs) behind a client-side round-robin balancer; "+
			"private PostgreSQL 15 (fsync off) and redis-server 7 on the same machine; load generator in the same machine; "+
			"closed loop, each worker runs the next request when the last answered", nodes),
	}
	rep.SetMix(ops)
	ctx := context.Background()
	var levels []load.Level
	for _, c := range []int{2, 4, 8} {
		levels = append(levels, load.Level{Concurrency: c, Duration: time.Duration(secs) * time.Second})
	}
	if rep.Levels, err = load.Run(ctx, ops, levels, cpu, 1); err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		alone := []load.Op{o}
		alone[0].Weight = 1
		l := load.Level{Concurrency: 4, Duration: 6 * time.Second}
		switch o.Name {
		case "face + liveness login":
			l = load.Level{Concurrency: 1, Duration: time.Minute, MaxRequests: 8}
		case "1:1 face verify":
			l = load.Level{Concurrency: 2, Duration: 6 * time.Second, MaxRequests: 200}
		}
		r, err := load.Run(ctx, alone, []load.Level{l}, cpu, 2)
		if err != nil {
			t.Fatal(err)
		}
		rep.Alone = append(rep.Alone, r...)
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "report.svg"), []byte(rep.SVG()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", js)
	for _, l := range append(rep.Levels, rep.Alone...) {
		for _, o := range l.Ops {
			if o.Failed > 0 {
				t.Logf("concurrency %d, %s: %d failed, first: %.300s", l.Concurrency, o.Name, o.Failed, o.FirstError)
			}
		}
	}
}

func envIntDefault(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadAvgNow() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
