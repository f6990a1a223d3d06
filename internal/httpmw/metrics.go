package httpmw

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts and times HTTP requests by method, route pattern and
// status on an explicit registry:
//
//	trustid_http_requests_total{method,route,status}
//	trustid_http_request_duration_seconds{method,route,status}
//	trustid_http_requests_in_flight
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	router   Router
	now      func() time.Time
}

// NewMetrics registers the HTTP metrics on reg. router resolves route
// patterns when the middleware wraps the mux from outside (see the package
// doc); now may be nil (time.Now).
func NewMetrics(reg prometheus.Registerer, router Router, now func() time.Time) (*Metrics, error) {
	if now == nil {
		now = time.Now
	}
	labels := []string{"method", "route", "status"}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustid", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by method, route pattern and status.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "trustid", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request latency, by method, route pattern and status.",
			// Up to 30 s: face and liveness checks on uploaded clips are slow.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "trustid", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		router: router,
		now:    now,
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpmw: register metrics: %w", err)
		}
	}
	return m, nil
}

// knownMethods bounds the method label; anything else is "OTHER".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "OTHER"
}

// Middleware records metrics for each request served by next.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.now()
		m.inFlight.Inc()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			v := recover()
			m.inFlight.Dec()
			lv := []string{methodLabel(r.Method), route(m.router, r), strconv.Itoa(rec.sent(v != nil))}
			m.requests.WithLabelValues(lv...).Inc()
			m.duration.WithLabelValues(lv...).Observe(m.now().Sub(start).Seconds())
			if v != nil {
				panic(v)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}
