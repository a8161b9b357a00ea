package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
	"github.com/brainbytesai/dynoscope/agent/internal/dyno"
	"github.com/brainbytesai/dynoscope/agent/internal/logs"
	"github.com/brainbytesai/dynoscope/agent/internal/remotewrite"
	"github.com/brainbytesai/dynoscope/agent/internal/scrape"
	"github.com/brainbytesai/dynoscope/agent/internal/selfmon"
)

var _ scrape.Appender = (*remotewrite.Writer)(nil)

// cmdAgent is the forwarder the buildpack starts beside the app: it runs
// until SIGTERM (or SIGINT), then keeps reading connected tees until they
// close and flushes under DYNOSCOPE_SHUTDOWN_TIMEOUT. It exits 0 whatever the
// configuration: a bad one turns forwarding off, it never restarts in a loop.
func cmdAgent(ctx context.Context, _ []string, environ []string, std stdio) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs) // later signals are ignored until the flush ends

	a := startAgent(ctx, environ, std.errOut)
	a.serveSocket()
	select {
	case sig := <-sigs:
		a.logger.Info("signal received; flushing", "signal", sig.String(), "deadline", a.shutdownTimeout().String())
	case <-ctx.Done():
	}
	deadline := time.Now().Add(a.shutdownTimeout())
	a.stopMetrics(deadline)
	a.shutdown(deadline)
	return 0
}

// agent is the pipeline main wires together: scrape → remote write for
// metrics, capture → Loki for logs, and the status endpoint. Every part is
// optional: a missing URL or a bad configuration leaves it nil. Its methods
// are called from one goroutine, except passthrough.
type agent struct {
	logger *slog.Logger
	errOut io.Writer      // the agent's own stream: its logs and dry-run output
	cfg    *config.Config // nil when the configuration is invalid
	id     dyno.Identity
	reg    *prometheus.Registry

	scrape       *scrape.Manager
	writer       *remotewrite.Writer
	stopScrape   context.CancelFunc
	scrapeDone   chan struct{}
	metricsFlush chan remotewrite.Summary // the Shutdown result, once stopMetrics ran

	logs       *logs.Pipeline
	stopStatus context.CancelFunc
	statusDone chan struct{}
	socketDone chan struct{}
	started    time.Time
	stopOnce   sync.Once
}

// startAgent loads the configuration and starts what it turns on. It never
// fails: whatever can't start is logged once and left off.
func startAgent(ctx context.Context, environ []string, errOut io.Writer) *agent {
	cfg, warnings, err := config.Load(environ)
	level := slog.LevelInfo
	if cfg != nil && err == nil {
		level = cfg.AgentLogLevel
	}
	logger := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level})).With("app", "dynoscope")
	a := &agent{logger: logger, errOut: errOut, started: time.Now()}
	for _, w := range warnings {
		logger.Warn(w)
	}
	if err != nil {
		var me *multierror.Error
		if errors.As(err, &me) {
			for _, e := range me.Errors {
				logger.Error("invalid config var", "err", e)
			}
		}
		logger.Error("configuration is invalid: forwarding is off until it is fixed; the app is not affected")
		return a
	}
	a.cfg = cfg
	if !cfg.EnableMetrics {
		logger.Info("ENABLE_METRICS=false: the agent is off")
		return a
	}

	getenv := getenvFrom(environ)
	a.id = dyno.Identify(cfg, getenv)
	a.reg = selfmon.NewRegistry(version)
	a.reg.MustRegister(dyno.NewCollector(dyno.Options{
		Getenv:        getenv,
		HealthURL:     cfg.HealthURL(),
		HealthTimeout: min(cfg.ScrapeTimeout, dyno.DefaultProbeTimeout),
	}))
	labels := a.labels()

	if cfg.MetricsForwarding() {
		a.startMetrics(labels)
	}
	if cfg.LogForwarding() {
		a.startLogs(ctx, labels)
	}
	if cfg.StatusAddr != "" {
		statusCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stopStatus, a.statusDone = cancel, make(chan struct{})
		go func() {
			defer close(a.statusDone)
			if err := selfmon.Serve(statusCtx, cfg.StatusAddr, a.reg, a.status, logger); err != nil {
				logger.Warn("status server off", "err", err)
			}
		}()
	}
	logger.Info("started", "version", version, "identity", a.id.Labels(),
		"metrics", a.writer != nil, "logs", a.logs != nil, "targets", len(cfg.ScrapeTargets), "dry_run", cfg.DryRun)
	return a
}

