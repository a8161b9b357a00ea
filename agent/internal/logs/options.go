package logs

import (
	"io"
	"net/url"
	"regexp"
	"time"
)

// Defaults. The Loki client's retry window follows from DefaultMinBackoff,
// DefaultMaxBackoff and DefaultMaxRetries: loki-client-go makes
// DefaultMaxRetries attempts of one batch with DefaultMaxRetries-1 jittered
// waits in [0.5,1), [1,2), [2,4), [4,8), [8,16), then [16,30) s, so a batch
// that keeps failing with 429, 5xx or a network error is retried for 80 to
// 150 s (plus up to DefaultSendTimeout per attempt) before it is dropped and
// counted (reason="retry_exhausted"). While it retries, entries wait in the
// DefaultQueueMaxBytes queue (16 MiB: 80k lines of 200 bytes, minutes of a
// busy dyno's output); beyond that the oldest are dropped (reason="queue_full").
const (
	DefaultMaxLineBytes    = 256 << 10
	DefaultQueueMaxBytes   = 16 << 20
	DefaultIntakeMaxBytes  = 4 << 20
	DefaultMinBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	DefaultMaxRetries      = 10
	DefaultSendTimeout     = 10 * time.Second
	DefaultBatchWait       = time.Second
	DefaultBatchBytes      = 1 << 20
	DefaultMultilineWindow = 300 * time.Millisecond
	DefaultFilePoll        = 250 * time.Millisecond
	// DefaultFlushReserve is the part of the shutdown deadline kept for
	// flushing to Loki after the capture sources have been drained.
	DefaultFlushReserve = 5 * time.Second
	// MaxLabels is Grafana Cloud's limit of labels per stream.
	MaxLabels = 15
)

// Options configure a Pipeline. Zero values take the defaults above.
type Options struct {
	// URL is the Loki push URL (already completed with /loki/api/v1/push).
	// Nil with a nil DryRun means nothing is sent (lines are counted as
	// dropped, reason="invalid" is not used; see Status).
	URL            *url.URL
	User, Password string
	// Labels are the identity labels (app, environment, platform, instance,
	// dyno_type, plus DYNOSCOPE_LABELS extras). service_name, stream and
	// level are added by the pipeline.
	Labels map[string]string

	MinLevel      string         // lowest level shipped; "" ships all
	Drop, Redact  *regexp.Regexp // DYNOSCOPE_LOG_DROP, DYNOSCOPE_LOG_REDACT
	RateLimit     float64        // lines per second; 0 is unlimited
	Burst         int            // token bucket size; 0 means max(1, RateLimit)
	MaxLineBytes  int64
	QueueMaxBytes int64
	// IntakeMaxBytes bounds the raw lines waiting between capture and line
	// handling; beyond it the capture drops lines (reason="queue_full")
	// instead of waiting.
	IntakeMaxBytes  int64
	Multiline       bool
	MultilineWindow time.Duration
	Files           []string
	FilePoll        time.Duration
	DryRun          io.Writer

	MinBackoff, MaxBackoff time.Duration
	MaxRetries             int
	SendTimeout            time.Duration
	BatchWait              time.Duration
	BatchBytes             int
	FlushReserve           time.Duration

	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Sender replaces the Loki client (tests, or another transport).
	Sender Sender
}

func (o *Options) setDefaults() {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.QueueMaxBytes <= 0 {
		o.QueueMaxBytes = DefaultQueueMaxBytes
	}
	if o.IntakeMaxBytes <= 0 {
		o.IntakeMaxBytes = DefaultIntakeMaxBytes
	}
	if o.MultilineWindow <= 0 {
		o.MultilineWindow = DefaultMultilineWindow
	}
	if o.FilePoll <= 0 {
		o.FilePoll = DefaultFilePoll
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.BatchWait <= 0 {
		o.BatchWait = DefaultBatchWait
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.FlushReserve <= 0 {
		o.FlushReserve = DefaultFlushReserve
	}
	if o.Burst <= 0 && o.RateLimit > 0 {
		o.Burst = max(1, int(o.RateLimit))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
