// Package config holds the agent's configuration: one struct filled from
// config vars (the environment), with defaults as named constants, a
// validation that reports every invalid variable at once, typo warnings for
// unknown DYNOSCOPE_* names and a masked printout for `dynoscope config`.
//
// The struct uses envconfig's tag conventions (`envconfig`, `desc`). Load
// applies them itself instead of calling envconfig.Process, because Process
// reads only the process environment (Load takes an environ slice so main is
// testable) and stops at the first bad variable (Load reports all of them).
package config

import (
	"log/slog"
	"net/url"
	"regexp"
	"time"
)

// Defaults. A derived default (ENVIRONMENT, DYNOSCOPE_APP,
// DYNOSCOPE_PLATFORM, DYNOSCOPE_SCRAPE_TARGETS) is computed by Load.
const (
	DefaultEnableMetrics    = "true"
	DefaultScrapeInterval   = "60s"
	DefaultScrapeTimeout    = "10s"
	DefaultMaxSeries        = "2000"
	DefaultInstance         = InstanceDyno
	DefaultQueueMaxBytes    = "16MiB"
	DefaultHealthPath       = "/health"
	DefaultLogs             = "true"
	DefaultLogMaxLineBytes  = "256KiB"
	DefaultLogQueueMaxBytes = "16MiB"
	DefaultLogMultiline     = "true"
	DefaultSocket           = "/tmp/dynoscope.sock"
	// DefaultStatusAddr is the loopback-only status endpoint (/metrics, /status).
	DefaultStatusAddr = "127.0.0.1:9358"
	// DefaultShutdownTimeout leaves 5s of Heroku's 30s SIGTERM grace for the
	// app and the launcher.
	DefaultShutdownTimeout = "25s"
	DefaultDryRun          = "false"
	DefaultAgentLogLevel   = "info"
	DefaultDisabled        = "false"
	DefaultOneOff          = "false"
	DefaultMemoryLimit     = "64MiB"

	// DefaultJob is the job of the default scrape target and of the first
	// target given as a bare URL.
	DefaultJob = "app"
	// DefaultMetricsPath is appended to a scrape target URL with no path.
	DefaultMetricsPath = "/metrics"
	// PrometheusPushPath is appended to a GRAFANA_CLOUD_PROMETHEUS_URL with no path.
	PrometheusPushPath = "/api/prom/push"
	// LokiPushPath is appended to a GRAFANA_CLOUD_LOKI_URL with no path.
	LokiPushPath = "/loki/api/v1/push"
	// UnknownApp is the app label when neither DYNOSCOPE_APP nor
	// HEROKU_APP_NAME is set.
	UnknownApp = "unknown"
)

// DYNOSCOPE_INSTANCE values.
const (
	InstanceDyno   = "dyno"    // instance = dyno name (web.1), stable across restarts
	InstanceDynoID = "dyno_id" // instance = HEROKU_DYNO_ID, unique per boot (preboot)
)

// DYNOSCOPE_PLATFORM values; empty means detect.
const (
	PlatformHeroku = "heroku"
	PlatformDocker = "docker"
	PlatformLocal  = "local"
)

// LogLevels are the accepted DYNOSCOPE_LOG_MIN_LEVEL values, most severe first.
var LogLevels = []string{"fatal", "error", "warn", "info", "debug", "trace"}

// Target is one scrape target.
type Target struct {
	// Job is the job label of the target's samples.
	Job string
	// URL is the full URL to GET, credentials included: print it with
	// URL.Redacted(), never String().
	URL *url.URL
}

// String returns "job=URL" with any password redacted.
func (t Target) String() string { return t.Job + "=" + t.URL.Redacted() }

// RateLimit is a token bucket for log lines. The zero value means no limit.
type RateLimit struct {
	PerSecond float64 // lines per second; 0 = unlimited
	Burst     int     // bucket size in lines
}

// Enabled reports whether lines are limited at all.
func (r RateLimit) Enabled() bool { return r.PerSecond > 0 }

