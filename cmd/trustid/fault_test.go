package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/certs"
)

// TestFault is the fault suite of issue 16: the real binary on a private
// PostgreSQL and a private redis-server (fault_stores_test.go), under a
// bounded mixed load (refresh-token grants, client credentials, certificate
// presentations and their replays, revocations, a face login), through a
// PostgreSQL restart, a 10 s PostgreSQL stop, a Redis stop and restart, Redis
// refusing writes, and kill -9 of the server. After each scenario it checks
// every token and presentation the load saw and prints a table; lost,
// fail-open and credential errors must be 0, and so must answers nobody
// expected. `make fault` runs it alone.
func TestFault(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite in -short mode")
	}
	models := needModels(t)
	start := time.Now()
	clips := sharedE2EClips(t)
	t.Logf("test clips ready: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	pg := startPrivatePG(t)
	rd := startPrivateRedis(t)
	t.Logf("private PostgreSQL and redis-server started: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	f := newFaultRig(t, models, clips, pg, rd)
	t.Logf("server, clients, login, certificate and %d refresh chains ready: %s", len(f.chains), time.Since(start).Round(time.Millisecond))

	scenarios := []faultScenario{
		{name: "PostgreSQL restart", fault: func() { pg.Stop(); pg.Start() }},
		{name: "PostgreSQL stopped 10 s", fault: func() { pg.Stop(); time.Sleep(10 * time.Second); pg.Start() }},
		{name: "Redis stopped 4 s, restarted empty", redisLoss: true, fault: func() {
			rd.Stop()
			time.Sleep(4 * time.Second)
			rd.Start()
		}},
		{name: "Redis refusing writes 5 s", fault: func() {
			f.redis("CONFIG", "SET", "maxmemory", "1")
			time.Sleep(5 * time.Second)
			f.redis("CONFIG", "SET", "maxmemory", "0")
		}},
		{name: "kill -9 of the server, restart", fault: func() {
			f.srv.kill()
			f.srv.start()
		}},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "Fault suite: %s, %d refresh chains, load %d workers\n", time.Now().UTC().Format(time.RFC3339), len(f.chains), faultWorkers)
	// TRUSTID_FAULT_ONLY runs the scenarios whose name contains it, and
	// TRUSTID_FAULT_REPEAT runs each that many times (to chase a race).
	repeat, _ := strconv.Atoi(os.Getenv("TRUSTID_FAULT_REPEAT"))
	var runs []faultScenario
	for _, sc := range scenarios {
		if only := os.Getenv("TRUSTID_FAULT_ONLY"); only == "" || strings.Contains(sc.name, only) {
			for range max(repeat, 1) {
				runs = append(runs, sc)
			}
		}
	}
	for _, sc := range runs {
		ok := t.Run(sc.name, func(t *testing.T) {
			st := f.runScenario(t, sc)
			table := st.table(sc.name)
			report.WriteString("\n" + table)
			t.Log("\n" + table)
			for _, c := range []struct {
				name string
				n    int
			}{{"lost", st.total(cLost)}, {"fail-open", st.total(cFailOpen)}, {"credential errors", st.total(cCredential)}, {"unexpected", st.total(cUnexpected)},
				{"503 answers without Retry-After", st.noRetry}, {"other 5xx answers (500, 502)", st.other5xx}} {
				if c.n != 0 {
					t.Errorf("%s: %d", c.name, c.n)
				}
			}
			for _, d := range st.details {
				t.Log(d)
			}
		})
		if !ok && f.srv.dead() {
			break
		}
	}
	fmt.Fprintln(os.Stdout, report.String())
	if p := os.Getenv("TRUSTID_FAULT_SERVER_LOG"); p != "" {
		_ = os.WriteFile(p, []byte(f.srv.logs.String()), 0o644)
	}
	if p := os.Getenv("TRUSTID_FAULT_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(report.String()), 0o644)
	}
}

// The test clips take tens of seconds to build (lab/fakeclip); the fault
// suite and TestOIDCEndToEnd share one set, removed by TestMain.
var e2eClipCache struct {
	once  sync.Once
	dir   string
	clips *e2eClips
}

func sharedE2EClips(t *testing.T) *e2eClips {
	t.Helper()
	e2eClipCache.once.Do(func() {
		dir, err := os.MkdirTemp("", "trustid-e2e-clips")
		if err != nil {
			t.Fatal(err)
		}
		e2eClipCache.dir = dir
		e2eClipCache.clips = buildE2EClips(t, dir)
	})
	if e2eClipCache.clips == nil {
		skipOrFail(t, "test clips could not be built (see the first test that tried)")
	}
	return e2eClipCache.clips
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eClipCache.dir != "" {
		_ = os.RemoveAll(e2eClipCache.dir)
	}
	os.Exit(code)
}

// faultWorkers is the number of load goroutines.
const faultWorkers = 4

type faultScenario struct {
	name string
	// fault breaks a store or the server and repairs it before it returns.
	fault func()
	// redisLoss: the ephemeral store loses its data (access tokens are
	// dropped by design, oidc/README "Storage").
	redisLoss bool
}

// outcome classes of the table.
const (
	cSent = iota
	cOK
	cRetryable
	cRefused // refused as designed: a replay, a revoked token, replay_unverifiable
	cLost
	cFailOpen
	cCredential
	cUnexpected
	nClasses
)

var classNames = [nClasses]string{"sent", "succeeded", "failed-retryable", "refused as designed", "lost", "fail-open", "credential-errors", "unexpected"}

// op kinds, the table's rows.
var opKinds = []string{"refresh", "client_credentials", "presentation", "replayed presentation", "revocation", "login", "login, again after the repair",
	"check: refresh chain", "check: access token", "check: revoked token", "check: presentation"}

type stats struct {
	mu       sync.Mutex
	n        map[string]*[nClasses]int
	noRetry  int // 503 answers without Retry-After
	other5xx int // 5xx answers other than 503 (a fault should be a 503)
	details  []string
}

func (s *stats) add(op string, class int, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]*[nClasses]int{}
	}
	row := s.n[op]
	if row == nil {
		row = &[nClasses]int{}
		s.n[op] = row
	}
	row[cSent]++
	row[class]++
	if class >= cLost && row[class] <= 3 {
		// The first three of each kind, enough to tell the cause.
		s.details = append(s.details, fmt.Sprintf("%s %s: %s", op, classNames[class], detail))
	}
}