// labels are the constant labels of every sample and stream: the identity
// and DYNOSCOPE_LABELS, the identity winning.
func (a *agent) labels() map[string]string {
	labels := make(map[string]string, len(a.cfg.Labels)+5)
	maps.Copy(labels, a.cfg.Labels)
	maps.Copy(labels, a.id.Labels())
	return labels
}

func (a *agent) startMetrics(labels map[string]string) {
	cfg := a.cfg
	m := remotewrite.NewMetrics(a.reg)
	opts := remotewrite.Options{
		URL:           cfg.PrometheusURL,
		User:          cfg.PrometheusUser,
		Password:      cfg.PrometheusPassword,
		UserAgent:     userAgent(),
		QueueMaxBytes: cfg.QueueMaxBytes,
	}
	if cfg.DryRun {
		opts.DryRun = a.errOut
	}
	w, err := remotewrite.New(opts, a.logger, m)
	if err != nil {
		a.logger.Error("metrics forwarding off", "err", err)
		return
	}
	targets := make([]scrape.Target, len(cfg.ScrapeTargets))
	for i, t := range cfg.ScrapeTargets {
		targets[i] = scrape.Target{Job: t.Job, URL: t.URL}
	}
	sm, err := scrape.NewManager(scrape.Options{
		Targets:   targets,
		Interval:  cfg.ScrapeInterval,
		Timeout:   cfg.ScrapeTimeout,
		Labels:    labels,
		Instance:  a.id.Instance,
		Keep:      cfg.MetricsKeep,
		Drop:      cfg.MetricsDrop,
		MaxSeries: cfg.MaxSeries,
		UserAgent: userAgent(),
		Dropped:   m.Dropped,
	}, w, a.logger, a.reg)
	if err != nil {
		a.logger.Error("metrics forwarding off", "err", err)
		return
	}
	sm.AddGatherer(scrape.SelfJob, a.reg)
	if len(targets) == 0 {
		a.logger.Warn("no scrape target (PORT is not set and DYNOSCOPE_SCRAPE_TARGETS is empty): only the dyno's and the agent's own metrics are sent")
	}

	// Remote write runs on a context SIGTERM does not cancel: Shutdown ends it.
	go w.Run(context.Background())
	scrapeCtx, cancel := context.WithCancel(context.Background())
	a.scrape, a.writer, a.stopScrape, a.scrapeDone = sm, w, cancel, make(chan struct{})
	go func() { defer close(a.scrapeDone); sm.Run(scrapeCtx) }()
}

func (a *agent) startLogs(ctx context.Context, labels map[string]string) {
	cfg := a.cfg
	opts := logs.Options{
		URL:           cfg.LokiURL,
		User:          cfg.LokiUser,
		Password:      cfg.LokiPassword,
		Labels:        labels,
		MinLevel:      cfg.LogMinLevel,
		Drop:          cfg.LogDrop,
		Redact:        cfg.LogRedact,
		RateLimit:     cfg.LogRateLimit.PerSecond,
		Burst:         cfg.LogRateLimit.Burst,
		MaxLineBytes:  cfg.LogMaxLineBytes,
		QueueMaxBytes: cfg.LogQueueMaxBytes,
		Multiline:     cfg.LogMultiline,
		Files:         cfg.LogFiles,
	}
	if cfg.DryRun {
		opts.DryRun = a.errOut
	}
	p, err := logs.NewPipeline(opts, a.logger, a.reg)
	if err != nil {
		a.logger.Error("log forwarding off", "err", err)
		return
	}
	p.Start(ctx)
	a.logs = p
}

