package remotewrite

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the reason label of
// dynoscope_remote_write_samples_dropped_total. ReasonSeriesLimit is counted
// by the scrape stage on the same counter (see Metrics.Dropped).
const (
	ReasonQueueFull   = "queue_full" // the queue was full: the oldest batch made room
	ReasonTooOld      = "too_old"    // older than MaxSampleAge, at Append or while retrying
	ReasonRejected    = "rejected"   // the remote answered a 4xx other than 429
	ReasonShutdown    = "shutdown"   // still queued when the shutdown deadline passed
	ReasonInvalid     = "invalid"    // no metric name, an empty label name, or a duplicate label
	ReasonSeriesLimit = "series_limit"
)

// reasons are the drop reasons this package counts, in Summary order.
var reasons = [...]string{ReasonQueueFull, ReasonTooOld, ReasonRejected, ReasonShutdown, ReasonInvalid}

// Metrics are the remote write self-metrics. Build them once with
// NewMetrics and pass them to New; give Dropped to the scrape stage too, so
// that series_limit drops land on the same counter (one CounterVec, one
// registration). Safe for concurrent use.
type Metrics struct {
	Sent            prometheus.Counter     // dynoscope_remote_write_samples_sent_total
	Dropped         *prometheus.CounterVec // dynoscope_remote_write_samples_dropped_total{reason}
	Failed          prometheus.Counter     // dynoscope_remote_write_samples_failed_total: sent but answered with a retryable error
	Retries         prometheus.Counter     // dynoscope_remote_write_retries_total
	QueueBytes      prometheus.Gauge       // dynoscope_remote_write_queue_bytes
	LastSuccess     prometheus.Gauge       // dynoscope_remote_write_last_success_timestamp_seconds
	RequestDuration *prometheus.HistogramVec
}

// NewMetrics creates the remote write metrics and registers them with reg
// (nil: not registered, as in tests). It panics if they are already
// registered, like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_remote_write_samples_sent_total",
			Help: "Samples accepted by the remote write endpoint (2xx).",
		}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_remote_write_samples_dropped_total",
			Help: "Samples that will never be sent, by reason: queue_full, too_old, rejected, series_limit, shutdown, invalid.",
		}, []string{"reason"}),
		Failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_remote_write_samples_failed_total",
			Help: "Samples in requests that failed with a retryable error (network, 5xx, 429); they are retried.",
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_remote_write_retries_total",
			Help: "Remote write requests retried after a network error, 5xx or 429.",
		}),
		QueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynoscope_remote_write_queue_bytes",
			Help: "Bytes of encoded, compressed batches waiting to be sent.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynoscope_remote_write_last_success_timestamp_seconds",
			Help: "Unix time of the last request the remote accepted.",
		}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dynoscope_remote_write_request_duration_seconds",
			Help:    "Duration of remote write requests, by HTTP status code (\"error\" when there was no response).",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"status_code"}),
	}
	for _, r := range append(reasons[:], ReasonSeriesLimit) {
		m.Dropped.WithLabelValues(r) // export every reason from the start, at 0
	}
	if reg != nil {
		reg.MustRegister(m.Sent, m.Dropped, m.Failed, m.Retries, m.QueueBytes, m.LastSuccess, m.RequestDuration)
	}
	return m
}
