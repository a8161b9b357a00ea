// Package selfmon holds the agent's own metrics (dynoscope_build_info and
// the process_* metrics of the agent) and the loopback-only status server
// that exposes them with a JSON status summary.
package selfmon

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry holding dynoscope_build_info{version} = 1
// and the agent's process collector (process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds, ...). Other
// packages register their self-metrics in it; main registers the dyno
// collector too. Its samples are forwarded under job "dynoscope". No Go
// runtime collector: its ~40 go_* series would spend the series budget.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		BuildInfo(version),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// BuildInfo returns the dynoscope_build_info{version} gauge, always 1.
func BuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dynoscope_build_info",
		Help:        buildInfoHelp(),
		ConstLabels: prometheus.Labels{"version": version},
	})
	g.Set(1)
	return g
}

func buildInfoHelp() string {
	return "The running dynoscope agent's version (built with " + runtime.Version() + "); always 1."
}
