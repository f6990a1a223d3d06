package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
)

// TestMultiNode is issue 22's proof that nodes are stateless: three `trustid
// serve` processes (the real binary) on different loopback ports share one
// PostgreSQL and one redis-server (private, as in the fault suite; then
// again on a Redis Cluster of three masters), behind
// a client-side load balancer that can pin a request to a node. It checks
// that a face login begun on node A finishes on node B; a token refreshed
// on B and revoked on C is refused by every node; a register enrolment on
// A reaches C's in-memory 1:N index (the template feed) within one second,
// where it refuses the same face under another ID number; one node killed
// with SIGKILL under the fault suite's load while the others keep serving
// loses nothing (the fault suite's counts); a certificate issued on A and
// verified on B, revoked on C, is refused on A right after.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test in -short mode")
	}
	models := needModels(t)
	clips := sharedE2EClips(t)
	for _, ephemeral := range []struct {
		name string
		// start starts the store and returns the nodes' setting for it and
		// a check that they used it.
		start func(t *testing.T) (env string, used func() bool)
	}{
		{"one redis-server", func(t *testing.T) (string, func() bool) {
			rd := startPrivateRedis(t)
			return "TRUSTID_REDIS_URL=" + rd.URL, func() bool {
				out, err := rd.Do("DBSIZE")
				n, _ := strconv.Atoi(strings.TrimSpace(out))
				return err == nil && n > 0
			}
		}},
		// Every multi-key operation of the real flows (token families'
		// SetUnless, replay caches and their memory markers) on a cluster.
		{"Redis Cluster of 3 masters", func(t *testing.T) (string, func() bool) {
			c := redistest.StartCluster(t, 3)
			return "TRUSTID_REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs, ","), func() bool { return c.Keys(t) > 0 }
		}},
	} {
		t.Run(ephemeral.name, func(t *testing.T) {
			env, used := ephemeral.start(t)
			multiNode(t, models, clips, env)
			if !used() {
				t.Error("the nodes wrote nothing to the ephemeral store under test")
			}
		})
	}
}