func (s *stats) total(class int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, row := range s.n {
		n += row[class]
	}
	return n
}

func (s *stats) table(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s\n\n| request |", name)
	for _, c := range classNames {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", nClasses) + "\n")
	var sum [nClasses]int
	for _, op := range opKinds {
		row := s.n[op]
		if row == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s |", op)
		for i, v := range row {
			fmt.Fprintf(&b, " %d |", v)
			sum[i] += v
		}
		b.WriteString("\n")
	}
	b.WriteString("| **all** |")
	for _, v := range sum {
		fmt.Fprintf(&b, " **%d** |", v)
	}
	fmt.Fprintf(&b, "\n\n503 answers without Retry-After: %d; other 5xx answers (500, 502): %d\n", s.noRetry, s.other5xx)
	return b.String()
}

// chain is one grant's refresh chain: its current refresh and access tokens.
type chain struct {
	rt, at  string
	atFresh bool // at came from a 200 of this scenario
	// faults are this token's failed refreshes, for the report.
	faults []string
}

func (ch *chain) history() string {
	if len(ch.faults) == 0 {
		return "no failed refresh of this token before"
	}
	return "failed refreshes of this token before (time after the fault began): " + strings.Join(ch.faults, ", ")
}

// faultStart is when the current scenario's fault began.
var faultStart atomic.Int64

func sinceFault() string {
	return time.Since(time.Unix(0, faultStart.Load())).Round(time.Millisecond).String()
}

type revoked struct{ rt, at string }

type presented struct {
	payload string
	first   int // status of the first verification
}

// faultRig holds the server, its clients and what the load has seen.
type faultRig struct {
	t   *testing.T
	srv *faultServer // the first node
	// nodes are every `trustid serve` on the stores (srv is nodes[0]);
	// issuer is their public URL: the one node's address, or with several
	// an address no one listens on, which transport (a client-side load
	// balancer, multinode_test.go) maps to a node per request.
	nodes     []*faultServer
	issuer    string
	transport http.RoundTripper // nil: http.DefaultTransport
	rd        *privateRedis
	clips     *e2eClips
	id        string // the citizen's ID number
	redirect  string
	rp        faultClient // authorization_code + refresh_token
	machine   faultClient // client_credentials
	verifier  faultClient // certificate verifier (hotel)
	holder    *certs.Holder
	http      *http.Client
	app       *relyingApp

	mu        sync.Mutex
	chains    []*chain  // refresh chains not in use
	revoked   []revoked // revocations that answered 200, in every scenario
	toRevoke  []*chain  // revocations that answered 503, to retry
	ccTokens  []string  // this scenario's client_credentials tokens
	presented []presented
}

type faultClient struct{ id, secret string }

func newFaultRig(t *testing.T, models string, clips *e2eClips, pg *privatePG, rd *privateRedis) *faultRig {
	return newRig(t, models, clips, pg, rd, "TRUSTID_REDIS_URL="+rd.URL, 1, nil)
}

// newRig starts n `trustid serve` processes on the stores (one data
// directory: the dev keys are the nodes' shared secrets) and sets up the
// register, clients, a login, a certificate and the bulk refresh chains.
// With n > 1, lb builds the client-side load balancer from the rig.
// redisEnv names the ephemeral store (TRUSTID_REDIS_URL or
// TRUSTID_REDIS_CLUSTER_ADDRS); rd is the redis-server a scenario may break
// (nil when there is none).
func newRig(t *testing.T, models string, clips *e2eClips, pg *privatePG, rd *privateRedis, redisEnv string, n int, lb func(*faultRig) http.RoundTripper) *faultRig {
	dataDir := t.TempDir()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	issuer := "http://" + addrs[0]
	if n > 1 {
		// "localhost" (a loopback name, so http is allowed) on a port no
		// node listens on: every request must go through the balancer.
		_, port, _ := net.SplitHostPort(freeAddr(t))
		issuer = "http://localhost:" + port
	}
	env := append(os.Environ(), "TRUSTID_CONFIG=", "TRUSTID_DATA_DIR="+dataDir,
		"TRUSTID_MODELS="+models, "TRUSTID_ISSUER="+issuer, "TRUSTID_ADMIN_TOKEN=test-admin-token",
		"TRUSTID_POSTGRES_DSN="+pg.DSN, redisEnv,
		"TRUSTID_TEST_MODE=1", "TRUSTID_TEST_FIXED_DIGITS="+e2eDigits)
	f := &faultRig{t: t, rd: rd, clips: clips, id: e2eIDNumber(t), issuer: issuer, http: &http.Client{Timeout: 15 * time.Second}}

	// The register: the GRID speaker.
	photos := filepath.Join(dataDir, "photos")
	os.MkdirAll(photos, 0o755)
	photo, err := os.ReadFile(clips.photo)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(photos, "speaker.jpg"), photo, 0o644)
	csvPath := filepath.Join(dataDir, "register.csv")
	os.WriteFile(csvPath, []byte("id_number,name,photo\n"+f.id+",Grid Speaker,speaker.jpg\n"), 0o644)
	runTrustid(t, env, "import", "-csv", csvPath, "-photos", photos)

	app := newE2EApp(t)
	f.app = app
	f.redirect = app.srv.URL + "/callback"
	create := func(args ...string) faultClient {
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		out := runTrustid(t, env, append([]string{"client", "create"}, args...)...)
		if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
			t.Fatalf("client create %v: %q %v", args, out, err)
		}
		return faultClient{c.ID, c.Secret}
	}
	f.rp = create("-name", "Fault App", "-redirect-uri", f.redirect, "-scopes", "openid,offline_access,profile",
		"-grant-types", "authorization_code,refresh_token")
	f.machine = create("-name", "Fault Machine", "-grant-types", "client_credentials")
	f.verifier = create("-name", "Fault Hotel", "-role", "hotel", "-grant-types", "client_credentials")

	for _, addr := range addrs {
		s := &faultServer{t: t, bin: trustidBinary(t), addr: addr, env: append(slices.Clip(env), "TRUSTID_LISTEN="+addr)}
		f.nodes = append(f.nodes, s)
		s.start()
		t.Cleanup(s.kill)
	}
	f.srv = f.nodes[0]
	if n > 1 {
		t.Cleanup(func() {
			if t.Failed() {
				for i, s := range f.nodes {
					t.Logf("node %d (%s), end of its log:\n%s", i, s.addr, s.tail())
				}
			}
		})
	}
	if lb != nil {
		f.transport = lb(f)
		f.http.Transport = f.transport
	}

	// One real face login gives a refresh chain and the session that gets
	// the holder's certificate.
	start := time.Now()
	b := f.browser()
	ch, class, detail := f.login(context.Background(), b)
	if class != cOK {
		t.Fatalf("setup login: %s: %s", classNames[class], detail)
	}
	t.Logf("setup face login: %s", time.Since(start).Round(time.Millisecond))
	f.chains = append(f.chains, ch)
	f.holder, _ = f.issueCertificate(b)

	// Bulk refresh tokens: trustid-lab bench-tokens on the same stores and keys.
	f.chains = append(f.chains, f.mintChains(t, 60)...)
	return f
}

