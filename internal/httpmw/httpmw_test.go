package httpmw

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/httpmw/requestid"
)

// counterReader yields 0, 1, 2, ... so generated ids are predictable.
type counterReader struct{ n byte }

func (c *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

// stepClock advances by step on every call.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func TestValidRequestID(t *testing.T) {
	cases := []struct {
		name string
		id   string
		want bool
	}{
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", true},
		{"trace style", "svc.a:b_c-1", true},
		{"max length", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 65), false},
		{"space", "a b", false},
		{"newline injection", "a\nlevel=ERROR", false},
		{"quote", `a"b`, false},
		{"non-ascii", "ä", false},
	}
	for _, c := range cases {
		if got := ValidRequestID(c.id); got != c.want {
			t.Errorf("%s: ValidRequestID(%q) = %v, want %v", c.name, c.id, got, c.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	cases := []struct {
		name     string
		incoming string
		want     string
	}{
		{"kept", "abc-123", "abc-123"},
		{"missing", "", "000102030405060708090a0b0c0d0e0f"},
		{"invalid replaced", "bad id\n", "000102030405060708090a0b0c0d0e0f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var seen string
			h := RequestID(&counterReader{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = requestid.From(r.Context())
			}))
			r := httptest.NewRequest("GET", "/", nil)
			if c.incoming != "" {
				r.Header.Set(RequestIDHeader, c.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if seen != c.want || rec.Header().Get(RequestIDHeader) != c.want {
				t.Fatalf("context id %q, header %q; want %q", seen, rec.Header().Get(RequestIDHeader), c.want)
			}
		})
	}
}

func TestRequestIDRandomDefault(t *testing.T) {
	ids := map[string]bool{}
	h := RequestID(nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		id := rec.Header().Get(RequestIDHeader)
		if len(id) != 32 || !ValidRequestID(id) || ids[id] {
			t.Fatalf("generated id %q is malformed or repeated", id)
		}
		ids[id] = true
	}
}

func TestRequestIDFailingReader(t *testing.T) {
	h := RequestID(io.LimitReader(&counterReader{}, 3))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if id := rec.Header().Get(RequestIDHeader); len(id) != 32 {
		t.Fatalf("id %q after a short read; want a crypto/rand fallback", id)
	}
}

// logLines parses JSON log lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /verify/{token}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("verified"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	mux.Handle("POST /json", httperr.Handle(nil, func(w http.ResponseWriter, r *http.Request) error {
		var v struct{ A string }
		if err := httperr.DecodeJSON(r, &v, 1<<20); err != nil {
			return err
		}
		_, err := w.Write([]byte(v.A))
		return err
	}))
	return mux
}

func TestAccessLog(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		target     string
		wantRoute  string
		wantStatus float64
		wantBytes  float64
	}{
		{"pattern with token", "GET", "/verify/SECRET-PATH?token=SECRET-QUERY", "GET /verify/{token}", 200, 8},
		{"created", "POST", "/items", "POST /items", 201, 0},
		{"unmatched", "GET", "/nope/SECRET-PATH", Unmatched, 404, 19},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			mux := testMux()
			clk := &stepClock{t: time.Unix(0, 0), step: 250 * time.Millisecond}
			h := Chain(mux, RequestID(&counterReader{}), AccessLog(logger, mux, clk.Now))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(c.method, c.target, nil))

			if strings.Contains(buf.String(), "SECRET") {
				t.Fatalf("path or query logged: %s", buf.String())
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l["msg"] != "http request" || l["method"] != c.method || l["route"] != c.wantRoute ||
				l["status"] != c.wantStatus || l["bytes"] != c.wantBytes ||
				l["request_id"] != "000102030405060708090a0b0c0d0e0f" || l["duration"] != float64(250*time.Millisecond) {
				t.Fatalf("log line = %v", l)
			}
		})
	}
}

