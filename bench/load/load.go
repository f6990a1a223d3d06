// Package load is TrustID's load generator: a closed loop of workers that
// run a weighted mix of operations (each a real HTTP exchange the caller
// supplies: a token refresh, a certificate verification, a 1:1 face verify,
// a face + spoken-digit login) at a fixed concurrency, per-operation latency
// percentiles and throughput, the CPU the server processes used, and a
// report as JSON and as an SVG chart of latency percentiles against
// throughput. cmd/trustid's TestLoadReport provisions the real binary on
// PostgreSQL and Redis and drives it with this package (README, "Load
// report").
package load

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one kind of request of the mix.
type Op struct {
	Name   string
	Weight int // relative share of the requests
	// Do runs one request; an error counts as a failure (its latency is
	// not in the percentiles).
	Do func(ctx context.Context) error
}

// Level is one closed-loop run: Concurrency workers for Duration, or
// until MaxRequests were started (0: no cap; for operations the service
// rate-limits, such as logins of one citizen).
type Level struct {
	Concurrency int
	Duration    time.Duration
	MaxRequests int
}

// OpStats are one operation's results at one level.
type OpStats struct {
	Name       string  `json:"name"`
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	Throughput float64 `json:"throughput_per_s"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	// FirstError is the first failure's message, for the report.
	FirstError string `json:"first_error,omitempty"`
}

// LevelResult is one level's results.
type LevelResult struct {
	Concurrency int       `json:"concurrency"`
	Seconds     float64   `json:"seconds"`
	Ops         []OpStats `json:"ops"`
	// ServerCPU is the CPU time the server processes used (CPUTime),
	// ServerCPUPerRequest that divided by the requests that succeeded.
	ServerCPU           float64 `json:"server_cpu_s"`
	ServerCPUPerRequest float64 `json:"server_cpu_ms_per_request"`
	LoadAvg             string  `json:"loadavg"`
}

// CPUTime returns the CPU seconds used so far by the server processes
// (ProcCPU over their pids); nil: not measured.
type CPUTime func() float64

// Run runs the mix at each level in turn and returns their results.
// seed makes the mix's order repeatable.
func Run(ctx context.Context, ops []Op, levels []Level, cpu CPUTime, seed uint64) ([]LevelResult, error) {
	total := 0
	for _, o := range ops {
		if o.Weight < 0 || o.Do == nil || o.Name == "" {
			return nil, fmt.Errorf("load: op %q: a name, a weight >= 0 and Do are required", o.Name)
		}
		total += o.Weight
	}
	if total == 0 {
		return nil, fmt.Errorf("load: no op has a weight")
	}
	var out []LevelResult
	for li, l := range levels {
		if l.Concurrency < 1 || l.Duration <= 0 {
			return nil, fmt.Errorf("load: level %+v", l)
		}
		type sample struct {
			op  int
			lat time.Duration
			err error
		}
		var mu sync.Mutex
		var samples []sample
		cpu0 := 0.0
		if cpu != nil {
			cpu0 = cpu()
		}
		lctx, cancel := context.WithTimeout(ctx, l.Duration)
		var started atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for w := range l.Concurrency {
			rng := rand.New(rand.NewPCG(seed, uint64(li*1000+w)))
			wg.Go(func() {
				var local []sample
				for lctx.Err() == nil {
					if n := started.Add(1); l.MaxRequests > 0 && n > int64(l.MaxRequests) {
						break
					}
					k := rng.IntN(total)
					i := 0
					for ; k >= ops[i].Weight; i++ {
						k -= ops[i].Weight
					}
					t := time.Now()
					// The request itself runs to its end (ctx, not lctx):
					// a request cut at the deadline is not a failure.
					err := ops[i].Do(ctx)
					local = append(local, sample{i, time.Since(t), err})
				}
				mu.Lock()
				samples = append(samples, local...)
				mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
		secs := time.Since(start).Seconds()
		r := LevelResult{Concurrency: l.Concurrency, Seconds: round(secs, 2), LoadAvg: loadAvg()}
		okTotal := 0
		for i, o := range ops {
			st := OpStats{Name: o.Name}
			var lats []float64
			for _, s := range samples {
				if s.op != i {
					continue
				}
				if s.err != nil {
					st.Failed++
					if st.FirstError == "" {
						st.FirstError = s.err.Error()
					}
					continue
				}
				st.OK++
				lats = append(lats, float64(s.lat)/float64(time.Millisecond))
			}
			slices.Sort(lats)
			st.Throughput = round(float64(st.OK)/secs, 2)
			st.P50, st.P90, st.P99 = pct(lats, 0.5), pct(lats, 0.9), pct(lats, 0.99)
			if len(lats) > 0 {
				st.Max = round(lats[len(lats)-1], 2)
			}
			okTotal += st.OK
			r.Ops = append(r.Ops, st)
		}
		if cpu != nil {
			r.ServerCPU = round(cpu()-cpu0, 3)
			if okTotal > 0 {
				r.ServerCPUPerRequest = round(1000*r.ServerCPU/float64(okTotal), 3)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// pct is the p-quantile of sorted xs (nearest rank), in ms rounded to 0.01.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return round(xs[max(0, min(i, len(xs)-1))], 2)
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

// loadAvg is /proc/loadavg's first three fields ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ProcCPU returns the CPU seconds (user + system) process pid has used,
// from /proc/PID/stat (Linux; clock ticks of 100 Hz, as on every Linux
// build Go supports).
func ProcCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("load: /proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("load: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return (ut + st) / 100, nil
}
