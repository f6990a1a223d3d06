package httperr

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/httpmw/requestid"
)

type wireError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// answerer is another package's error type carrying its own answer; with
// a nil cause its HTTPError is nil (a bug, answered 500).
type answerer struct{ cause error }

func (a answerer) Error() string { return fmt.Sprintf("domain refusal: %v", a.cause) }
func (a answerer) Unwrap() error { return a.cause }
func (a answerer) HTTPError() *Error {
	if a.cause == nil {
		return nil
	}
	return New(http.StatusUnprocessableEntity, "domain_refusal", "the domain says no")
}

func decodeWire(t *testing.T, rec *httptest.ResponseRecorder) wireError {
	t.Helper()
	var we wireError
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&we); err != nil {
		t.Fatalf("response body is not the error JSON: %v", err)
	}
	return we
}

func TestWrite(t *testing.T) {
	secret := errors.New("pq: password authentication failed for user trustid")
	cases := []struct {
		name        string
		err         error
		wantStatus  int
		wantCode    string
		wantMessage string
		wantRetry   string
		wantLevel   string
	}{
		{"unknown error", secret, 500, CodeInternal, "internal error", "", "ERROR"},
		{"wrapped unknown", fmt.Errorf("store: get: %w", secret), 500, CodeInternal, "internal error", "", "ERROR"},
		{"internal", Internal(secret), 500, CodeInternal, "internal error", "", "ERROR"},
		{"unavailable", Unavailable(secret), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"sentinel unavailable", fmt.Errorf("store: get: %w", errors.Join(ErrUnavailable, secret)), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"connection refused", fmt.Errorf("redis: get: %w: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, secret), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"lost sql connection", fmt.Errorf("%w: %w", driver.ErrBadConn, secret), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"dependency timeout", fmt.Errorf("ping: %w: %w", context.DeadlineExceeded, secret), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"internal over a fault", Internal(fmt.Errorf("%w: %w", ErrUnavailable, secret)), 503, CodeUnavailable, "service temporarily unavailable", "1", "ERROR"},
		{"verdict over a fault stays", Unauthorized("authentication failed").WithCause(fmt.Errorf("%w: %w", ErrUnavailable, secret)), 401, CodeUnauthorized, "authentication failed", "", "INFO"},
		{"503 with its own retry", &Error{Status: 503, Code: "stale", Message: "stale", Cause: secret, RetryAfter: 30 * time.Second}, 503, "stale", "stale", "30", "ERROR"},
		{"503 without retry gets one", &Error{Status: 503, Code: "stale", Message: "stale", Cause: secret}, 503, "stale", "stale", "1", "ERROR"},
		{"answerer", fmt.Errorf("certs: verify: %w", answerer{secret}), 422, "domain_refusal", "the domain says no", "", "INFO"},
		{"nil answer", answerer{nil}, 500, CodeInternal, "internal error", "", "ERROR"},
		{"not found", NotFound("no such client"), 404, CodeNotFound, "no such client", "", "INFO"},
		{"empty message", New(http.StatusForbidden, CodeForbidden, ""), 403, CodeForbidden, "Forbidden", "", "INFO"},
		{"wrapped httperr", fmt.Errorf("authn: %w", Unauthorized("authentication failed").WithCause(secret)), 401, CodeUnauthorized, "authentication failed", "", "INFO"},
		{"rate limited", RateLimited(1500 * time.Millisecond), 429, CodeRateLimited, "too many requests", "2", "INFO"},
		{"rate limited tiny", RateLimited(0), 429, CodeRateLimited, "too many requests", "1", "INFO"},
		{"max bytes", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), 413, CodeBodyTooLarge, "request body is larger than 10 bytes", "", "INFO"},
		{"bad request", InvalidRequest("purpose is required"), 400, CodeInvalidRequest, "purpose is required", "", "INFO"},
		{"conflict", Conflict("already revoked"), 409, CodeConflict, "already revoked", "", "INFO"},
		{"method", MethodNotAllowed(), 405, CodeMethodNotAllowed, "method not allowed", "", "INFO"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
			r := httptest.NewRequest("GET", "/x?token=SECRET-TOKEN", nil)
			r = r.WithContext(requestid.With(r.Context(), "req-1"))
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Length", "999")
			Write(rec, r, logger, c.err)

			if rec.Code != c.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, c.wantStatus)
			}
			h := rec.Header()
			if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing no-store/nosniff headers: %v", h)
			}
			if h.Get("Content-Length") != "" {
				t.Error("stale Content-Length kept")
			}
			if got := h.Get("Retry-After"); got != c.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, c.wantRetry)
			}
			raw := rec.Body.String()
			we := decodeWire(t, rec)
			if we.Error.Code != c.wantCode || we.Error.Message != c.wantMessage || we.Error.RequestID != "req-1" {
				t.Errorf("body = %+v, want code %q message %q request id req-1", we.Error, c.wantCode, c.wantMessage)
			}
			if strings.Contains(raw, "password") {
				t.Errorf("cause leaked to the client: %s", raw)
			}

			var line map[string]any
			if err := json.Unmarshal(logBuf.Bytes(), &line); err != nil {
				t.Fatalf("log line: %v: %q", err, logBuf.String())
			}
			if line["level"] != c.wantLevel || line["request_id"] != "req-1" || line["code"] != c.wantCode {
				t.Errorf("log line = %v", line)
			}
			if errors.Is(c.err, secret) && !strings.Contains(fmt.Sprint(line["err"]), "password authentication failed") {
				t.Errorf("cause not logged: %v", line)
			}
			if strings.Contains(logBuf.String(), "SECRET-TOKEN") {
				t.Error("query string logged")
			}
		})
	}
}

