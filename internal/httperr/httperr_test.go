package httperr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
		{"unavailable", Unavailable(secret), 503, CodeUnavailable, "service temporarily unavailable", "", "ERROR"},
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