// mintChains mints n refresh chains with trustid-lab bench-tokens on the
// rig's stores and keys.
func (f *faultRig) mintChains(t *testing.T, n int) []*chain {
	p := filepath.Join(t.TempDir(), "tokens.txt")
	cmd := exec.Command(labBinary(t), "bench-tokens", "-i-know-this-is-a-benchmark", "-client", f.rp.id, "-secret", f.rp.secret,
		"-redirect-uri", f.redirect, "-scopes", "openid,offline_access", "-n", strconv.Itoa(n), "-workers", "2", "-out", p)
	cmd.Env = f.srv.env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("trustid-lab bench-tokens: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chain
	for _, rt := range strings.Fields(string(raw)) {
		out = append(out, &chain{rt: rt})
	}
	return out
}

var (
	labOnce sync.Once
	labPath string
	labErr  error
)

// labBinary is bin/trustid-lab: TRUSTID_E2E_LAB_BIN, else the one beside
// TRUSTID_E2E_BIN (make build builds both), else built here.
func labBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TRUSTID_E2E_LAB_BIN"); p != "" {
		return p
	}
	if p := os.Getenv("TRUSTID_E2E_BIN"); p != "" {
		if lp := filepath.Join(filepath.Dir(p), "trustid-lab"); fileExists(lp) {
			return lp
		}
	}
	labOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trustid-lab-bin")
		if err != nil {
			labErr = err
			return
		}
		labPath = filepath.Join(dir, "trustid-lab")
		if out, err := exec.Command("go", "build", "-o", labPath, "../trustid-lab").CombinedOutput(); err != nil {
			labErr = fmt.Errorf("go build trustid-lab: %v\n%s", err, out)
		}
	})
	if labErr != nil {
		t.Fatal(labErr)
	}
	return labPath
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (f *faultRig) redis(args ...string) {
	if out, err := f.rd.Do(args...); err != nil {
		f.t.Errorf("redis %v: %v %s", args, err, out)
	}
}

