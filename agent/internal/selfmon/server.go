package selfmon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server timeouts. WriteTimeout leaves room for a /metrics gather that
// probes the app's health (bounded by dyno.DefaultProbeTimeout).
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	// shutdownTimeout bounds the graceful stop once ctx is done.
	shutdownTimeout = 2 * time.Second
)

// ErrNotLoopback is returned by Serve for an address off loopback.
var ErrNotLoopback = errors.New("not a loopback address")

// Handler serves GET /metrics (g in the Prometheus text or protobuf
// format), GET /status (status() as indented JSON) and GET / (a short
// index). Safe for concurrent use if status is.
func Handler(g prometheus.Gatherer, status func() any) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(status(), "", "  ")
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprint(w, "dynoscope agent\n\n/metrics  the agent's own and the dyno's metrics\n/status   JSON summary of the pipeline\n")
	})
	return mux
}

// Serve runs the status server on addr until ctx is done, then shuts it
// down gracefully (within 2s) and returns nil. An empty addr turns it off
// (returns nil at once). An address off loopback returns an error wrapping
// ErrNotLoopback, before listening. When addr cannot be bound (a busy
// port), Serve logs one warning and returns nil: the status server is a
// convenience, never a reason for the agent to stop.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer, status func() any, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "selfmon")
	if err := config.CheckLoopbackAddr(addr); err != nil {
		return fmt.Errorf("DYNOSCOPE_STATUS_ADDR=%q must be a 127.0.0.1 address (such as %s): %w", addr, config.DefaultStatusAddr, ErrNotLoopback)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		logger.Warn("status server off", "addr", addr, "err", err)
		return nil
	}
	return serve(ctx, ln, Handler(g, status), logger)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("status server listening", "addr", ln.Addr().String())
	select {
	case err := <-done:
		// Serve only returns early on an accept error.
		logger.Warn("status server stopped", "err", err)
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}
