package logs

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons of dynoscope_log_lines_dropped_total.
const (
	ReasonQueueFull      = "queue_full"      // the intake, the queue or a tee's buffer was full: oldest dropped
	ReasonRateLimit      = "rate_limit"      // DYNOSCOPE_LOG_RATE_LIMIT
	ReasonMinLevel       = "min_level"       // below DYNOSCOPE_LOG_MIN_LEVEL
	ReasonDropRegex      = "drop_regex"      // matched DYNOSCOPE_LOG_DROP
	ReasonRejected       = "rejected"        // Loki answered a 4xx (not 429) for the batch
	ReasonRetryExhausted = "retry_exhausted" // 429/5xx/network errors for the whole retry window
	ReasonShutdown       = "shutdown"        // still waiting when the shutdown deadline came
	ReasonInvalid        = "invalid"         // failed validation before the Loki client (order, size)
	ReasonEmpty          = "empty"           // an empty line: nothing to ship
)

var dropReasons = []string{ReasonQueueFull, ReasonRateLimit, ReasonMinLevel, ReasonDropRegex,
	ReasonRejected, ReasonRetryExhausted, ReasonShutdown, ReasonInvalid, ReasonEmpty}

// metrics are the pipeline's self-metrics, with atomic mirrors for Status
// and Summary. Safe for concurrent use.
type metrics struct {
	read       *prometheus.CounterVec
	sent       prometheus.Counter
	bytesSent  prometheus.Counter
	dropped    *prometheus.CounterVec
	redacted   prometheus.Counter
	truncated  prometheus.Counter
	invalidUTF prometheus.Counter
	queueBytes prometheus.Gauge

	nRead, nSent, nBytesSent, nRedacted, nTruncated atomic.Uint64

	mu       sync.Mutex // covers nDropped
	nDropped map[string]uint64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_read_total",
			Help: "Log lines captured, by stream (stdout, stderr or a file's base name).",
		}, []string{"stream"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_sent_total",
			Help: "Log entries accepted by Loki (or printed in dry run).",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_log_bytes_sent_total",
			Help: "Bytes of push requests accepted by Loki (snappy-compressed protobuf; line bytes in dry run).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_dropped_total",
			Help: "Log lines or entries not shipped, by reason.",
		}, []string{"reason"}),
		redacted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_redacted_total",
			Help: "Shipped entries in which a secret was replaced by [REDACTED].",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_truncated_total",
			Help: "Lines longer than DYNOSCOPE_LOG_MAX_LINE_BYTES, split into several entries.",
		}),
		invalidUTF: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynoscope_log_lines_invalid_utf8_total",
			Help: "Lines whose invalid UTF-8 bytes were replaced by U+FFFD.",
		}),
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynoscope_log_queue_bytes",
			Help: "Bytes of log entries waiting for the Loki client.",
		}),
		nDropped: map[string]uint64{},
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.read, m.sent, m.bytesSent, m.dropped, m.redacted, m.truncated, m.invalidUTF, m.queueBytes)
	}
	return m
}

func (m *metrics) drop(reason string, n int) {
	if n <= 0 {
		return
	}
	m.dropped.WithLabelValues(reason).Add(float64(n))
	m.mu.Lock()
	m.nDropped[reason] += uint64(n)
	m.mu.Unlock()
}

func (m *metrics) droppedSnapshot() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.nDropped))
	for k, v := range m.nDropped {
		out[k] = v
	}
	return out
}

func (m *metrics) addSent(lines, bytes uint64) {
	if lines > 0 {
		m.sent.Add(float64(lines))
		m.nSent.Add(lines)
	}
	if bytes > 0 {
		m.bytesSent.Add(float64(bytes))
		m.nBytesSent.Add(bytes)
	}
}
