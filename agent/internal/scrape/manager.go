package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// syntheticSeries is how many series each target adds itself: up,
// scrape_duration_seconds and scrape_samples_scraped. They are always sent
// and take their slots of the budget when the target is added.
const syntheticSeries = 3

// Manager runs the scrape loops of a dyno: one per HTTP target and one per
// in-process gatherer, all sharing the dyno's series budget. It is safe for
// concurrent use; AddGatherer must be called before Run.
type Manager struct {
	opts        Options
	app         Appender
	logger      *slog.Logger
	metrics     *metrics
	limit       *series.Limit
	client      *http.Client
	limitWarned atomic.Bool

	mu      sync.Mutex // covers loops and running
	loops   []*loop
	running bool
}

// NewManager checks opts and builds the loops of its targets. Samples go to
// app; self-metrics are registered with reg (nil: not registered).
func NewManager(opts Options, app Appender, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if opts.Interval <= 0 {
		return nil, errors.New("scrape: interval must be positive")
	}
	if opts.Timeout <= 0 || opts.Timeout > opts.Interval {
		return nil, fmt.Errorf("scrape: timeout %s must be positive and at most the interval %s", opts.Timeout, opts.Interval)
	}
	if app == nil {
		return nil, errors.New("scrape: no appender")
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ErrorLogInterval <= 0 {
		opts.ErrorLogInterval = DefaultErrorLogInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	limit := series.NewLimit(opts.MaxSeries)
	met, err := newMetrics(reg, limit, opts.Dropped)
	if err != nil {
		return nil, fmt.Errorf("scrape: metrics: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableCompression = true // gzip is decoded here, under the body limit
	m := &Manager{
		opts:    opts,
		app:     app,
		logger:  logger.With("component", "scrape"),
		metrics: met,
		limit:   limit,
		client:  &http.Client{Transport: transport},
	}
	for _, t := range opts.Targets {
		l, err := m.newHTTPLoop(t)
		if err != nil {
			return nil, err
		}
		l.limit, l.m = limit, met
		limit.Force(syntheticSeries)
		m.loops = append(m.loops, l)
	}
	return m, nil
}

func (m *Manager) newHTTPLoop(t Target) (*loop, error) {
	if t.Job == "" {
		return nil, errors.New("scrape: target without a job")
	}
	f, err := newHTTPFetcher(m.client, t.URL, m.opts.UserAgent, m.opts.Timeout.Seconds(), m.opts.BodyLimit)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	lb := newLabeler(t.Job, m.opts.Instance, m.opts.Labels, m.opts.Keep, m.opts.Drop)
	l := newLoop(t.Job, f.redacted, f.url.String(), &httpSource{f: f}, lb, m.opts.Interval)
	m.setup(l)
	return l, nil
}

func (m *Manager) setup(l *loop) {
	l.logger = m.logger
	l.now = m.opts.Now
	l.timeout = m.opts.Timeout
	l.logEvery = m.opts.ErrorLogInterval
	l.limitWarned = &m.limitWarned
}

// AddGatherer adds an in-process target scraped like the others, with job as
// its job label (SelfJob for the agent's and the dyno's metrics). Its series
// bypass keep/drop and are always admitted, counting toward the budget.
// Call it before Run.
func (m *Manager) AddGatherer(job string, g prometheus.Gatherer) {
	lb := newLabeler(job, m.opts.Instance, m.opts.Labels, nil, nil)
	l := newLoop(job, "in-process", "in-process/"+job, gatherSource{g: g}, lb, m.opts.Interval)
	m.setup(l)
	l.limit, l.m, l.force = m.limit, m.metrics, true
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		m.logger.Error("gatherer added after Run: ignored", "job", job)
		return
	}
	m.limit.Force(syntheticSeries)
	m.loops = append(m.loops, l)
}

// Run scrapes every target each interval until ctx is done, and returns
// once every loop has stopped. A scrape cut short by ctx appends nothing.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.running = true
	loops := m.loops
	m.mu.Unlock()
	m.logger.Info("scraping", "targets", len(loops), "interval", m.opts.Interval, "timeout", m.opts.Timeout,
		"max_series", m.opts.MaxSeries)
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx, m.opts.Interval, m.app)
		}()
	}
	wg.Wait()
}

// ScrapeOnce scrapes t once through the same fetch, parse and label path, for
// `dynoscope check`. It neither appends, counts, nor touches the budget or
// the running loops. The error says why the target is down (up 0).
func (m *Manager) ScrapeOnce(ctx context.Context, t Target) (Result, error) {
	l, err := m.newHTTPLoop(t)
	if err != nil {
		return Result{}, err
	}
	l.logger = nil
	return l.scrape(ctx)
}

// Status returns the state of every target, in order (HTTP targets first).
func (m *Manager) Status() []TargetStatus {
	m.mu.Lock()
	loops := m.loops
	m.mu.Unlock()
	out := make([]TargetStatus, 0, len(loops))
	for _, l := range loops {
		out = append(out, l.getStatus())
	}
	return out
}
