// Package httperr is TrustID's one JSON writer (WriteJSON) and its one
// HTTP error writer for the JSON APIs (OAuth endpoints answer in RFC 6749
// form through the oidc package's fosite-based writer instead; pages draw
// HTML error pages). Handlers return errors; Write maps any error to a
// status, a stable machine code and a client-safe message, and logs the
// internal cause with the request id:
//
//	{"error":{"code":"rate_limited","message":"too many requests","request_id":"..."}}
//
// An *Error carries what the client sees (Status, Code, Message) apart from
// the cause (never shown). Other packages' error types join by implementing
// Answerer. An error that wraps ErrUnavailable (or a dependency's
// connection failure, see IsUnavailable) is a 503 temporarily_unavailable
// with Retry-After: a fault is not a verdict. Anything else is answered
// 500 "internal" with a generic message.
package httperr

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/trustid/trustid/internal/httpmw/requestid"
)

// Stable machine codes. Clients may branch on them; never rename one.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidJSON          = "invalid_json"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodeRateLimited          = "rate_limited"
	// CodeUnavailable is the code of a 503: a dependency (store, ephemeral
	// store) failed; the same word as OAuth's temporarily_unavailable.
	CodeUnavailable = "temporarily_unavailable"
	CodeInternal    = "internal"
)

// ErrUnavailable marks a fault of a dependency: an error wrapping it is
// answered 503 temporarily_unavailable with a Retry-After of
// DefaultRetryAfter, never a verdict such as 401 or 404.
var ErrUnavailable = errors.New("temporarily unavailable")

// DefaultRetryAfter is the Retry-After of a 503 whose error names none.
const DefaultRetryAfter = time.Second

// IsUnavailable reports whether err is a dependency's fault rather than a
// bug or a verdict: it wraps ErrUnavailable, a network failure (net.Error:
// refused or reset connections and timeouts of the store's or Redis's
// client), database/sql's lost connections, context.DeadlineExceeded (a
// dependency did not answer in time), or an error with a method
// Unavailable() bool that returns true (how a backend marks its faults,
// e.g. ephemeral.ErrUnavailable for a Redis that refuses writes, without
// importing this package).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return true
	}
	return errors.Is(err, ErrUnavailable) || errors.As(err, &ne) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded)
}

// Answerer is implemented by error types of other packages that carry
// their own client answer (a status, a stable code and a client-safe
// message), such as certs.Error. From uses HTTPError's answer with the
// whole error as the cause.
type Answerer interface {
	error
	HTTPError() *Error
}

// Error is an error with what the client may see kept apart from its cause.
// Treat values as immutable: the With* methods return copies.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable machine code (one of the Code* constants or another snake_case word)
	Message string // client-safe text; empty means http.StatusText(Status)
	// Cause is the internal error, logged but never sent to the client.
	Cause error
	// RetryAfter, when positive, is sent as a Retry-After header (seconds,
	// rounded up).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.clientMessage())
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause, so errors.Is/As see through an *Error.
func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) clientMessage() string {
	if e.Message != "" {
		return e.Message
	}
	return http.StatusText(e.Status)
}

// WithCause returns a copy of e with cause attached.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// New returns an error with the given status, code and client message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap returns an error answering status/code/message whose cause is cause.
func Wrap(cause error, status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, Cause: cause}
}

// BadRequest is a 400 with a specific code (e.g. CodeInvalidRequest).
func BadRequest(code, message string) *Error { return New(http.StatusBadRequest, code, message) }

// InvalidRequest is a 400 invalid_request.
func InvalidRequest(message string) *Error { return BadRequest(CodeInvalidRequest, message) }

// Unauthorized is a 401. Authentication failures should all use the same
// message so that callers cannot tell which factor failed.
func Unauthorized(message string) *Error {
	return New(http.StatusUnauthorized, CodeUnauthorized, message)
}

// Forbidden is a 403.
func Forbidden(message string) *Error { return New(http.StatusForbidden, CodeForbidden, message) }

// NotFound is a 404.
func NotFound(message string) *Error { return New(http.StatusNotFound, CodeNotFound, message) }

