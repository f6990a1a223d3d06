// Package filing watches the number of people whose face templates TrustID
// stores against the filing threshold of the face-recognition measures
// (人脸识别技术应用安全管理办法, CAC and MPS, in force 2025-06-01): a
// processor holding the face data of 100,000 or more people files with the
// provincial cyberspace regulator. It exports the number as a metric, logs
// one warning line when the number crosses the threshold, and gives
// readiness a warning text while it is at or above it. Filing itself is
// the operator's act; the service only makes sure nobody misses the moment.
package filing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Threshold is the number of people at which filing is due.
const Threshold = 100000

// Counter counts the citizens with at least one stored face template
// (store.TemplateStore satisfies it).
type Counter interface {
	CountCitizens(ctx context.Context) (int64, error)
}

// Config holds the watcher's dependencies.
type Config struct {
	Templates Counter
	Logger    *slog.Logger
	// Metrics, when set, receives trustid_face_template_people.
	Metrics prometheus.Registerer
	// Threshold defaults to the measures' 100,000 (smaller in tests).
	Threshold int64
	// Interval between counts, default 10 minutes.
	Interval time.Duration
}

// Watcher counts and warns. Safe for concurrent use.
type Watcher struct {
	cfg   Config
	gauge prometheus.Gauge

	mu    sync.Mutex
	last  int64
	known bool
}

// New checks cfg and registers the metric.
func New(cfg Config) (*Watcher, error) {
	if cfg.Templates == nil || cfg.Logger == nil {
		return nil, errors.New("filing: Templates and Logger are required")
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = Threshold
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	w := &Watcher{cfg: cfg, gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trustid_face_template_people",
		Help: "People whose face templates are stored (the face measures' filing threshold is 100,000).",
	})}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(w.gauge); err != nil {
			return nil, fmt.Errorf("filing: metric: %w", err)
		}
	}
	return w, nil
}

// Metric is the gauge (for tests and for registries built later).
func (w *Watcher) Metric() prometheus.Gauge { return w.gauge }

// Check counts now, updates the metric and logs a crossing of the
// threshold (upwards, or at the first count when already above).
func (w *Watcher) Check(ctx context.Context) (int64, error) {
	n, err := w.cfg.Templates.CountCitizens(ctx)
	if err != nil {
		return 0, fmt.Errorf("filing: count: %w", err)
	}
	w.gauge.Set(float64(n))
	w.mu.Lock()
	prev, known := w.last, w.known
	w.last, w.known = n, true
	w.mu.Unlock()
	t := w.cfg.Threshold
	switch {
	case n >= t && (!known || prev < t):
		w.cfg.Logger.WarnContext(ctx, "face data filing threshold reached: file with the provincial cyberspace regulator",
			"people_with_face_templates", n, "threshold", t)
	case n < t && known && prev >= t:
		w.cfg.Logger.InfoContext(ctx, "face data below the filing threshold again", "people_with_face_templates", n, "threshold", t)
	}
	return n, nil
}

// Warning is readiness's text while the last count is at or above the
// threshold, "" otherwise.
func (w *Watcher) Warning() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.known || w.last < w.cfg.Threshold {
		return ""
	}
	return fmt.Sprintf("%d people have face templates stored (filing threshold %d): file with the provincial regulator", w.last, w.cfg.Threshold)
}

// Run counts at start and every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	for {
		if _, err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("filing: count failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
