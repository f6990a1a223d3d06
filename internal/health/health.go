// Package health owns the service's liveness and readiness answers
// (/healthz, /readyz): readiness runs each dependency's check concurrently
// under its own deadline, so one slow dependency cannot make another look
// down, and reports each by name.
package health

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/httperr"
)

// Check is one dependency of readiness.
type Check struct {
	// Name is the key in the JSON answer, e.g. "store".
	Name string
	// Timeout bounds Probe; zero means one second.
	Timeout time.Duration
	// Probe returns nil when the dependency can serve requests. A probe
	// should exercise what requests need (a write where they write).
	Probe func(ctx context.Context) error
	// Warning, set instead of Probe, is a notice for the operator that
	// does not make the node unready (e.g. the face filing threshold):
	// answered as "warning: <text>" when it returns text, "ok" otherwise.
	Warning func() string
}

// RetryAfter is the Retry-After (seconds) of a "not ready" answer.
const RetryAfter = 2

// Live answers 200 {"status":"ok"} while the process serves HTTP.
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Ready returns a handler that runs every check concurrently, each under
// its own deadline, and answers 200 when all pass or 503 with Retry-After
// naming the failed ones ("unavailable"). Causes are logged, not answered.
func Ready(log *slog.Logger, checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		results := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Go(func() {
				if c.Warning != nil {
					res := "ok"
					if txt := c.Warning(); txt != "" {
						res = "warning: " + txt
					}
					mu.Lock()
					results[c.Name] = res
					mu.Unlock()
					return
				}
				err := run(r.Context(), c)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					results[c.Name] = "unavailable"
					log.WarnContext(r.Context(), "readiness: check failed", "check", c.Name, "err", err)
					return
				}
				results[c.Name] = "ok"
			})
		}
		wg.Wait()
		status := http.StatusOK
		for _, v := range results {
			if v == "unavailable" {
				status = http.StatusServiceUnavailable
			}
		}
		if status != http.StatusOK {
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		}
		_ = httperr.WriteJSON(w, status, results)
	}
}

func run(ctx context.Context, c Check) error {
	t := c.Timeout
	if t <= 0 {
		t = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	return c.Probe(ctx)
}