func multiNode(t *testing.T, models string, clips *e2eClips, redisEnv string) {
	start := time.Now()
	pg := startPrivatePG(t)
	f := newRig(t, models, clips, pg, nil, redisEnv, 3, func(f *faultRig) http.RoundTripper {
		u, _ := url.Parse(f.issuer)
		return &balancer{host: u.Host, nodes: f.nodes, next: http.DefaultTransport}
	})
	t.Logf("3 nodes, stores, login, certificate and %d refresh chains ready: %s", len(f.chains), time.Since(start).Round(time.Millisecond))
	const a, b, c = 0, 1, 2
	ctx := context.Background()

	var login *chain
	var citizen *http.Client // the browser of the login begun on A
	t.Run("face login begun on A, finished on B", func(t *testing.T) {
		var finished atomic.Bool
		citizen = f.pinnedBrowser(nil, func(r *http.Request) int {
			if r.URL.Path == "/oauth2/login/face/finish" {
				finished.Store(true)
			}
			if finished.Load() {
				return b
			}
			return a
		})
		ch, class, detail := f.login(ctx, citizen)
		if class != cOK || !finished.Load() {
			t.Fatalf("login: %s: %s", classNames[class], detail)
		}
		login = ch
	})
	if login == nil {
		t.FailNow()
	}

	t.Run("refreshed on B, revoked on C, refused everywhere", func(t *testing.T) {
		r := f.formOn(b, "/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.rt}})
		var ta tokenAnswer
		if r.status != 200 || json.Unmarshal(r.body, &ta) != nil || ta.RefreshToken == "" {
			t.Fatalf("refresh on B: %s", r)
		}
		for i := range f.nodes {
			if active, ans := f.introspectOn(i, ta.AccessToken, "access_token"); !active {
				t.Errorf("node %d: the access token B issued is not active: %s", i, ans)
			}
		}
		if r := f.formOn(c, "/oauth2/revoke", f.rp, url.Values{"token": {ta.RefreshToken}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
			t.Fatalf("revoke on C: %s", r)
		}
		for i := range f.nodes {
			r := f.formOn(i, "/oauth2/token", f.rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ta.RefreshToken}})
			if r.code != "invalid_grant" {
				t.Errorf("node %d refreshed the revoked token: %s", i, r)
			}
			for _, tok := range []struct{ v, hint string }{{ta.RefreshToken, "refresh_token"}, {ta.AccessToken, "access_token"}} {
				if active, ans := f.introspectOn(i, tok.v, tok.hint); active || ans.status != 200 {
					t.Errorf("node %d: revoked %s active or unanswered: %s", i, tok.hint, ans)
				}
			}
		}
	})

	t.Run("enrolment on A found by a 1:N search on C within 1 s", func(t *testing.T) {
		before := f.indexLen(t, c)
		photo, name := f.enrolOn(t, a, 0)
		enrolled := time.Now()
		// Every node's index has it within 1 s of A's answer (C first: its
		// lag is the one logged).
		for _, i := range []int{c, b} {
			for f.indexLen(t, i) != before+1 {
				if time.Since(enrolled) > time.Second {
					t.Fatalf("node %d's index has %d templates 1 s after node A's enrolment (had %d)", i, f.indexLen(t, i), before)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if i == c {
				t.Logf("node A's enrolment reached node C's index %s after A answered", time.Since(enrolled).Round(time.Millisecond))
			}
		}
		// The 1:N search on C: the same face under another ID number is a
		// duplicate of the citizen A enrolled.
		rep := f.importOn(t, c, 1, photo, name)
		if rep.Failed != 1 || len(rep.Failures) != 1 || rep.Failures[0].Reason != "duplicate_identity" {
			t.Fatalf("node C imported the face A enrolled under another ID number: %+v", rep)
		}
	})

	t.Run("SIGKILL of node B under load", func(t *testing.T) {
		victim := f.nodes[b]
		st := f.runScenario(t, faultScenario{name: "SIGKILL of node B", fault: func() {
			victim.kill()
			time.Sleep(2 * time.Second) // the others serve alone
			victim.start()
		}})
		t.Log("\n" + st.table("SIGKILL of node B, 3 nodes"))
		for _, cl := range []struct {
			name string
			n    int
		}{{"lost", st.total(cLost)}, {"fail-open", st.total(cFailOpen)}, {"credential errors", st.total(cCredential)}, {"unexpected", st.total(cUnexpected)}} {
			if cl.n != 0 {
				t.Errorf("%s: %d", cl.name, cl.n)
			}
		}
		// The balancer stops sending to a node that is down, so only the
		// requests in flight on B when it died may fail: at most one per
		// load goroutine and the login.
		if n := st.total(cRetryable); n > faultWorkers+1 {
			t.Errorf("%d requests failed with node B down (in flight at most %d): the others did not keep serving", n, faultWorkers+1)
		}
		if st.total(cOK) == 0 {
			t.Error("nothing succeeded")
		}
		for _, d := range st.details {
			t.Log(d)
		}
	})

	t.Run("certificate issued on A, verified on B, revoked on C, refused on A", func(t *testing.T) {
		var node atomic.Int32
		b2 := f.pinnedBrowser(citizen.Jar, func(*http.Request) int { return int(node.Load()) })
		node.Store(a)
		holder, serial := f.issueCertificate(b2)
		if r := f.verifyOn(b, holder); r.status != 200 {
			t.Fatalf("verify on B: %s", r)
		}
		node.Store(c)
		body, _ := json.Marshal(certs.RevokeDeviceRequest{Serial: serial})
		req, _ := http.NewRequest("POST", f.base()+"/certs/devices/revoke", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", f.base())
		resp, err := b2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("revoke on C: %d %s", resp.StatusCode, body)
		}
		for _, i := range []int{a, b, c} {
			if r := f.verifyOn(i, holder); r.status != http.StatusUnprocessableEntity || r.code != "revoked_certificate" {
				t.Errorf("node %d after the revocation on C: %s", i, r)
			}
		}
	})
}

// balancer is the client-side load balancer in front of the nodes: the
// issuer's host goes to a node, round robin over the nodes that are up (a
// balancer's health check), skipping a node that refuses the connection
// (the request never reached it, so sending it elsewhere is safe), or to
// the node a request's context pins (onNode). Other hosts pass through.
type balancer struct {
	host  string
	nodes []*faultServer
	rr    atomic.Uint64
	next  http.RoundTripper
}

type nodeKey struct{}

// onNode pins the requests made with ctx to node i.
func onNode(ctx context.Context, i int) context.Context { return context.WithValue(ctx, nodeKey{}, i) }

func (lb *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != lb.host {
		return lb.next.RoundTrip(req)
	}
	if i, ok := req.Context().Value(nodeKey{}).(int); ok {
		return lb.send(req, i)
	}
	first := int(lb.rr.Add(1))
	err := errors.New("balancer: every node is down")
	for k := range lb.nodes {
		i := (first + k) % len(lb.nodes)
		if lb.nodes[i].dead() {
			continue
		}
		r := req
		if k > 0 && req.Body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		var resp *http.Response
		if resp, err = lb.send(r, i); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return resp, err
		}
	}
	return nil, err
}

// send sends req to node i, keeping the public Host header.
func (lb *balancer) send(req *http.Request, i int) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Host = lb.nodes[i].addr
	r.Host = lb.host
	resp, err := lb.next.RoundTrip(r)
	if resp != nil {
		// What the client sees is the public URL, not the node's.
		resp.Request = req
	}
	return resp, err
}

