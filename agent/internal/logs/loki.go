package logs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grafana/loki-client-go/loki"
	"github.com/grafana/loki-client-go/pkg/backoff"
	"github.com/grafana/loki-client-go/pkg/urlutil"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
)

// LokiSender ships entries with grafana/loki-client-go (snappy protobuf,
// basic auth, its own batching and fixed backoff). It works around the
// client's traps: Handle blocks while a batch is retried (the pipeline's
// queue sits in front), the client's promtail_* metrics live in the global
// registry (read here, re-exported by the pipeline under dynoscope names),
// and its go-kit logger goes to our slog on stderr. Send is called from one
// goroutine; Stats and Stop are safe for concurrent use.
type LokiSender struct {
	client *loki.Client
	host   string
	logger *slog.Logger

	mu       sync.Mutex // covers base, drop attribution, lastWarn, lastGaveUp and gaveUpHeld
	base     promtailCounts
	status   int     // status of the latest batch the client gave up on
	dropBase float64 // dropped_entries when that happened
	pending  bool
	rejected float64
	retryEx  float64
	lastWarn time.Time
	// lastGaveUp is when a given-up batch was last logged; gaveUpHeld counts
	// those not logged since.
	lastGaveUp time.Time
	gaveUpHeld int
}

var (
	_ Sender        = (*LokiSender)(nil)
	_ statsReporter = (*LokiSender)(nil)
)

// promtailCounts are the loki-client-go counters of one host.
type promtailCounts struct{ sentEntries, sentBytes, droppedEntries float64 }

// NewLokiSender starts a loki-client-go client for opts.URL.
func NewLokiSender(opts Options, logger *slog.Logger) (*LokiSender, error) {
	opts.setDefaults()
	if opts.URL == nil {
		return nil, fmt.Errorf("loki: no URL")
	}
	s := &LokiSender{host: opts.URL.Host, logger: logger}
	s.base = s.read()
	cfg := loki.Config{
		URL:       urlutil.URLValue{URL: opts.URL},
		BatchWait: opts.BatchWait,
		BatchSize: opts.BatchBytes,
		Timeout:   opts.SendTimeout,
		BackoffConfig: backoff.BackoffConfig{
			MinBackoff: opts.MinBackoff,
			MaxBackoff: opts.MaxBackoff,
			MaxRetries: opts.MaxRetries,
		},
		Client: promconfig.DefaultHTTPClientConfig,
	}
	// HTTPS_PROXY and NO_PROXY apply as they do to remote write (Go's
	// http.ProxyFromEnvironment); the library's default ignores them.
	cfg.Client.ProxyFromEnvironment = true
	if opts.User != "" || opts.Password != "" {
		cfg.Client.BasicAuth = &promconfig.BasicAuth{Username: opts.User, Password: promconfig.Secret(opts.Password)}
	}
	c, err := loki.NewWithLogger(cfg, kitLogger{s})
	if err != nil {
		return nil, fmt.Errorf("loki %s: %w", opts.URL.Redacted(), err)
	}
	s.client = c
	return s, nil
}

// Send hands e to the client. It blocks while the client sends or retries
// a batch.
func (s *LokiSender) Send(e Entry) error {
	if len(e.Metadata) == 0 {
		return s.client.Handle(e.Labels, e.Time, e.Line)
	}
	md := make(push.LabelsAdapter, len(e.Metadata))
	for i, m := range e.Metadata {
		md[i] = push.LabelAdapter{Name: m.Name, Value: m.Value}
	}
	return s.client.HandleWithMetadata(e.Labels, e.Time, e.Line, md)
}

// Stop flushes the client's pending batch (with its retries) and stops it.
func (s *LokiSender) Stop() { s.client.Stop() }

// Stats reads the client's counters for this host and attributes its
// dropped entries to the status of the batch that was given up.
func (s *LokiSender) Stats() SenderStats {
	cur := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(cur.droppedEntries)
	return SenderStats{
		Sent:           uint64(cur.sentEntries - s.base.sentEntries),
		SentBytes:      uint64(cur.sentBytes - s.base.sentBytes),
		Rejected:       uint64(s.rejected),
		RetryExhausted: uint64(s.retryEx),
	}
}

// gaveUp is called (from the client's goroutine, by its logger) just
// before the client counts the entries of a batch it dropped.
func (s *LokiSender) gaveUp(status int) {
	cur := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(cur.droppedEntries)
	s.status, s.dropBase, s.pending = status, cur.droppedEntries, true
}

func (s *LokiSender) settleLocked(dropped float64) {
	if !s.pending {
		s.dropBase = dropped
		return
	}
	if d := dropped - s.dropBase; d > 0 {
		if s.status >= 400 && s.status < 500 && s.status != 429 {
			s.rejected += d
		} else {
			s.retryEx += d
		}
	}
	s.dropBase = dropped
}

// read gathers the client's promtail_* counters of this host from the
// global registry, where loki-client-go registers them in init.
func (s *LokiSender) read() promtailCounts {
	var c promtailCounts
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return c
	}
	for _, mf := range mfs {
		var dst *float64
		switch mf.GetName() {
		case "promtail_sent_entries_total":
			dst = &c.sentEntries
		case "promtail_sent_bytes_total":
			dst = &c.sentBytes
		case "promtail_dropped_entries_total":
			dst = &c.droppedEntries
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == loki.HostLabel && l.GetValue() == s.host {
					*dst += m.GetCounter().GetValue()
				}
			}
		}
	}
	return c
}

// retryLogEvery bounds how often "will retry" is logged at warn level.
const retryLogEvery = 30 * time.Second

// kitLogger routes loki-client-go's go-kit log lines to our slog logger
// (stderr, never stdout), and tells the sender when a batch is given up.
type kitLogger struct{ s *LokiSender }

func (k kitLogger) Log(keyvals ...any) error {
	lvl := slog.LevelInfo
	msg := ""
	status := 0
	attrs := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		v := keyvals[i+1]
		switch key {
		case "level":
			switch fmt.Sprint(v) {
			case "error":
				lvl = slog.LevelError
			case "warn":
				lvl = slog.LevelWarn
			case "debug":
				lvl = slog.LevelDebug
			}
		case "msg":
			msg = fmt.Sprint(v)
		case "component", "host", "caller", "ts":
		case "status":
			if n, ok := v.(int); ok {
				status = n
			}
			attrs = append(attrs, "status", v)
		case "error":
			attrs = append(attrs, "err", fmt.Sprint(v))
		default:
			attrs = append(attrs, key, v)
		}
	}
	switch msg {
	case "final error sending batch":
		// Counted every time; logged once, then at most every retryLogEvery
		// with how many were held back (a wrong token fails every push).
		k.s.gaveUp(status)
		msg = "loki gave up a batch"
		k.s.mu.Lock()
		if time.Since(k.s.lastGaveUp) < retryLogEvery {
			k.s.gaveUpHeld++
			lvl = slog.LevelDebug
		} else {
			if k.s.gaveUpHeld > 0 {
				attrs = append(attrs, "similar_since_last_log", k.s.gaveUpHeld)
			}
			k.s.lastGaveUp, k.s.gaveUpHeld = time.Now(), 0
		}
		k.s.mu.Unlock()
	case "error sending batch, will retry":
		k.s.mu.Lock()
		if time.Since(k.s.lastWarn) < retryLogEvery {
			lvl = slog.LevelDebug
		} else {
			k.s.lastWarn = time.Now()
		}
		k.s.mu.Unlock()
		msg = "loki push failed, will retry"
	}
	k.s.logger.Log(context.Background(), lvl, msg, attrs...)
	return nil
}
