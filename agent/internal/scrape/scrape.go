// Package scrape runs one loop per scrape target: it fetches the target's
// exposition (HTTP, or an in-process prometheus.Gatherer), parses it with
// expfmt, gives every sample the dyno's labels, enforces the dyno's series
// budget, writes staleness markers, and hands the samples to an Appender.
//
// Page timestamps are ignored: every sample of a scrape carries the time the
// scrape started, as Prometheus does with honor_timestamps=false. This keeps
// samples in order for remote write and avoids "too old" rejections of
// exporters that stamp cached values.
package scrape

import (
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// Appender receives the samples of each scrape. It is the seam between
// scrape and remote write, owned by this package.
//
// Append must not block (queue or drop, and count what was dropped). It takes
// ownership of the slice; the Labels of the samples may be shared with later
// batches and must not be modified. It is called from several goroutines.
type Appender interface {
	Append(samples []series.Sample)
}

// Target is one HTTP endpoint to scrape. Credentials in URL (user:pass@) are
// sent as basic auth and never printed.
type Target struct {
	Job string
	URL *url.URL
}

// Defaults for the Options a caller leaves zero.
const (
	DefaultBodyLimit        = 32 << 20 // bytes, after decompression
	DefaultUserAgent        = "dynoscope"
	DefaultErrorLogInterval = 5 * time.Minute
	// SelfJob is the job label of the in-process gatherers (agent and dyno metrics).
	SelfJob = "dynoscope"
)

// Options configure a Manager. Interval and Timeout are required; their
// defaults (60s/10s) belong to the config package.
type Options struct {
	Targets  []Target
	Interval time.Duration // between scrapes of one target
	Timeout  time.Duration // of one scrape; at most Interval
	// BodyLimit caps the body of a scrape after decompression;
	// 0 means DefaultBodyLimit.
	BodyLimit int64
	// Labels are added to every sample: app, environment, platform,
	// dyno_type and DYNOSCOPE_LABELS. Empty values are left out.
	Labels map[string]string
	// Instance is the value of the instance label.
	Instance string
	// Keep and Drop filter scraped samples by metric name (the expanded
	// name, e.g. foo_bucket). They apply to HTTP targets only: up, scrape_*
	// and the in-process gatherers always pass. Nil means no filter.
	Keep, Drop *regexp.Regexp
	// MaxSeries caps the active series of the dyno across all targets;
	// 0 means no cap.
	MaxSeries int
	// UserAgent is sent on every scrape: "dynoscope/<version>".
	UserAgent string
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
	// Dropped is dynoscope_remote_write_samples_dropped_total{reason}, where
	// series over MaxSeries are counted (reason "series_limit") and
	// duplicate series of a page ("invalid"). Pass remote write's vector
	// (remotewrite.Metrics.Dropped), which registers it; nil makes and
	// registers one here.
	Dropped *prometheus.CounterVec
	// ErrorLogInterval is how often a repeating scrape failure is logged
	// again (it is always counted); 0 means DefaultErrorLogInterval.
	ErrorLogInterval time.Duration
}

// Result is the outcome of one scrape.
type Result struct {
	Series   int             // series handed on (after filters and the budget)
	Scraped  int             // samples on the page (scrape_samples_scraped)
	Duration time.Duration   // fetch and parse
	Samples  []series.Sample // what would be appended, synthetic samples included
}

// TargetStatus is a target's state for the status endpoint. URL is redacted.
type TargetStatus struct {
	Job          string    `json:"job"`
	URL          string    `json:"url"`
	Up           bool      `json:"up"`
	LastScrape   time.Time `json:"last_scrape"`
	LastDuration float64   `json:"last_duration_seconds"`
	LastError    string    `json:"last_error,omitempty"`
	Series       int       `json:"series"`
}
