package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/trustid/trustid/authn/filing"
	"github.com/trustid/trustid/internal/health"
)

func runServe(ctx context.Context, args []string) error {
	return appCommand(ctx, "serve", args, nil, func(a *app) error { return serve(ctx, a) })
}

// serve runs the HTTP service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, a *app) error {
	tuneGC(a.cfg.Limits, os.Getenv, os.ReadFile, a.log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	faces, err := filing.New(filing.Config{Templates: a.store.Templates(), Logger: a.log.With("area", "filing"), Metrics: reg})
	if err != nil {
		return err
	}
	go faces.Run(ctx)
	mountHealth(mux, a, health.Check{Name: "face_filing", Warning: faces.Warning})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if err := mountFeatures(ctx, a, mux, reg); err != nil {
		return err
	}
	handler, err := wrapHTTP(a, mux, reg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       a.cfg.Limits.ReadTimeout,
		WriteTimeout:      a.cfg.Limits.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if a.cfg.DebugListen != "" {
		stop, err := serveProfiler(a.cfg.DebugListen)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		a.log.Info("profiler serving", "addr", a.cfg.DebugListen)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("trustid serving", "addr", ln.Addr().String(), "issuer", a.cfg.Issuer,
		"storage", a.cfg.Storage.Driver, "ephemeral", a.cfg.Ephemeral.Driver, "dev", a.cfg.Dev)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, let in-flight requests finish.
	a.log.Info("shutting down", "grace", a.cfg.Limits.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Limits.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// mountHealth adds /healthz (the process answers) and /readyz: the store
// answers a ping and the ephemeral store takes a write, each under its own
// deadline (a Redis that refuses writes is not ready); notices (warnings
// that leave the node ready, such as the face filing threshold) are added.
func mountHealth(mux *http.ServeMux, a *app, notices ...health.Check) {
	mux.HandleFunc("GET /healthz", health.Live)
	mux.Handle("GET /readyz", health.Ready(a.log, append([]health.Check{
		{Name: "store", Timeout: 2 * time.Second, Probe: a.store.Ping},
		{Name: "ephemeral", Timeout: time.Second, Probe: func(ctx context.Context) error {
			return a.eph.Set(ctx, "readyz:probe", []byte("1"), 10*time.Second)
		}},
	}, notices...)...))
}

func runMigrate(ctx context.Context, args []string) error {
	return appCommand(ctx, "migrate", args, nil, func(a *app) error {
		if err := a.store.Migrate(ctx); err != nil {
			return err
		}
		a.log.Info("migrations applied", "storage", a.cfg.Storage.Driver)
		return nil
	})
}

// serveProfiler serves net/http/pprof on addr (config.File.DebugListen,
// loopback only) until stop is called.
func serveProfiler(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