// pinned pins every request to the node pick names.
type pinned struct {
	lb   *balancer
	pick func(*http.Request) int
}

func (p pinned) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.lb.RoundTrip(req.WithContext(onNode(req.Context(), p.pick(req))))
}

// pinnedBrowser is a browser (with jar, or a fresh one) whose requests go
// to the node pick names.
func (f *faultRig) pinnedBrowser(jar http.CookieJar, pick func(*http.Request) int) *http.Client {
	b := newBrowser(f.t)
	if jar != nil {
		b.Jar = jar
	}
	b.Transport = pinned{lb: f.transport.(*balancer), pick: pick}
	return b
}

// formOn posts a client-authenticated form to node i.
func (f *faultRig) formOn(i int, path string, c faultClient, v url.Values) answer {
	req, _ := http.NewRequestWithContext(onNode(context.Background(), i), "POST", f.base()+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	return f.do(req)
}

func (f *faultRig) introspectOn(i int, token, hint string) (bool, answer) {
	a := f.formOn(i, "/oauth2/introspect", f.rp, url.Values{"token": {token}, "token_type_hint": {hint}})
	var ir struct {
		Active bool `json:"active"`
	}
	_ = json.Unmarshal(a.body, &ir)
	return ir.Active, a
}

// verifyOn verifies a fresh presentation of holder's certificate on node i.
func (f *faultRig) verifyOn(i int, holder *certs.Holder) answer {
	payload, err := holder.Present(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := json.Marshal(certs.VerifyRequest{Payload: payload, Purpose: "check_in"})
	req, _ := http.NewRequestWithContext(onNode(context.Background(), i), "POST", f.base()+"/certs/verify", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(f.verifier.id, f.verifier.secret)
	return f.do(req)
}

// indexLen reads node i's trustid_face_index_templates gauge.
func (f *faultRig) indexLen(t *testing.T, i int) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(onNode(context.Background(), i), "GET", f.base()+"/metrics", nil)
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "trustid_face_index_templates "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("node %d: no trustid_face_index_templates in /metrics", i)
	return 0
}

// importReport is the register import's answer (authn/identity.ImportReport).
type importReport struct {
	Imported, Failed int
	Failures         []struct{ Reason, Detail string }
}

// importOn imports one register row (the k-th test ID number, the photo)
// through node i's admin API.
func (f *faultRig) importOn(t *testing.T, i, k int, photo []byte, name string) importReport {
	t.Helper()
	id, err := idnumber.Synthesize(900 + k)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	cw, _ := mw.CreateFormFile("csv", "register.csv")
	fmt.Fprintf(cw, "id_number,name,photo\n%s,Enrolled Citizen,%s\n", id, name)
	pw, _ := mw.CreateFormFile("photo", name)
	pw.Write(photo)
	mw.Close()
	req, _ := http.NewRequestWithContext(onNode(context.Background(), i), "POST", f.base()+"/v1/admin/register/import", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer test-admin-token")
	a := f.do(req)
	var rep importReport
	if a.status != 200 || json.Unmarshal(a.body, &rep) != nil {
		t.Fatalf("import on node %d: %s", i, a)
	}
	return rep
}

// enrolOn enrols a new citizen through node i with the first of a few LFW
// photos the face engine accepts, and returns the photo.
func (f *faultRig) enrolOn(t *testing.T, i, k int) ([]byte, string) {
	t.Helper()
	lfw := filepath.Join(os.Getenv("TRUSTID_TESTDATA"), "faces", "lfw")
	for _, p := range []string{"Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "AJ_Cook/AJ_Cook_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0001.jpg"} {
		photo, err := os.ReadFile(filepath.Join(lfw, p))
		if err != nil {
			continue
		}
		name := filepath.Base(p)
		if rep := f.importOn(t, i, k, photo, name); rep.Imported == 1 {
			return photo, name
		} else {
			t.Logf("%s not enrolled: %+v", p, rep)
		}
	}
	skipOrFail(t, "no LFW photo could be enrolled (TRUSTID_TESTDATA=%q)", os.Getenv("TRUSTID_TESTDATA"))
	return nil, ""
}