// MethodNotAllowed is a 405.
func MethodNotAllowed() *Error {
	return New(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed")
}

// Conflict is a 409.
func Conflict(message string) *Error { return New(http.StatusConflict, CodeConflict, message) }

// RateLimited is a 429 with a Retry-After of retryAfter (rounded up to whole
// seconds, at least one).
func RateLimited(retryAfter time.Duration) *Error {
	e := New(http.StatusTooManyRequests, CodeRateLimited, "too many requests")
	e.RetryAfter = max(retryAfter, time.Nanosecond)
	return e
}

// Unavailable is a 503 (a dependency is down) with a Retry-After of
// DefaultRetryAfter; cause is logged.
func Unavailable(cause error) *Error {
	e := Wrap(cause, http.StatusServiceUnavailable, CodeUnavailable, "service temporarily unavailable")
	e.RetryAfter = DefaultRetryAfter
	return e
}

// Internal is a 500; cause is logged, the client sees a generic message.
func Internal(cause error) *Error {
	return Wrap(cause, http.StatusInternalServerError, CodeInternal, "internal error")
}

// From returns err as an *Error: the first *Error in its chain, else the
// answer of the first Answerer (with err as the cause), 413 body_too_large
// for an *http.MaxBytesError, 503 temporarily_unavailable when
// IsUnavailable(err), and 500 internal with err as the cause for anything
// else. A 500 whose cause is a dependency's fault becomes that 503; a 503
// without a Retry-After gets DefaultRetryAfter.
func From(err error) *Error {
	var he *Error
	var a Answerer
	switch {
	case errors.As(err, &he):
	case errors.As(err, &a):
		he = a.HTTPError()
		if he == nil {
			he = Internal(err)
		} else {
			he = he.WithCause(err)
		}
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit, err)
		}
		he = Internal(err)
	}
	if he.Status == http.StatusInternalServerError && IsUnavailable(err) {
		return Unavailable(err)
	}
	if he.Status == http.StatusServiceUnavailable && he.RetryAfter <= 0 {
		c := *he
		c.RetryAfter = DefaultRetryAfter
		return &c
	}
	return he
}

func tooLarge(limit int64, cause error) *Error {
	return Wrap(cause, http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
		fmt.Sprintf("request body is larger than %d bytes", limit))
}

type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Write answers err as JSON and logs it: at Error level with the cause for
// 5xx, at Info level for 4xx. logger may be nil (nothing is logged). The
// log line carries the request id, method and route pattern, never the
// path, query or body, which may hold tokens.
func Write(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	he := From(err)
	logError(r, logger, he)
	writeError(w, r, he)
}

func logError(r *http.Request, logger *slog.Logger, he *Error) {
	if logger == nil {
		return
	}
	level := slog.LevelInfo
	if he.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Int("status", he.Status),
		slog.String("code", he.Code),
		slog.String("request_id", requestid.From(r.Context())),
		slog.String("method", r.Method),
		slog.String("route", r.Pattern),
	}
	if he.Cause != nil {
		attrs = append(attrs, slog.String("err", he.Cause.Error()))
	}
	logger.LogAttrs(r.Context(), level, "request error", attrs...)
}

// errorHeaders sets what every error answer carries, whatever its body.
func errorHeaders(w http.ResponseWriter, he *Error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if he.RetryAfter > 0 {
		secs := int64((he.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
}

func writeError(w http.ResponseWriter, r *http.Request, he *Error) {
	errorHeaders(w, he)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(he.Status)
	if r.Method == http.MethodHead {
		return
	}
	b, _ := json.Marshal(body{Error: bodyError{Code: he.Code, Message: he.clientMessage(), RequestID: requestid.From(r.Context())}})
	_, _ = w.Write(append(b, '\n'))
}

// WriteJSON is TrustID's one JSON writer: it answers status with v encoded
// as JSON (Content-Type application/json; charset=utf-8, nosniff, and
// Cache-Control no-store unless the handler set its own). An error
// encoding v is returned before anything is written (a 500 through Handle);
// an error writing the body means the client went away.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return Internal(fmt.Errorf("httperr: encode response: %w", err))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// HandlerFunc is an HTTP handler that returns an error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts fn to an http.Handler: an error fn returns is answered with
// Write, unless fn already started the response, in which case it is only
// logged (the status line is gone).
func Handle(logger *slog.Logger, fn HandlerFunc) http.Handler {
	return handler{log: logger, fn: fn}
}

// PageFunc draws the answer to an error From has mapped and the handler
// has logged (an HTML error page); Cache-Control and Retry-After are set.
type PageFunc func(w http.ResponseWriter, r *http.Request, e *Error)

// HandlePage is Handle for routes of HTML pages: the mapped error is drawn
// by page instead of written as JSON. page may answer JSON itself (for a
// page's XHR calls) with Write and a nil logger.
func HandlePage(logger *slog.Logger, fn HandlerFunc, page PageFunc) http.Handler {
	return handler{log: logger, fn: fn, page: page}
}

type handler struct {
	log  *slog.Logger
	fn   HandlerFunc
	page PageFunc
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &tracker{ResponseWriter: w}
	err := h.fn(tw, r)
	if err == nil {
		return
	}
	if !tw.started {
		he := From(err)
		logError(r, h.log, he)
		if h.page == nil {
			writeError(w, r, he)
			return
		}
		errorHeaders(w, he)
		h.page(w, r, he)
		return
	}
	if h.log != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "error after response started",
			slog.String("request_id", requestid.From(r.Context())),
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.String("err", err.Error()))
	}
}

// tracker records whether the response was started. Unwrap lets
// http.ResponseController reach the underlying writer (Flush, deadlines).
type tracker struct {
	http.ResponseWriter
	started bool
}

func (t *tracker) WriteHeader(code int) {
	// 1xx informational responses do not start the final response.
	if code >= 200 {
		t.started = true
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *tracker) Write(b []byte) (int, error) {
	t.started = true
	return t.ResponseWriter.Write(b)
}

func (t *tracker) Flush() {
	t.started = true
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *tracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }
