// Command demoapp is the small web app that dynoscope's demo, local stack,
// tests and benchmarks run under the agent. It behaves like a typical Heroku
// web app: it listens on $PORT, serves /health and /metrics, and logs one JSON
// line per request with a level.
//
// Environment:
//
//	PORT           listen port (default 5000)
//	ENVIRONMENT    reported by /health (else NODE_ENV, else development)
//	DEMO_TRAFFIC   "true": request its own pages a few times a second
//	DEMO_SERIES    N: expose N extra gauge series (demo_load_series), for load tests
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	os.Exit(run(os.Getenv, os.Stdout))
}

func run(getenv func(string) string, stdout io.Writer) int {
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	port := getenv("PORT")
	if port == "" {
		port = "5000"
	}
	env := getenv("ENVIRONMENT")
	if env == "" {
		env = getenv("NODE_ENV")
	}
	if env == "" {
		env = "development"
	}

	reg := prometheus.NewRegistry()
	app := newApp(env, logger, reg)
	if n, err := strconv.Atoi(getenv("DEMO_SERIES")); err == nil && n > 0 {
		registerLoadSeries(reg, n)
	}

	srv := &http.Server{Addr: ":" + port, Handler: app.routes(reg), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("listening", "port", port, "environment", env)
	if getenv("DEMO_TRAFFIC") == "true" {
		go selfTraffic(ctx, "http://127.0.0.1:"+port)
	}

	select {
	case err := <-errc:
		logger.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Warn("received SIGTERM, shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	logger.Info("shutdown complete")
	return 0
}

type app struct {
	env      string
	logger   *slog.Logger
	duration *prometheus.HistogramVec
	requests atomic.Uint64
}

func newApp(env string, logger *slog.Logger, reg prometheus.Registerer) *app {
	a := &app{env: env, logger: logger}
	// The name, labels and buckets of Node's express-prom-bundle, which the
	// dashboards assume.
	a.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "duration histogram of http responses labeled with: status_code, method, path",
		Buckets: []float64{0.003, 0.03, 0.1, 0.3, 1.5, 10},
	}, []string{"status_code", "method", "path"})
	reg.MustRegister(a.duration)
	return a
}

func (a *app) routes(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "dynoscope demo app: try /api/ask, /boom, /health, /metrics")
	})
	mux.HandleFunc("GET /api/ask", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond) // some work
		writeJSON(w, http.StatusOK, map[string]any{"answer": 42})
	})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "boom"})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "environment": a.env})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return a.instrument(mux)
}

// instrument times every request but /metrics, and logs it at a level that
// follows its status: the shape pino-http and morgan give Node apps.
func (a *app) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if r.URL.Path == "/metrics" {
			return
		}
		elapsed := time.Since(start)
		path := r.URL.Path
		if rec.status == http.StatusNotFound {
			path = "other" // keep the path label bounded
		}
		a.duration.WithLabelValues(strconv.Itoa(rec.status), r.Method, path).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case rec.status >= 400:
			level = slog.LevelWarn
		case r.URL.Path == "/health":
			level = slog.LevelDebug
		}
		id := a.requests.Add(1)
		a.logger.Log(r.Context(), level, "request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", float64(elapsed.Microseconds())/1000, "request_id", fmt.Sprintf("req-%06d", id))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// registerLoadSeries exposes n gauge series, for load tests of the agent.
func registerLoadSeries(reg prometheus.Registerer, n int) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "demo_load_series",
		Help: "Synthetic series for load tests (DEMO_SERIES).",
	}, []string{"shard", "series"})
	reg.MustRegister(g)
	for i := range n {
		g.WithLabelValues(strconv.Itoa(i%100), strconv.Itoa(i)).Set(float64(i))
	}
}

// selfTraffic requests the app's own pages until ctx ends: mostly /api/ask,
// some /health, and now and then /boom, so every panel has data.
func selfTraffic(ctx context.Context, base string) {
	client := &http.Client{Timeout: 5 * time.Second}
	paths := []string{"/api/ask", "/api/ask", "/api/ask", "/health", "/", "/boom"}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		resp, err := client.Get(base + paths[rand.IntN(len(paths))])
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
