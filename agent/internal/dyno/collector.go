package dyno

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Collector. Zero values are the production defaults.
type Options struct {
	// ProcRoot is where /proc is mounted ("/proc").
	ProcRoot string
	// CgroupRoot is where the cgroup hierarchy is mounted ("/sys/fs/cgroup").
	CgroupRoot string
	// Getenv reads HEROKU_RELEASE_VERSION and HEROKU_SLUG_COMMIT (os.Getenv).
	Getenv func(string) string
	// HealthURL is the app probe (config.Config.HealthURL()); nil = no probe.
	HealthURL *url.URL
	// HealthTimeout bounds each probe (DefaultProbeTimeout).
	HealthTimeout time.Duration
}

// Collector exposes the dyno_* metrics. Each Collect reads cgroup and /proc
// afresh and, with a HealthURL, probes the app (bounded by HealthTimeout).
// A file that is missing or unreadable omits its metric; nothing panics.
// Safe for concurrent use.
type Collector struct {
	opts    Options
	prober  *Prober
	release string
	commit  string

	memUsage, memLimit, cpu, procs, start, info *prometheus.Desc
	healthUp, healthCode, healthDuration        *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector; register it in the agent's registry.
func NewCollector(opts Options) *Collector {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	return &Collector{
		opts:    opts,
		prober:  NewProber(opts.HealthTimeout),
		release: opts.Getenv("HEROKU_RELEASE_VERSION"),
		commit:  opts.Getenv("HEROKU_SLUG_COMMIT"),

		memUsage: prometheus.NewDesc("dyno_memory_usage_bytes",
			"Memory used by the dyno (cgroup usage minus inactive file cache).", nil, nil),
		memLimit: prometheus.NewDesc("dyno_memory_limit_bytes",
			"Memory limit of the dyno (cgroup); absent when unlimited or unknown.", nil, nil),
		cpu: prometheus.NewDesc("dyno_cpu_seconds_total",
			"CPU time used by the dyno's processes (cgroup accounting, else the sum over /proc).", nil, nil),
		procs: prometheus.NewDesc("dyno_processes",
			"Processes visible in the dyno.", nil, nil),
		start: prometheus.NewDesc("dyno_start_time_seconds",
			"Start time of the dyno (its PID 1) in unix seconds.", nil, nil),
		info: prometheus.NewDesc("dyno_info",
			"Release and commit of the running slug (HEROKU_RELEASE_VERSION, HEROKU_SLUG_COMMIT); always 1.",
			[]string{"release", "commit"}, nil),
		healthUp: prometheus.NewDesc("dyno_health_up",
			"1 when the app's health URL answered 2xx or 3xx, else 0.", nil, nil),
		healthCode: prometheus.NewDesc("dyno_health_status_code",
			"HTTP status of the last health probe; 0 when there was no answer.", nil, nil),
		healthDuration: prometheus.NewDesc("dyno_health_duration_seconds",
			"Duration of the last health probe.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.memUsage, c.memLimit, c.cpu, c.procs, c.start, c.info,
		c.healthUp, c.healthCode, c.healthDuration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	cg := readCgroup(c.opts.CgroupRoot, c.opts.ProcRoot)
	if cg.memUsageOK {
		ch <- prometheus.MustNewConstMetric(c.memUsage, prometheus.GaugeValue, cg.memUsage)
	}
	if cg.memLimitOK {
		ch <- prometheus.MustNewConstMetric(c.memLimit, prometheus.GaugeValue, cg.memLimit)
	}
	ps, procOK := readProc(c.opts.ProcRoot)
	switch {
	case cg.cpuOK:
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, cg.cpuSeconds)
	case procOK:
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, ps.cpuSeconds)
	}
	if procOK {
		ch <- prometheus.MustNewConstMetric(c.procs, prometheus.GaugeValue, float64(ps.processes))
	}
	if ps.startTime > 0 {
		ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, ps.startTime)
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, c.release, c.commit)

	if c.opts.HealthURL != nil {
		r := c.prober.Probe(context.Background(), c.opts.HealthURL)
		up := 0.0
		if r.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthUp, prometheus.GaugeValue, up)
		ch <- prometheus.MustNewConstMetric(c.healthCode, prometheus.GaugeValue, float64(r.StatusCode))
		ch <- prometheus.MustNewConstMetric(c.healthDuration, prometheus.GaugeValue, r.Duration.Seconds())
	}
}
