package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
	"github.com/brainbytesai/dynoscope/agent/internal/dyno"
	"github.com/brainbytesai/dynoscope/agent/internal/logs"
	"github.com/brainbytesai/dynoscope/agent/internal/remotewrite"
	"github.com/brainbytesai/dynoscope/agent/internal/scrape"
	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// checkTimeout bounds each network step of `dynoscope check`.
const checkTimeout = 15 * time.Second

// cmdCheck is the operator's first command: it prints the masked
// configuration, scrapes each target once, probes the app's health, and
// sends one test sample and one test log line. Each step prints one line,
// with a hint when it fails; any failure makes the exit status 1.
func cmdCheck(ctx context.Context, _ []string, environ []string, std stdio) int {
	cfg, warnings, err := config.Load(environ)
	fmt.Fprintf(std.out, "dynoscope %s check\n\n", version)
	if perr := cfg.Print(std.out); perr != nil {
		fmt.Fprintf(std.out, "config: %v\n", perr)
	}
	fmt.Fprintln(std.out)
	if reportConfig(std.out, warnings, err) != 0 {
		fmt.Fprintln(std.out, "\nFAIL: fix the config vars above (heroku config:set NAME=value), then run dynoscope check again")
		return 1
	}
	r := &checkReport{w: std.out}
	quiet := slog.New(slog.DiscardHandler)
	id := dyno.Identify(cfg, getenvFrom(environ))
	labels := make(series.Labels, 0, 5)
	for k, v := range id.Labels() {
		labels = append(labels, series.Label{Name: k, Value: v})
	}
	labels.Sort()

	// Targets, scraped once each.
	if len(cfg.ScrapeTargets) == 0 {
		r.line(true, "scrape", "no target: PORT is not set and DYNOSCOPE_SCRAPE_TARGETS is empty (normal in a one-off dyno, which can only test the endpoints)", "")
	} else if sm, err := scrape.NewManager(scrape.Options{
		Interval: cfg.ScrapeInterval, Timeout: cfg.ScrapeTimeout, Labels: id.Labels(), Instance: id.Instance,
		Keep: cfg.MetricsKeep, Drop: cfg.MetricsDrop, MaxSeries: cfg.MaxSeries, UserAgent: userAgent(),
	}, discard{}, quiet, nil); err != nil {
		r.line(false, "scrape", err.Error(), "")
	} else {
		for _, t := range cfg.ScrapeTargets {
			tctx, cancel := context.WithTimeout(ctx, cfg.ScrapeTimeout)
			res, err := sm.ScrapeOnce(tctx, scrape.Target{Job: t.Job, URL: t.URL})
			cancel()
			name := "scrape " + t.Job
			if err != nil {
				r.line(false, name, fmt.Sprintf("%s: %v", t.URL.Redacted(), err), "is the app listening there, and does it serve Prometheus metrics? curl it from the dyno with heroku ps:exec")
				continue
			}
			r.line(true, name, fmt.Sprintf("%s: %d series (%d samples on the page) in %s", t.URL.Redacted(), res.Series, res.Scraped, res.Duration.Round(time.Millisecond)), "")
		}
	}

	// The app's health probe.
	if u := cfg.HealthURL(); u != nil {
		pctx, cancel := context.WithTimeout(ctx, checkTimeout)
		p := dyno.Probe(pctx, u)
		cancel()
		if p.Up {
			r.line(true, "health", fmt.Sprintf("%s: %d in %s", p.URL, p.StatusCode, p.Duration.Round(time.Millisecond)), "")
		} else {
			r.line(false, "health", fmt.Sprintf("%s: %v", p.URL, p.Err), "serve DYNOSCOPE_HEALTH_PATH (default /health) with a 2xx, or set DYNOSCOPE_HEALTH_PATH= (empty) to turn the probe off")
		}
	}

	// Grafana Cloud Prometheus: one test sample.
	switch {
	case !cfg.MetricsForwarding():
		r.line(false, "prometheus", "GRAFANA_CLOUD_PROMETHEUS_URL is not set: metrics are not forwarded", "set GRAFANA_CLOUD_PROMETHEUS_URL, _USER and _PASSWORD from your Grafana Cloud stack's Prometheus details page")
	default:
		opts := remotewrite.Options{URL: cfg.PrometheusURL, User: cfg.PrometheusUser, Password: cfg.PrometheusPassword, UserAgent: userAgent()}
		if cfg.DryRun {
			opts.DryRun = std.errOut
		}
		w, err := remotewrite.New(opts, quiet, remotewrite.NewMetrics(nil))
		if err != nil {
			r.line(false, "prometheus", err.Error(), "")
			break
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		res := w.Check(cctx, labels)
		cancel()
		switch {
		case cfg.DryRun:
			r.line(true, "prometheus", "dry run: the test sample was printed, not sent", "")
		case res.Err != nil:
			detail := fmt.Sprintf("%s: %v", res.Endpoint, res.Err)
			if res.StatusCode != 0 {
				detail = fmt.Sprintf("%s: %d in %s: %s", res.Endpoint, res.StatusCode, res.Latency.Round(time.Millisecond), res.Body)
			}
			r.line(false, "prometheus", detail, remotewrite.Hint(res))
		default:
			r.line(true, "prometheus", fmt.Sprintf("%s: %d in %s (sample %s sent)", res.Endpoint, res.StatusCode, res.Latency.Round(time.Millisecond), remotewrite.CheckMetric), "")
		}
	}

	// Grafana Cloud Loki: one test line.
	switch {
	case !cfg.Logs:
		r.line(true, "loki", "DYNOSCOPE_LOGS=false: logs are not shipped", "")
	case !cfg.LogForwarding():
		r.line(false, "loki", "GRAFANA_CLOUD_LOKI_URL is not set: logs are not forwarded", "set GRAFANA_CLOUD_LOKI_URL, _USER and _PASSWORD from your Grafana Cloud stack's Loki details page")
	default:
		opts := logs.Options{URL: cfg.LokiURL, User: cfg.LokiUser, Password: cfg.LokiPassword, Labels: id.Labels()}
		if cfg.DryRun {
			opts.DryRun = std.errOut
		}
		p, err := logs.NewPipeline(opts, quiet, nil)
		if err != nil {
			r.line(false, "loki", err.Error(), "")
			break
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		res := p.Check(cctx)
		cancel()
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		p.Shutdown(sctx) // nothing queued: this only stops the Loki client
		cancel()
		if cfg.DryRun {
			r.line(true, "loki", "dry run: no test line sent", "")
		} else if res.OK {
			r.line(true, "loki", fmt.Sprintf("%s: %d in %s (test line sent)", res.URL, res.Status, res.Latency.Round(time.Millisecond)), "")
		} else {
			r.line(false, "loki", fmt.Sprintf("%s: %s", res.URL, res.Err), res.Hint)
		}
	}

	if r.failed > 0 {
		fmt.Fprintf(std.out, "\nFAIL: %d of %d checks failed\n", r.failed, r.total)
		return 1
	}
	fmt.Fprintf(std.out, "\nOK: %d checks passed\n", r.total)
	return 0
}

// checkReport prints one aligned line per step and counts failures.
type checkReport struct {
	w             io.Writer
	total, failed int
}

func (r *checkReport) line(ok bool, step, detail, hint string) {
	r.total++
	mark := "ok  "
	if !ok {
		r.failed++
		mark = "FAIL"
	}
	fmt.Fprintf(r.w, "%s %-14s %s\n", mark, step, detail)
	if hint != "" {
		fmt.Fprintf(r.w, "     %-14s hint: %s\n", "", hint)
	}
}

// discard is the appender of check's one-off scrapes: nothing is sent.
type discard struct{}

func (discard) Append([]series.Sample) {}