// serveSocket accepts `dynoscope tee` connections (agent mode only).
func (a *agent) serveSocket() {
	if a.logs == nil {
		return
	}
	a.socketDone = make(chan struct{})
	go func() {
		defer close(a.socketDone)
		// Not ctx: after SIGTERM the agent keeps accepting reconnecting
		// tees until Shutdown's drain deadline.
		if err := a.logs.ServeSocket(context.Background(), a.cfg.Socket); err != nil {
			a.logger.Error("tee socket off: the app's lines are not shipped", "err", err)
		}
	}()
}

func (a *agent) capturesLogs() bool { return a.logs != nil }

// passthrough copies src to dst byte for byte, offering each line to the
// log pipeline. Safe for concurrent use.
func (a *agent) passthrough(dst io.Writer, src io.Reader, stream string) error {
	return a.logs.Passthrough(dst, src, stream)
}

func (a *agent) shutdownTimeout() time.Duration {
	if a.cfg == nil {
		d, _ := time.ParseDuration(config.DefaultShutdownTimeout)
		return d
	}
	return a.cfg.ShutdownTimeout
}

// stopMetrics stops scraping and starts flushing remote write in the
// background, so that the logs, still reading the app's last lines, are not
// held up by it. Called once, at the first signal; shutdown waits for it.
func (a *agent) stopMetrics(deadline time.Time) {
	if a.writer == nil || a.metricsFlush != nil {
		return
	}
	a.metricsFlush = make(chan remotewrite.Summary, 1)
	go func() {
		a.stopScrape()
		<-a.scrapeDone
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		a.metricsFlush <- a.writer.Shutdown(ctx)
	}()
}

// shutdown stops what startAgent started, in reverse flow order, by the
// deadline, and logs one summary line.
func (a *agent) shutdown(deadline time.Time) {
	a.stopOnce.Do(func() {
		a.stopMetrics(deadline)
		attrs := []any{}
		if a.logs != nil {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			start := time.Now()
			sum := a.logs.Shutdown(ctx)
			cancel()
			if a.socketDone != nil {
				<-a.socketDone
			}
			attrs = append(attrs, "logs", sum.String(), "logs_took", time.Since(start).Round(time.Millisecond).String())
		}
		if a.metricsFlush != nil {
			sum := <-a.metricsFlush
			attrs = append(attrs, "samples_sent", sum.Sent, "samples_dropped", sum.DroppedTotal(),
				"dropped_by_reason", fmt.Sprint(sum.Dropped), "metrics_took", sum.Duration.Round(time.Millisecond).String())
		}
		if a.stopStatus != nil {
			a.stopStatus()
			<-a.statusDone
		}
		if a.cfg != nil && a.cfg.EnableMetrics {
			a.logger.Info("stopped", append(attrs, "uptime", time.Since(a.started).Round(time.Second).String())...)
		}
	})
}

// agentStatus is the JSON of the status endpoint's /status.
type agentStatus struct {
	Version     string                `json:"version"`
	Uptime      string                `json:"uptime"`
	Labels      map[string]string     `json:"labels"`
	Targets     []scrape.TargetStatus `json:"targets,omitempty"`
	RemoteWrite *remotewrite.Status   `json:"remote_write,omitempty"`
	Logs        *logs.Status          `json:"logs,omitempty"`
}

func (a *agent) status() any {
	s := agentStatus{Version: version, Uptime: time.Since(a.started).Round(time.Second).String(), Labels: a.labels()}
	if a.scrape != nil {
		s.Targets = a.scrape.Status()
	}
	if a.writer != nil {
		st := a.writer.Status()
		s.RemoteWrite = &st
	}
	if a.logs != nil {
		st := a.logs.Status()
		s.Logs = &st
	}
	return s
}

func userAgent() string { return "dynoscope/" + version }