func TestAccessLogInsideMux(t *testing.T) {
	// Mounted per route inside the mux, r.Pattern is used without a Router.
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	mux := http.NewServeMux()
	mux.Handle("GET /a/{id}", AccessLog(logger, nil, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/a/1", nil))
	if l := logLines(t, &buf); len(l) != 1 || l[0]["route"] != "GET /a/{id}" {
		t.Fatalf("log = %v", l)
	}
}

func TestRecover(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") }),
		RequestID(&counterReader{}), Recover(logger))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var body struct {
		Error struct{ Code, Message, RequestID string } `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if body.Error.Code != "internal" || strings.Contains(rec.Body.String(), "kaboom") {
		t.Fatalf("body = %s", rec.Body.String())
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["panic"] != "kaboom" || lines[0]["request_id"] != "000102030405060708090a0b0c0d0e0f" ||
		!strings.Contains(lines[0]["stack"].(string), "httpmw_test.go") {
		t.Fatalf("log = %v", lines)
	}
}

func TestRecoverAfterStart(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"panic after write", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("partial"))
			panic("late")
		}},
		{"abort handler", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Recover(slog.New(slog.DiscardHandler))(c.handler)
			defer func() {
				if v := recover(); v != http.ErrAbortHandler {
					t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		})
	}
}

func TestMaxBytes(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		chunked    bool
		wantStatus int
		wantCalled bool
	}{
		{"small", `{"A":"x"}`, false, 200, true},
		{"declared too large", `{"A":"` + strings.Repeat("x", 100) + `"}`, false, 413, false},
		{"chunked too large", `{"A":"` + strings.Repeat("x", 100) + `"}`, true, 413, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			called := false
			inner := httperr.Handle(nil, func(w http.ResponseWriter, r *http.Request) error {
				called = true
				var v struct{ A string }
				return httperr.DecodeJSON(r, &v, 1<<20) // the middleware's limit is the smaller
			})
			h := MaxBytes(50)(inner)
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			if c.chunked {
				r.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.wantStatus || called != c.wantCalled {
				t.Fatalf("status %d called %v; want %d %v (%s)", rec.Code, called, c.wantStatus, c.wantCalled, rec.Body.String())
			}
			if c.wantStatus == 413 && !strings.Contains(rec.Body.String(), `"body_too_large"`) {
				t.Fatalf("body = %s", rec.Body.String())
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		wantCSP string
	}{
		{"default", func(http.ResponseWriter, *http.Request) {}, "frame-ancestors 'none'"},
		{"handler overrides CSP", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		}, "default-src 'self'; frame-ancestors 'none'"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		SecurityHeaders(c.handler).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Content-Security-Policy") != c.wantCSP {
			t.Errorf("%s: headers = %v", c.name, h)
		}
	}
}

// metricValue returns the counter value and histogram count for the labels.
func metricValue(t *testing.T, reg *prometheus.Registry, method, route, status string) (count float64, observations uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	match := func(m *dto.Metric) bool {
		want := map[string]string{"method": method, "route": route, "status": status}
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				return false
			}
		}
		return len(m.GetLabel()) == 3
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !match(m) {
				continue
			}
			switch mf.GetName() {
			case "trustid_http_requests_total":
				count = m.GetCounter().GetValue()
			case "trustid_http_request_duration_seconds":
				observations = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return count, observations
}

func TestNewStack(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	reg := prometheus.NewRegistry()
	mux := testMux()
	mw, err := New(Config{Logger: logger, Registry: reg, Router: mux, MaxBodyBytes: 64,
		Now: (&stepClock{t: time.Unix(0, 0), step: time.Millisecond}).Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(mux))
	defer srv.Close()

	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	steps := []struct {
		method, path, body string
		wantStatus         int
	}{
		{"GET", "/verify/abc?token=x", "", 200},
		{"GET", "/verify/def", "", 200},
		{"GET", "/panic", "", 500},
		{"POST", "/json", `{"A":"` + strings.Repeat("x", 100) + `"}`, 413},
		{"POST", "/json", `{"A":"x"}`, 200},
		{"GET", "/missing", "", 404},
		{"BREW", "/verify/abc", "", 405},
	}
	for _, s := range steps {
		resp := do(s.method, s.path, s.body)
		if resp.StatusCode != s.wantStatus {
			t.Fatalf("%s %s: status %d, want %d", s.method, s.path, resp.StatusCode, s.wantStatus)
		}
		if resp.Header.Get(RequestIDHeader) == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s %s: headers %v", s.method, s.path, resp.Header)
		}
	}

	metrics := []struct {
		method, route, status string
		want                  float64
	}{
		{"GET", "GET /verify/{token}", "200", 2},
		{"GET", "GET /panic", "500", 1},
		{"POST", "POST /json", "413", 1},
		{"POST", "POST /json", "200", 1},
		{"GET", Unmatched, "404", 1},
		{"OTHER", Unmatched, "405", 1},
	}
	for _, m := range metrics {
		count, obs := metricValue(t, reg, m.method, m.route, m.status)
		if count != m.want || obs != uint64(m.want) {
			t.Errorf("%s %s %s: count %v, observations %d; want %v", m.method, m.route, m.status, count, obs, m.want)
		}
	}

	var statuses []float64
	for _, l := range logLines(t, &buf) {
		if l["msg"] == "http request" {
			statuses = append(statuses, l["status"].(float64))
		}
	}
	if len(statuses) != len(steps) || statuses[2] != 500 {
		t.Fatalf("access log statuses = %v", statuses)
	}

	// The same registry cannot take a second set of HTTP metrics.
	if _, err := New(Config{Logger: logger, Registry: reg}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a logger succeeded")
	}
}

func TestMetricsPanicPassesThrough(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("x") }))
	func() {
		defer func() {
			if v := recover(); v != "x" {
				t.Fatalf("recovered %v", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if count, _ := metricValue(t, reg, "GET", Unmatched, "500"); count != 1 {
		t.Fatalf("panicking request counted %v times as 500", count)
	}
}

func TestResponseController(t *testing.T) {
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the middleware: %v", err)
		}
	}), AccessLog(slog.New(slog.DiscardHandler), nil, nil), Recover(slog.New(slog.DiscardHandler)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !rec.Flushed {
		t.Fatal("not flushed")
	}
}

func BenchmarkStack(b *testing.B) {
	mux := testMux()
	mw, err := New(Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Router: mux})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(mux)
	r := httptest.NewRequest("GET", "/verify/abc", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// FuzzRequestID: whatever a client sends, the id in the context and the
// response header is a valid one, and a valid incoming id is kept.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"abc-123", "", "bad id\n", strings.Repeat("a", 65), "ä", "a\r\nX-Evil: 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, incoming string) {
		var seen string
		h := RequestID(&counterReader{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = requestid.From(r.Context())
		}))
		r := httptest.NewRequest("GET", "/", nil)
		r.Header[RequestIDHeader] = []string{incoming}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if !ValidRequestID(seen) || rec.Header().Get(RequestIDHeader) != seen {
			t.Fatalf("incoming %q gave id %q, header %q", incoming, seen, rec.Header().Get(RequestIDHeader))
		}
		for _, c := range seen {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", c) {
				t.Fatalf("id %q holds %q", seen, c)
			}
		}
		if ValidRequestID(incoming) != (seen == incoming) {
			t.Fatalf("incoming %q (valid %v) gave %q", incoming, ValidRequestID(incoming), seen)
		}
	})
}