// Config is the agent's effective configuration. Fields are set by Load;
// after Load it is read-only and safe for concurrent reads.
type Config struct {
	PrometheusURL      *url.URL `envconfig:"GRAFANA_CLOUD_PROMETHEUS_URL" desc:"remote write URL; a URL with no path gets /api/prom/push appended"`
	PrometheusUser     string   `envconfig:"GRAFANA_CLOUD_PROMETHEUS_USER" desc:"remote write basic auth user (instance ID)"`
	PrometheusPassword string   `envconfig:"GRAFANA_CLOUD_PROMETHEUS_PASSWORD" secret:"true" desc:"remote write basic auth password (access policy token)"`
	LokiURL            *url.URL `envconfig:"GRAFANA_CLOUD_LOKI_URL" desc:"Loki push URL; a URL with no path gets /loki/api/v1/push appended"`
	LokiUser           string   `envconfig:"GRAFANA_CLOUD_LOKI_USER" desc:"Loki basic auth user"`
	LokiPassword       string   `envconfig:"GRAFANA_CLOUD_LOKI_PASSWORD" secret:"true" desc:"Loki basic auth password"`

	EnableMetrics bool   `envconfig:"ENABLE_METRICS" desc:"false turns the whole agent off"`
	Environment   string `envconfig:"ENVIRONMENT" derived:"true" desc:"the environment label (lowercased)"`
	App           string `envconfig:"DYNOSCOPE_APP" derived:"true" desc:"the app label"`
	// Platform is heroku, docker or local; empty means detect (package dyno).
	Platform string `envconfig:"DYNOSCOPE_PLATFORM" oneof:"heroku,docker,local" derived:"true" desc:"the platform label; empty = detect"`

	ScrapeTargets  []Target          `envconfig:"DYNOSCOPE_SCRAPE_TARGETS" derived:"true" empty:"true" desc:"comma-separated URL or job=URL"`
	ScrapeInterval time.Duration     `envconfig:"DYNOSCOPE_SCRAPE_INTERVAL" desc:"time between scrapes"`
	ScrapeTimeout  time.Duration     `envconfig:"DYNOSCOPE_SCRAPE_TIMEOUT" desc:"scrape deadline"`
	Labels         map[string]string `envconfig:"DYNOSCOPE_LABELS" desc:"extra labels k=v,k=v"`
	// MetricsKeep and MetricsDrop are fully anchored, as in Prometheus relabelling; nil = unset.
	MetricsKeep *regexp.Regexp `envconfig:"DYNOSCOPE_METRICS_KEEP" anchored:"true" desc:"regex on the metric name: keep only matches"`
	MetricsDrop *regexp.Regexp `envconfig:"DYNOSCOPE_METRICS_DROP" anchored:"true" desc:"regex on the metric name: drop matches"`
	MaxSeries   int            `envconfig:"DYNOSCOPE_MAX_SERIES" desc:"active series cap per dyno"`
	// Instance is InstanceDyno or InstanceDynoID.
	Instance      string `envconfig:"DYNOSCOPE_INSTANCE" oneof:"dyno,dyno_id" desc:"instance label: dyno name or HEROKU_DYNO_ID"`
	QueueMaxBytes int64  `envconfig:"DYNOSCOPE_QUEUE_MAX_BYTES" size:"true" desc:"metrics buffer"`
	// HealthPath is the app probe path; empty turns the probe off.
	HealthPath string `envconfig:"DYNOSCOPE_HEALTH_PATH" empty:"true" desc:"app probe path on the first target's host; empty = off"`

	Logs     bool     `envconfig:"DYNOSCOPE_LOGS" desc:"ship logs"`
	LogFiles []string `envconfig:"DYNOSCOPE_LOG_FILES" desc:"comma-separated globs to follow"`
	// LogRedact and LogDrop match anywhere in a line (unanchored); nil = unset.
	LogRedact *regexp.Regexp `envconfig:"DYNOSCOPE_LOG_REDACT" desc:"extra redaction regex"`
	// LogMinLevel is one of LogLevels, or empty for all lines (also written "all").
	LogMinLevel      string         `envconfig:"DYNOSCOPE_LOG_MIN_LEVEL" oneof:"fatal,error,warn,info,debug,trace" desc:"lowest level shipped; empty = all"`
	LogDrop          *regexp.Regexp `envconfig:"DYNOSCOPE_LOG_DROP" desc:"regex of lines not shipped"`
	LogRateLimit     RateLimit      `envconfig:"DYNOSCOPE_LOG_RATE_LIMIT" desc:"N/s or N/m, optional ,burst=B; empty = none"`
	LogMaxLineBytes  int64          `envconfig:"DYNOSCOPE_LOG_MAX_LINE_BYTES" size:"true" desc:"longer lines are truncated"`
	LogQueueMaxBytes int64          `envconfig:"DYNOSCOPE_LOG_QUEUE_MAX_BYTES" size:"true" desc:"log buffer"`
	LogMultiline     bool           `envconfig:"DYNOSCOPE_LOG_MULTILINE" desc:"join stack traces into one entry"`

	Socket string `envconfig:"DYNOSCOPE_SOCKET" desc:"unix socket where agent listens for tee"`
	// StatusAddr is a loopback host:port; empty turns the status server off.
	StatusAddr      string        `envconfig:"DYNOSCOPE_STATUS_ADDR" empty:"true" desc:"127.0.0.1 status endpoint; empty = off"`
	ShutdownTimeout time.Duration `envconfig:"DYNOSCOPE_SHUTDOWN_TIMEOUT" desc:"flush deadline after SIGTERM"`
	DryRun          bool          `envconfig:"DYNOSCOPE_DRY_RUN" desc:"print instead of send"`
	AgentLogLevel   slog.Level    `envconfig:"DYNOSCOPE_AGENT_LOG_LEVEL" desc:"the agent's own verbosity: debug, info, warn, error"`

	// Launcher and build-time variables: read by .profile.d and bin/compile,
	// parsed here so typos and bad values show up in `dynoscope config`.
	Disabled     bool   `envconfig:"DYNOSCOPE_DISABLED" desc:"launcher kill switch"`
	OneOff       bool   `envconfig:"DYNOSCOPE_ONE_OFF" desc:"launcher: also run in run.* one-off dynos"`
	MemoryLimit  int64  `envconfig:"DYNOSCOPE_MEMORY_LIMIT" size:"true" desc:"the agent's GOMEMLIMIT"`
	BinaryURL    string `envconfig:"DYNOSCOPE_BINARY_URL" desc:"build time: where bin/compile gets the agent"`
	BinarySHA256 string `envconfig:"DYNOSCOPE_BINARY_SHA256" desc:"build time: SHA-256 of that binary"`

	// raw holds each variable's effective text (set or default), source how
	// it was chosen; both for Print and error messages.
	raw    map[string]string
	source map[string]string
}

