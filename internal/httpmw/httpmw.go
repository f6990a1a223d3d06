// Package httpmw holds TrustID's HTTP middleware: request ids, the access
// log, Prometheus metrics, panic recovery, a request body limit and security
// headers. New assembles them in the order the service uses; each is also
// usable alone.
//
// Route labels: logs and metrics name a request by its ServeMux pattern
// ("GET /clients/{id}"), never by its path, which may hold tokens or ids and
// would make metric cardinality unbounded. The pattern comes from r.Pattern
// when the middleware runs inside the mux, otherwise from the Router given
// (normally the *http.ServeMux itself); unmatched requests are "unmatched".
package httpmw

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/httpmw/requestid"
)

// Middleware wraps a handler.
type Middleware = func(http.Handler) http.Handler

// Chain wraps h in mws; the first middleware is the outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Router finds the pattern a request matches; *http.ServeMux implements it.
type Router interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// Unmatched is the route label of requests that match no pattern.
const Unmatched = "unmatched"

// route returns the route label of r after it was served.
func route(router Router, r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	if router != nil {
		if _, p := router.Handler(r); p != "" {
			return p
		}
	}
	return Unmatched
}

// DefaultMaxBodyBytes is New's body limit when Config.MaxBodyBytes is zero:
// an upper bound for any request, media uploads included. JSON handlers
// apply their own smaller limit through httperr.DecodeJSON.
const DefaultMaxBodyBytes = 32 << 20

// Config holds the dependencies of the middleware stack New builds.
type Config struct {
	Logger *slog.Logger // required
	// Registry receives the HTTP metrics; nil disables them.
	Registry prometheus.Registerer
	// Router resolves route patterns when the stack wraps the mux from outside.
	Router Router
	// MaxBodyBytes limits every request body; 0 means DefaultMaxBodyBytes,
	// a negative value means no limit.
	MaxBodyBytes int64
	// Rand is the source of generated request ids; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock for durations; nil means time.Now.
	Now func() time.Time
}

// New checks cfg and returns the service's middleware stack, outermost
// first: RequestID, SecurityHeaders, AccessLog, metrics, Recover, MaxBytes.
// Recover runs inside the log and metrics so a panic is counted as a 500.
func New(cfg Config) (Middleware, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("httpmw: config: Logger is required")
	}
	mws := []Middleware{
		RequestID(cfg.Rand),
		SecurityHeaders,
		AccessLog(cfg.Logger, cfg.Router, cfg.Now),
	}
	if cfg.Registry != nil {
		m, err := NewMetrics(cfg.Registry, cfg.Router, cfg.Now)
		if err != nil {
			return nil, err
		}
		mws = append(mws, m.Middleware)
	}
	mws = append(mws, Recover(cfg.Logger))
	switch {
	case cfg.MaxBodyBytes == 0:
		mws = append(mws, MaxBytes(DefaultMaxBodyBytes))
	case cfg.MaxBodyBytes > 0:
		mws = append(mws, MaxBytes(cfg.MaxBodyBytes))
	}
	return func(h http.Handler) http.Handler { return Chain(h, mws...) }, nil
}

// RequestIDHeader carries the request id in requests and responses.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an accepted incoming request id.
const maxRequestIDLen = 64

// ValidRequestID reports whether an incoming request id is sane enough to
// keep: 1 to 64 characters of A-Z a-z 0-9 and . _ : -. Anything else
// (log injection, huge values) is replaced by a generated id.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// RequestID keeps a valid incoming X-Request-Id or generates one (128 bits
// from src, or crypto/rand when src is nil, as 32 hex digits), stores it in
// the request context (read it with requestid.From) and sets it on the
// response.
func RequestID(src io.Reader) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !ValidRequestID(id) {
				id = newID(src)
			}
			w.Header().Set(RequestIDHeader, id)
			next.ServeHTTP(w, r.WithContext(requestid.With(r.Context(), id)))
		})
	}
}

func newID(src io.Reader) string {
	var b [16]byte
	if src != nil {
		if _, err := io.ReadFull(src, b[:]); err == nil {
			return fmt.Sprintf("%x", b)
		}
	}
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return fmt.Sprintf("%x", b)
}

// AccessLog logs one line per request at Info level: method, route pattern,
// status, bytes written, duration and request id. It never logs the path,
// the query string, headers or bodies (they may hold tokens). now may be nil.
func AccessLog(logger *slog.Logger, router Router, now func() time.Time) Middleware {
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			rec := &recorder{ResponseWriter: w}
			defer func() {
				// A panic passing through (no Recover inside) is logged as
				// a 500, then re-raised for net/http to abort the response.
				v := recover()
				status := rec.sent(v != nil)
				logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
					slog.String("method", r.Method),
					slog.String("route", route(router, r)),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", now().Sub(start)),
					slog.String("request_id", requestid.From(r.Context())),
				)
				if v != nil {
					panic(v)
				}
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// Recover turns a panic in next into a 500 "internal" answer through
// httperr (when the response has not started) and logs the panic value and
// stack with the request id. A panic after the response started aborts the
// connection, as net/http would. http.ErrAbortHandler passes through.
func Recover(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &recorder{ResponseWriter: w}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
					slog.String("request_id", requestid.From(r.Context())),
					slog.String("method", r.Method),
					slog.String("route", r.Pattern),
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())),
				)
				if rec.started {
					panic(http.ErrAbortHandler)
				}
				httperr.Write(w, r, nil, httperr.Internal(fmt.Errorf("panic: %v", v)))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// MaxBytes limits request bodies to n bytes: a request declaring a larger
// Content-Length is refused at once with 413 body_too_large, and reads past
// n fail with *http.MaxBytesError (which httperr maps to 413).
func MaxBytes(n int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				httperr.Write(w, r, nil, &http.MaxBytesError{Limit: n})
				return
			}
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// SetSecurityHeaders sets the headers every TrustID response carries:
// no MIME sniffing, no Referer leaving the site (URLs may hold codes), and
// no framing (clickjacking of the login and consent pages).
func SetSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	}
}

// SecurityHeaders is middleware calling SetSecurityHeaders before next, so a
// handler may replace the Content-Security-Policy with a fuller one (which
// should keep frame-ancestors 'none').
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

// recorder captures the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	started bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.started && code >= 200 {
		rec.status, rec.started = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.started {
		rec.status, rec.started = http.StatusOK, true
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Flush() {
	if !rec.started {
		rec.status, rec.started = http.StatusOK, true
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// sent is the status the client got: the one written, else 500 when the
// handler panicked (the server aborts the response) or 200 (net/http sends
// 200 for a handler that wrote nothing).
func (rec *recorder) sent(panicked bool) int {
	switch {
	case rec.started:
		return rec.status
	case panicked:
		return http.StatusInternalServerError
	}
	return http.StatusOK
}
