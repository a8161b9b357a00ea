package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes the effective configuration, one variable a line in
// the order of the README's table: name, value and where the value came from (set,
// default, or derived such as "from NODE_ENV"). Secrets print as **** when
// set; URL passwords as xxxxx. Parsed URLs and targets print normalised.
func (c *Config) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE")
	for _, f := range fields {
		name := f.name
		v := mask(f, c.raw[name])
		switch name {
		case "GRAFANA_CLOUD_PROMETHEUS_URL":
			if c.PrometheusURL != nil {
				v = c.PrometheusURL.Redacted()
			}
		case "GRAFANA_CLOUD_LOKI_URL":
			if c.LokiURL != nil {
				v = c.LokiURL.Redacted()
			}
		case "DYNOSCOPE_SCRAPE_TARGETS":
			if len(c.ScrapeTargets) > 0 {
				ts := make([]string, len(c.ScrapeTargets))
				for i, t := range c.ScrapeTargets {
					ts[i] = t.String()
				}
				v = strings.Join(ts, ",")
			}
		}
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, v, c.source[name])
	}
	return tw.Flush()
}

// forwardingWarnings says which forwarder a missing URL turns off.
func (c *Config) forwardingWarnings() []string {
	if !c.EnableMetrics || c.DryRun {
		return nil
	}
	var w []string
	if c.PrometheusURL == nil {
		w = append(w, "GRAFANA_CLOUD_PROMETHEUS_URL is not set: metrics are not forwarded")
	}
	if c.Logs && c.LokiURL == nil {
		w = append(w, "GRAFANA_CLOUD_LOKI_URL is not set: logs are not forwarded")
	}
	return w
}

// herokuWarnings flags settings that work but are probably not meant.
func (c *Config) herokuWarnings(env map[string]string) []string {
	var w []string
	if (c.PrometheusUser == "") != (c.PrometheusPassword == "") {
		w = append(w, "only one of GRAFANA_CLOUD_PROMETHEUS_USER and GRAFANA_CLOUD_PROMETHEUS_PASSWORD is set: basic auth needs both")
	}
	if (c.LokiUser == "") != (c.LokiPassword == "") {
		w = append(w, "only one of GRAFANA_CLOUD_LOKI_USER and GRAFANA_CLOUD_LOKI_PASSWORD is set: basic auth needs both")
	}
	if env["DYNO"] == "" {
		return w
	}
	if c.Instance == InstanceDynoID && env["HEROKU_DYNO_ID"] == "" {
		w = append(w, "DYNOSCOPE_INSTANCE=dyno_id but HEROKU_DYNO_ID is not set: instance is the dyno name (run heroku labs:enable runtime-dyno-metadata)")
	}
	if c.ShutdownTimeout >= 30*time.Second {
		w = append(w, fmt.Sprintf("DYNOSCOPE_SHUTDOWN_TIMEOUT=%s: Heroku kills the dyno 30s after SIGTERM, so the flush may be cut short", c.ShutdownTimeout))
	}
	return w
}