// faultServer is `trustid serve` on fixed stores and address, which the
// test may kill and start again.
type faultServer struct {
	t    *testing.T
	bin  string
	addr string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs lockedBuffer
}

func (s *faultServer) base() string { return "http://" + s.addr }

func (s *faultServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = &s.logs, &s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("server exited\n%s", s.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("server did not become healthy\n%s", s.tail())
}

func (s *faultServer) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (s *faultServer) dead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd == nil
}

func (s *faultServer) tail() string {
	l := s.logs.String()
	if len(l) > 8000 {
		l = l[len(l)-8000:]
	}
	return l
}

// answer is what one HTTP request got.
type answer struct {
	status     int // 0: no answer (connection refused, reset, timeout)
	err        error
	body       []byte
	retryAfter string
	code       string // OAuth "error" or the JSON API's error.code
}

func (f *faultRig) do(req *http.Request) answer {
	resp, err := f.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: b, retryAfter: resp.Header.Get("Retry-After")}
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Error) > 0 {
		var s string
		var o struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(e.Error, &s) == nil {
			a.code = s
		} else if json.Unmarshal(e.Error, &o) == nil {
			a.code = o.Code
		}
	}
	return a
}

func (a answer) String() string {
	if a.status == 0 {
		return fmt.Sprintf("no answer: %v", a.err)
	}
	return fmt.Sprintf("%d %.400s", a.status, a.body)
}

// fault classifies an answer that is not a success: a retryable fault, a
// credential error, or unexpected. ok is false for a success.
func (f *faultRig) fault(st *stats, a answer) (class int, isFault bool) {
	switch {
	case a.status == 0:
		return cRetryable, true
	case a.status >= 500:
		st.mu.Lock()
		if a.status == http.StatusServiceUnavailable && a.retryAfter == "" {
			st.noRetry++
		}
		if a.status != http.StatusServiceUnavailable {
			st.other5xx++
		}
		st.mu.Unlock()
		return cRetryable, true
	case a.status == http.StatusUnauthorized || a.code == "invalid_client" || a.code == "unauthorized" ||
		a.code == "request_unauthorized" || a.code == "verifier_unauthenticated":
		return cCredential, true
	}
	return 0, false
}

