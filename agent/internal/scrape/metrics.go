package scrape

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// Failure reasons of dynoscope_scrape_failures_total.
const (
	reasonTimeout   = "timeout"    // the scrape timeout passed
	reasonNetwork   = "network"    // connection refused, reset, DNS...
	reasonStatus    = "status"     // a status other than 200
	reasonBodyLimit = "body_limit" // the body (decompressed) was over BodyLimit
	reasonParse     = "parse"      // the exposition could not be parsed
	reasonGather    = "gather"     // an in-process gatherer failed
)

var failureReasons = []string{reasonTimeout, reasonNetwork, reasonStatus, reasonBodyLimit, reasonParse, reasonGather}

// Reasons of dynoscope_scrape_label_fixes_total.
const (
	fixLabelLimit  = "label_limit"  // a label dropped: the series had more than 30
	fixValueLength = "value_length" // a value cut to 2048 bytes
	fixInvalidUTF8 = "invalid_utf8" // invalid UTF-8 replaced in a value
	fixInvalidName = "invalid_name" // a label or metric name sanitised
)

var fixReasons = []string{fixLabelLimit, fixValueLength, fixInvalidUTF8, fixInvalidName}

// DroppedHelp is the help text of dynoscope_remote_write_samples_dropped_total
// when scrape makes the vector itself (Options.Dropped nil); if an identical
// vector is already registered, that one is used.
const DroppedHelp = "Samples dropped before they reached the remote write endpoint, by reason."

type metrics struct {
	failures       *prometheus.CounterVec
	labelFixes     *prometheus.CounterVec
	droppedLimit   prometheus.Counter
	droppedInvalid prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, limit *series.Limit, dropped *prometheus.CounterVec) (*metrics, error) {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_scrape_failures_total",
			Help: "Scrapes that failed (up 0), by reason.",
		}, []string{"reason"}),
		labelFixes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_scrape_label_fixes_total",
			Help: "Labels of scraped series changed or dropped to meet the series limits, by reason.",
		}, []string{"reason"}),
	}
	registerDropped := dropped == nil
	if registerDropped {
		dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynoscope_remote_write_samples_dropped_total",
			Help: DroppedHelp,
		}, []string{"reason"})
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dynoscope_active_series",
		Help: "Series of this dyno currently admitted under the series limit.",
	}, func() float64 { return float64(limit.Active()) })
	max := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dynoscope_series_limit",
		Help: "The series limit of this dyno (DYNOSCOPE_MAX_SERIES); 0 means none.",
	}, func() float64 { return float64(limit.Max()) })

	if reg != nil {
		for _, c := range []prometheus.Collector{m.failures, m.labelFixes, active, max} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
		if registerDropped { // else its owner registered it
			if err := reg.Register(dropped); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, err
				}
				existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
				if !ok {
					return nil, err
				}
				dropped = existing
			}
		}
	}
	for _, r := range failureReasons {
		m.failures.WithLabelValues(r)
	}
	for _, r := range fixReasons {
		m.labelFixes.WithLabelValues(r)
	}
	m.droppedLimit = dropped.WithLabelValues("series_limit")
	m.droppedInvalid = dropped.WithLabelValues("invalid")
	return m, nil
}