// defaults maps each variable to its default text; variables absent here
// default to empty (unset) or are derived by Load.
var defaults = map[string]string{
	"ENABLE_METRICS":                DefaultEnableMetrics,
	"DYNOSCOPE_SCRAPE_INTERVAL":     DefaultScrapeInterval,
	"DYNOSCOPE_SCRAPE_TIMEOUT":      DefaultScrapeTimeout,
	"DYNOSCOPE_MAX_SERIES":          DefaultMaxSeries,
	"DYNOSCOPE_INSTANCE":            DefaultInstance,
	"DYNOSCOPE_QUEUE_MAX_BYTES":     DefaultQueueMaxBytes,
	"DYNOSCOPE_HEALTH_PATH":         DefaultHealthPath,
	"DYNOSCOPE_LOGS":                DefaultLogs,
	"DYNOSCOPE_LOG_MAX_LINE_BYTES":  DefaultLogMaxLineBytes,
	"DYNOSCOPE_LOG_QUEUE_MAX_BYTES": DefaultLogQueueMaxBytes,
	"DYNOSCOPE_LOG_MULTILINE":       DefaultLogMultiline,
	"DYNOSCOPE_SOCKET":              DefaultSocket,
	"DYNOSCOPE_STATUS_ADDR":         DefaultStatusAddr,
	"DYNOSCOPE_SHUTDOWN_TIMEOUT":    DefaultShutdownTimeout,
	"DYNOSCOPE_DRY_RUN":             DefaultDryRun,
	"DYNOSCOPE_AGENT_LOG_LEVEL":     DefaultAgentLogLevel,
	"DYNOSCOPE_DISABLED":            DefaultDisabled,
	"DYNOSCOPE_ONE_OFF":             DefaultOneOff,
	"DYNOSCOPE_MEMORY_LIMIT":        DefaultMemoryLimit,
}

// pushPaths is appended to an endpoint URL given with no path.
var pushPaths = map[string]string{
	"GRAFANA_CLOUD_PROMETHEUS_URL": PrometheusPushPath,
	"GRAFANA_CLOUD_LOKI_URL":       LokiPushPath,
}

// MetricsForwarding reports whether samples are sent: ENABLE_METRICS is true
// and GRAFANA_CLOUD_PROMETHEUS_URL is set (or DYNOSCOPE_DRY_RUN prints them).
func (c *Config) MetricsForwarding() bool {
	return c.EnableMetrics && (c.PrometheusURL != nil || c.DryRun)
}

// LogForwarding reports whether log lines are sent: DYNOSCOPE_LOGS is true
// and GRAFANA_CLOUD_LOKI_URL is set (or DYNOSCOPE_DRY_RUN prints them).
func (c *Config) LogForwarding() bool {
	return c.EnableMetrics && c.Logs && (c.LokiURL != nil || c.DryRun)
}

// Raw returns the effective text of a variable (as set, or its default) and
// whether the name is known. Secrets are returned unmasked: never print them.
func (c *Config) Raw(name string) (string, bool) {
	v, ok := c.raw[name]
	return v, ok
}

// HealthURL is the app probe URL: the first scrape target's scheme and host
// (no credentials) plus DYNOSCOPE_HEALTH_PATH. Nil when the probe is off or
// there is no target.
func (c *Config) HealthURL() *url.URL {
	if c.HealthPath == "" || len(c.ScrapeTargets) == 0 {
		return nil
	}
	t := c.ScrapeTargets[0].URL
	u := &url.URL{Scheme: t.Scheme, Host: t.Host}
	p, err := url.Parse(c.HealthPath)
	if err != nil {
		return nil
	}
	u.Path, u.RawQuery = p.Path, p.RawQuery
	return u
}