func (f *faultRig) form(path string, c faultClient, v url.Values) answer {
	req, _ := http.NewRequest("POST", f.base()+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	return f.do(req)
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// refresh runs one refresh of a chain from the pool.
func (f *faultRig) refresh(st *stats, ch *chain) (keep bool) {
	a := f.form("/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.rt}})
	if a.status == 200 {
		var ta tokenAnswer
		if json.Unmarshal(a.body, &ta) != nil || ta.RefreshToken == "" || ta.AccessToken == "" {
			st.add("refresh", cUnexpected, "200 without tokens: "+a.String())
			return true
		}
		ch.rt, ch.at, ch.atFresh, ch.faults = ta.RefreshToken, ta.AccessToken, true, nil
		st.add("refresh", cOK, "")
		return true
	}
	if class, ok := f.fault(st, a); ok {
		st.add("refresh", class, a.String())
		what := fmt.Sprintf("%d %s", a.status, a.code)
		if a.status == 0 {
			what = a.err.Error()
		}
		ch.faults = append(ch.faults, sinceFault()+": "+what)
		return true
	}
	if a.code == "invalid_grant" {
		// The refresh token stopped working without the client having
		// received its successor: the grant is lost.
		st.add("refresh", cLost, sinceFault()+": "+a.String()+"; "+ch.history())
		return false
	}
	st.add("refresh", cUnexpected, a.String())
	return true
}

func (f *faultRig) clientCredentials(st *stats) {
	a := f.form("/oauth2/token", f.machine, url.Values{"grant_type": {"client_credentials"}})
	if a.status == 200 {
		var ta tokenAnswer
		if json.Unmarshal(a.body, &ta) != nil || ta.AccessToken == "" {
			st.add("client_credentials", cUnexpected, a.String())
			return
		}
		f.mu.Lock()
		f.ccTokens = append(f.ccTokens, ta.AccessToken)
		f.mu.Unlock()
		st.add("client_credentials", cOK, "")
		return
	}
	class, ok := f.fault(st, a)
	if !ok {
		class = cUnexpected
	}
	st.add("client_credentials", class, a.String())
}

func (f *faultRig) verify(payload string) answer {
	body, _ := json.Marshal(certs.VerifyRequest{Payload: payload, Purpose: "check_in"})
	req, _ := http.NewRequest("POST", f.base()+"/certs/verify", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(f.verifier.id, f.verifier.secret)
	return f.do(req)
}

// refusedReplay: a presentation refused because it was (or may have been) seen.
func refusedReplay(a answer) bool {
	return a.status == http.StatusConflict && (a.code == "replayed_presentation" || a.code == "replay_unverifiable")
}

// present verifies a fresh presentation, then replays it.
func (f *faultRig) present(st *stats) {
	payload, err := f.holder.Present(nil)
	if err != nil {
		st.add("presentation", cUnexpected, err.Error())
		return
	}
	a := f.verify(payload)
	switch class, isFault := f.fault(st, a); {
	case a.status == 200:
		st.add("presentation", cOK, "")
	case isFault:
		st.add("presentation", class, a.String())
	case refusedReplay(a):
		// replay_unverifiable: presented across a loss of the replay cache.
		st.add("presentation", cRefused, a.String())
	default:
		st.add("presentation", cUnexpected, a.String())
	}
	if a.status != 200 && !refusedReplay(a) {
		// Nothing was verified: there is nothing to replay.
		f.mu.Lock()
		f.presented = append(f.presented, presented{payload, a.status})
		f.mu.Unlock()
		return
	}
	r := f.verify(payload)
	switch class, isFault := f.fault(st, r); {
	case r.status == 200:
		st.add("replayed presentation", cFailOpen, "replay accepted: "+r.String())
	case isFault:
		st.add("replayed presentation", class, r.String())
	case refusedReplay(r):
		st.add("replayed presentation", cRefused, "")
	default:
		st.add("replayed presentation", cUnexpected, r.String())
	}
	f.mu.Lock()
	f.presented = append(f.presented, presented{payload, a.status})
	f.mu.Unlock()
}

// revoke revokes a chain's refresh token (RFC 7009).
func (f *faultRig) revoke(st *stats, ch *chain) {
	a := f.form("/oauth2/revoke", f.rp, url.Values{"token": {ch.rt}, "token_type_hint": {"refresh_token"}})
	if a.status == 200 {
		st.add("revocation", cOK, "")
		f.mu.Lock()
		f.revoked = append(f.revoked, revoked{ch.rt, ch.at})
		f.mu.Unlock()
		return
	}
	class, ok := f.fault(st, a)
	if !ok {
		class = cUnexpected
	}
	st.add("revocation", class, a.String())
	// The client retries a revocation that did not answer 200.
	f.mu.Lock()
	f.toRevoke = append(f.toRevoke, ch)
	f.mu.Unlock()
}

func (f *faultRig) introspect(token, hint string) (active bool, a answer) {
	a = f.form("/oauth2/introspect", f.rp, url.Values{"token": {token}, "token_type_hint": {hint}})
	var ir struct {
		Active bool `json:"active"`
	}
	_ = json.Unmarshal(a.body, &ir)
	return ir.Active, a
}

// login runs the face login in browser b to tokens: authorize, the face
// step with the genuine clip, consent when asked, code exchange.
func (f *faultRig) login(ctx context.Context, b *http.Client) (*chain, int, string) {
	base := f.base()
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {f.rp.id}, "redirect_uri": {f.redirect},
		"scope": {"openid offline_access profile"}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {pkceS256(verifier)}, "code_challenge_method": {"S256"}, "login_hint": {f.id}}
	step := func(what string, req *http.Request) (*http.Response, string, int, string) {
		req = req.WithContext(ctx)
		resp, err := b.Do(req)
		if err != nil {
			return nil, "", cRetryable, what + ": " + err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return resp, string(body), cOK, ""
		}
		a := answer{status: resp.StatusCode, body: body, retryAfter: resp.Header.Get("Retry-After")}
		if class, ok := f.fault(&stats{}, a); ok {
			return resp, "", class, what + ": " + a.String()
		}
		return resp, "", cUnexpected, what + ": " + a.String()
	}
	req, _ := http.NewRequest("GET", base+"/oauth2/auth?"+q.Encode(), nil)
	resp, _, class, d := step("authorize", req)
	if class != cOK {
		return nil, class, d
	}
	f.drainCallbacks()
	if resp.Request.URL.Path != "/oauth2/login" {
		// The provider sent the browser back to the app with an error.
		switch e := resp.Request.URL.Query().Get("error"); e {
		case "server_error", "temporarily_unavailable":
			return nil, cRetryable, "authorize: error=" + e
		default:
			return nil, cUnexpected, "authorize ended at " + resp.Request.URL.String()
		}
	}
	begin, _ := json.Marshal(map[string]any{"id_number": f.id, "face_consent": true})
	req, _ = http.NewRequest("POST", base+"/oauth2/login/face/begin", bytes.NewReader(begin))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	var body string
	_, body, class, d = step("begin", req)
	if class != cOK {
		return nil, class, d
	}
	var chal struct {
		ChallengeID string `json:"challenge_id"`
	}
	json.Unmarshal([]byte(body), &chal)
	video, err := os.ReadFile(f.clips.genuine)
	if err != nil {
		return nil, cUnexpected, err.Error()
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("challenge_id", chal.ChallengeID)
	mw.WriteField("id_number", f.id)
	mw.WriteField("face_consent", "yes")
	fw, _ := mw.CreateFormFile("video", "clip.webm")
	fw.Write(video)
	mw.Close()
	req, _ = http.NewRequest("POST", base+"/oauth2/login/face/finish", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", base)
	resp, body, class, d = step("finish", req)
	if class != cOK {
		return nil, class, d
	}
	if m := csrfField.FindStringSubmatch(body); m != nil && resp.Request.URL.Path != "/callback" {
		u := *resp.Request.URL
		u.RawQuery = ""
		req, _ = http.NewRequest("POST", u.String(), strings.NewReader(url.Values{
			"csrf": {html.UnescapeString(m[1])}, "decision": {"approve"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		if resp, body, class, d = step("consent", req); class != cOK {
			return nil, class, d
		}
	}
	if cf := claimsForm(body); cf != nil && resp.Request.URL.Path != "/callback" {
		req, _ = http.NewRequest("POST", base+"/oauth2/consent/claims", strings.NewReader(cf.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		if resp, _, class, d = step("claims consent", req); class != cOK {
			return nil, class, d
		}
	}
	f.drainCallbacks()
	if resp.Request.URL.Path != "/callback" || resp.Request.URL.Query().Get("code") == "" {
		return nil, cUnexpected, "login ended at " + resp.Request.URL.String()
	}
	a := f.form("/oauth2/token", f.rp, url.Values{"grant_type": {"authorization_code"}, "code": {resp.Request.URL.Query().Get("code")},
		"redirect_uri": {f.redirect}, "code_verifier": {verifier}})
	if a.status != 200 {
		if class, ok := f.fault(&stats{}, a); ok {
			return nil, class, "code exchange: " + a.String()
		}
		return nil, cUnexpected, "code exchange: " + a.String()
	}
	var ta tokenAnswer
	if json.Unmarshal(a.body, &ta) != nil || ta.RefreshToken == "" {
		return nil, cUnexpected, "code exchange: " + a.String()
	}
	return &chain{rt: ta.RefreshToken, at: ta.AccessToken, atFresh: true}, cOK, ""
}

func pkceS256(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }

// drainCallbacks empties the app's record of callbacks (its channel is bounded).
func (f *faultRig) drainCallbacks() {
	for f.app.callback() != nil {
	}
}

// issueCertificate gets the holder's certificate with the citizen's session.
// It returns the holder and the certificate's serial.
func (f *faultRig) issueCertificate(b *http.Client) (*certs.Holder, string) {
	t := f.t
	dev, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The device's proof of possession over the service's nonce.
	req, _ := http.NewRequest("POST", f.base()+"/certs/devices/challenge", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", f.base())
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ch struct{ Nonce string }
	if out := readBody(t, resp); resp.StatusCode != 200 || json.Unmarshal([]byte(out), &ch) != nil {
		t.Fatalf("certificate challenge: %d %s", resp.StatusCode, out)
	}
	nonce, _ := base64.RawURLEncoding.DecodeString(ch.Nonce)
	proof, err := certs.ProvePossession(rand.Reader, dev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: &dev.PublicKey})
	body, _ := json.Marshal(certs.IssueHTTPRequest{DeviceKey: jwk, Nonce: ch.Nonce, Proof: base64.RawURLEncoding.EncodeToString(proof)})
	req, _ = http.NewRequest("POST", f.base()+"/certs/issue", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", f.base())
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := readBody(t, resp)
	var is struct {
		Certificate string `json:"certificate"`
		Serial      string `json:"serial"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(out), &is) != nil {
		t.Fatalf("certificate issue: %d %s", resp.StatusCode, out)
	}
	cert, err := base64.RawURLEncoding.DecodeString(is.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return &certs.Holder{Cert: cert, Key: dev, Now: time.Now, Rand: rand.Reader}, is.Serial
}

// takeChain removes a chain from the pool (nil when empty). A chain whose
// last refresh failed with a fault comes first: a client retries a failed
// token request promptly (within the refresh grace period), it does not
// leave it for seconds behind other work. Without this, a refresh that
// died in flight with its node (SIGKILL) was retried only when the random
// pick came back to it, which under load was after the 5 s grace.
func (f *faultRig) takeChain() *chain {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.chains) == 0 {
		return nil
	}
	i := int(time.Now().UnixNano()) % len(f.chains)
	if i < 0 {
		i = -i
	}
	for j, ch := range f.chains {
		if len(ch.faults) > 0 {
			i = j
			break
		}
	}
	ch := f.chains[i]
	f.chains = append(f.chains[:i], f.chains[i+1:]...)
	return ch
}

func (f *faultRig) putChain(ch *chain) {
	f.mu.Lock()
	f.chains = append(f.chains, ch)
	f.mu.Unlock()
}

// runScenario runs the load for 2 s, the fault, and 3 s more after the
// repair, then checks what the load saw.
func (f *faultRig) runScenario(t *testing.T, sc faultScenario) *stats {
	st := &stats{}
	f.mu.Lock()
	f.ccTokens, f.presented = nil, nil
	for _, ch := range f.chains {
		ch.atFresh = false
	}
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	revocations := 0
	var revMu sync.Mutex
	for w := range faultWorkers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				switch i % 8 {
				case 0, 1, 2:
					if ch := f.takeChain(); ch != nil {
						if f.refresh(st, ch) {
							f.putChain(ch)
						}
					}
				case 3, 4:
					f.clientCredentials(st)
				case 5, 6:
					f.present(st)
				case 7:
					revMu.Lock()
					due := revocations < 6
					revocations++
					revMu.Unlock()
					if !due {
						continue
					}
					f.mu.Lock()
					var ch *chain
					if n := len(f.toRevoke); n > 0 {
						ch, f.toRevoke = f.toRevoke[n-1], f.toRevoke[:n-1]
					}
					f.mu.Unlock()
					if ch == nil {
						ch = f.takeChain()
					}
					if ch != nil {
						f.revoke(st, ch)
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(40 * time.Millisecond):
				}
			}
		})
	}
	// One face login during the fault, in a fresh browser; when the fault
	// refused it (retryable), the citizen tries again once it is repaired.
	loginDone := make(chan struct{})
	repaired := make(chan struct{})
	go func() {
		defer close(loginDone)
		time.Sleep(2500 * time.Millisecond)
		for _, op := range []string{"login", "login, again after the repair"} {
			lctx, lcancel := context.WithTimeout(context.Background(), 60*time.Second)
			ch, class, d := f.login(lctx, f.browser())
			lcancel()
			st.add(op, class, d)
			if ch != nil {
				f.putChain(ch)
			}
			if class != cRetryable {
				return
			}
			<-repaired
		}
	}()
	time.Sleep(2 * time.Second)
	faultStart.Store(time.Now().UnixNano())
	sc.fault()
	f.waitReady(t)
	close(repaired)
	<-loginDone
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()

	f.check(t, st, sc)
	return st
}

// waitReady waits until every node's /readyz answers 200 (the stores are back).
func (f *faultRig) waitReady(t *testing.T) {
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range f.nodes {
		for {
			if resp, err := http.Get(n.base() + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready after the fault\n%s", n.addr, n.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// base is the public URL requests go to (the issuer).
func (f *faultRig) base() string { return f.issuer }

// browser is a fresh citizen's browser, through the rig's balancer.
func (f *faultRig) browser() *http.Client {
	b := newBrowser(f.t)
	b.Transport = f.transport
	return b
}

// retryFaults repeats a check while it meets a fault (the stores are back,
// but a pool may still be reconnecting).
func (f *faultRig) retryFaults(st *stats, do func() answer) answer {
	var a answer
	for i := range 10 {
		a = do()
		if _, isFault := f.fault(&stats{}, a); !isFault || a.status == http.StatusUnauthorized {
			return a
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	return a
}

// check verifies, after the fault, everything the load saw.
func (f *faultRig) check(t *testing.T, st *stats, sc faultScenario) {
	// Every refresh chain still works: its last 200 handed out a refresh
	// token that refreshes, and (unless Redis lost its data) an access
	// token that is active.
	f.mu.Lock()
	chains := append([]*chain(nil), f.chains...)
	ccTokens := append([]string(nil), f.ccTokens...)
	revokedList := append([]revoked(nil), f.revoked...)
	pres := append([]presented(nil), f.presented...)
	f.mu.Unlock()
	for _, ch := range chains {
		if ch.atFresh && !sc.redisLoss {
			f.checkActive(st, "check: access token", ch.at, "access_token", "access token of a 200 refresh")
		}
		a := f.retryFaults(st, func() answer {
			return f.form("/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.rt}})
		})
		var ta tokenAnswer
		switch class, isFault := f.fault(st, a); {
		case a.status == 200 && json.Unmarshal(a.body, &ta) == nil && ta.RefreshToken != "":
			ch.rt, ch.at, ch.faults = ta.RefreshToken, ta.AccessToken, nil
			st.add("check: refresh chain", cOK, "")
			f.checkActive(st, "check: access token", ch.at, "access_token", "access token of the check's refresh")
		case a.code == "invalid_grant":
			st.add("check: refresh chain", cLost, a.String()+"; "+ch.history())
			f.dropChain(ch)
		case isFault:
			st.add("check: refresh chain", cUnexpected, "after recovery: "+a.String())
			_ = class
		default:
			st.add("check: refresh chain", cUnexpected, a.String())
		}
	}
	if !sc.redisLoss {
		for _, at := range ccTokens {
			f.checkActive(st, "check: access token", at, "access_token", "client_credentials token")
		}
	}
	// Every revocation that answered 200, in this scenario or before, holds:
	// the refresh token and its family's access token are inactive, and
	// the refresh token refreshes nothing.
	for _, r := range revokedList {
		f.checkInactive(st, r.rt, "refresh_token")
		if r.at != "" {
			f.checkInactive(st, r.at, "access_token")
		}
		a := f.retryFaults(st, func() answer {
			return f.form("/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.rt}})
		})
		switch {
		case a.status == 200:
			st.add("check: revoked token", cFailOpen, "revoked refresh token refreshed: "+a.String())
		case a.code == "invalid_grant":
			st.add("check: revoked token", cRefused, "")
		default:
			st.add("check: revoked token", cUnexpected, a.String())
		}
	}
	// Every presentation that was verified or refused as a replay stays refused.
	for _, p := range pres {
		if p.first != 200 && p.first != http.StatusConflict {
			continue
		}
		a := f.retryFaults(st, func() answer { return f.verify(p.payload) })
		switch {
		case a.status == 200:
			st.add("check: presentation", cFailOpen, "seen presentation accepted: "+a.String())
		case refusedReplay(a) || a.code == "expired_presentation":
			st.add("check: presentation", cRefused, "")
		default:
			st.add("check: presentation", cUnexpected, a.String())
		}
	}
}

func (f *faultRig) dropChain(ch *chain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.chains {
		if c == ch {
			f.chains = append(f.chains[:i], f.chains[i+1:]...)
			return
		}
	}
}

func (f *faultRig) checkActive(st *stats, op, token, hint, what string) {
	var a answer
	var active bool
	a = f.retryFaults(st, func() answer { active, a = f.introspect(token, hint); return a })
	switch {
	case a.status == 200 && active:
		st.add(op, cOK, "")
	case a.status == 200:
		st.add(op, cLost, what+" inactive after the fault")
	default:
		if class, ok := f.fault(st, a); ok && class == cCredential {
			st.add(op, cCredential, a.String())
			return
		}
		st.add(op, cUnexpected, a.String())
	}
}

func (f *faultRig) checkInactive(st *stats, token, hint string) {
	var a answer
	var active bool
	a = f.retryFaults(st, func() answer { active, a = f.introspect(token, hint); return a })
	switch {
	case a.status == 200 && !active:
		st.add("check: revoked token", cRefused, "")
	case a.status == 200:
		st.add("check: revoked token", cFailOpen, "revoked "+hint+" active")
	default:
		st.add("check: revoked token", cUnexpected, a.String())
	}
}