func TestWriteHeadAndNilLogger(t *testing.T) {
	r := httptest.NewRequest("HEAD", "/", nil)
	rec := httptest.NewRecorder()
	Write(rec, r, nil, NotFound("x"))
	if rec.Code != 404 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: status %d body %q; want 404 with no body", rec.Code, rec.Body.String())
	}
	r = httptest.NewRequest("GET", "/", nil)
	rec = httptest.NewRecorder()
	Write(rec, r, nil, errors.New("boom"))
	if we := decodeWire(t, rec); we.Error.RequestID != "" || rec.Code != 500 {
		t.Fatalf("without a request id: %d %+v", rec.Code, we)
	}
	if strings.Contains(rec.Body.String(), "request_id") {
		t.Error("empty request_id should be omitted")
	}
}

// markedFault is how a backend marks its faults without importing httperr.
type markedFault struct{ down bool }

func (markedFault) Error() string       { return "OOM command not allowed" }
func (m markedFault) Unavailable() bool { return m.down }

func TestIsUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"not found", fmt.Errorf("get: %w", errors.New("store: not found")), false},
		{"canceled by the client", context.Canceled, false},
		{"sentinel", fmt.Errorf("a: %w", ErrUnavailable), true},
		{"net op error", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"dns error", &net.DNSError{Err: "no such host", IsTimeout: true}, true},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), true},
		{"bad conn", driver.ErrBadConn, true},
		{"marked by a backend", fmt.Errorf("redis: set: %w", markedFault{true}), true},
		{"marked false", markedFault{false}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsUnavailable(c.err); got != c.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	cases := []struct {
		name, presetCache string
		v                 any
		wantStatus        int
		wantBody          string
		wantCache         string
		wantErr           bool
	}{
		{"object", "", map[string]int{"n": 1}, 201, "{\"n\":1}\n", "no-store", false},
		{"handler's own caching kept", "public, max-age=300", []string{"a"}, 200, "[\"a\"]\n", "public, max-age=300", false},
		{"unencodable", "", math.Inf(1), 0, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Length", "99")
			if c.presetCache != "" {
				rec.Header().Set("Cache-Control", c.presetCache)
			}
			err := WriteJSON(rec, max(c.wantStatus, 200), c.v)
			if c.wantErr {
				var he *Error
				if !errors.As(err, &he) || he.Status != 500 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
					t.Fatalf("err %v, body %q: want a 500 *Error before anything is written", err, rec.Body.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := rec.Header()
			if rec.Code != c.wantStatus || rec.Body.String() != c.wantBody || h.Get("Cache-Control") != c.wantCache ||
				h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Length") != "" {
				t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), h)
			}
		})
	}
}

func TestHandlePage(t *testing.T) {
	var logBuf bytes.Buffer
	page := func(w http.ResponseWriter, r *http.Request, e *Error) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, "<p>%s</p>", e.Code)
	}
	h := HandlePage(slog.New(slog.NewTextHandler(&logBuf, nil)), func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("consents: %w", ErrUnavailable)
	}, page)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != 503 || rec.Body.String() != "<p>"+CodeUnavailable+"</p>" || rec.Header().Get("Retry-After") != "1" ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("page answer %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	if !strings.Contains(logBuf.String(), "request error") || !strings.Contains(logBuf.String(), "consents") {
		t.Fatalf("not logged: %q", logBuf.String())
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	e := Internal(cause)
	if !errors.Is(e, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	base := NotFound("x")
	withCause := base.WithCause(cause)
	if base.Cause != nil || withCause.Cause != cause {
		t.Error("WithCause mutated the original or lost the cause")
	}
	if !strings.Contains(e.Error(), "cause") || !strings.Contains(e.Error(), CodeInternal) {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestHandle(t *testing.T) {
	cases := []struct {
		name       string
		fn         HandlerFunc
		wantStatus int
		wantBody   string
		wantLog    string
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) error {
			_, _ = w.Write([]byte("fine"))
			return nil
		}, 200, "fine", ""},
		{"error before writing", func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("X-Partial", "1")
			return NotFound("nope")
		}, 404, `"code":"not_found"`, "request error"},
		{"error after writing", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("partial"))
			return errors.New("stream broke")
		}, 202, "partial", "error after response started"},
		{"flush starts the response", func(w http.ResponseWriter, r *http.Request) error {
			w.(http.Flusher).Flush()
			return errors.New("late")
		}, 200, "", "error after response started"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			h := Handle(slog.New(slog.NewTextHandler(&logBuf, nil)), c.fn)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != c.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, c.wantStatus)
			}
			if !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Errorf("body = %q, want it to contain %q", rec.Body.String(), c.wantBody)
			}
			if c.wantLog == "" && logBuf.Len() != 0 || !strings.Contains(logBuf.String(), c.wantLog) {
				t.Errorf("log = %q, want %q", logBuf.String(), c.wantLog)
			}
		})
	}
}

func TestHandleResponseController(t *testing.T) {
	h := Handle(nil, func(w http.ResponseWriter, r *http.Request) error {
		return http.NewResponseController(w).Flush()
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !rec.Flushed {
		t.Fatal("ResponseController could not reach the underlying writer")
	}
}

func ExampleHandle() {
	mux := http.NewServeMux()
	mux.Handle("GET /clients/{id}", Handle(slog.New(slog.DiscardHandler), func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("id") != "known" {
			return NotFound("no such client")
		}
		_, err := w.Write([]byte("ok"))
		return err
	}))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/clients/other", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 404 {"error":{"code":"not_found","message":"no such client"}}
}
