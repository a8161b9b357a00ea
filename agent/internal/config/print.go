package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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
