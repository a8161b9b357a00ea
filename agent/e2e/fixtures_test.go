package e2e

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// Content types of the exposition formats, as the exporters send them.
const (
	contentText        = "text/plain; version=0.0.4; charset=utf-8"
	contentProto       = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
	contentOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// clashPage has labels that the agent sets itself: they are kept as
// exported_<name>, as Prometheus does.
const clashPage = `# TYPE clash_info gauge
clash_info{job="upstream",instance="db-1:9100",app="other",dyno_type="worker",zone="eu"} 1
`

// fixturePage is one page served to the agent.
type fixturePage struct {
	job, file, contentType string
	// twin is a fixture in the text or protobuf format with the same
	// series (expfmt reads no OpenMetrics); "" means file itself.
	twin string
	// noRef: Prometheus 2.42 refuses the page (node_exporter's OpenMetrics
	// says "untyped", not "unknown"); the agent reads it as the text format does.
	noRef bool
	// gzip: the page is sent gzip-compressed to clients that accept it.
	gzip bool
}

var fixturePages = []fixturePage{
	{job: "prometheus_text", file: "prometheus-2.42.0.txt", contentType: contentText},
	{job: "prometheus_proto", file: "prometheus-2.42.0.pb", contentType: contentProto},
	{job: "node_text", file: "node_exporter-1.5.0.txt", contentType: contentText},
	{job: "node_openmetrics", file: "node_exporter-1.5.0.openmetrics.txt", contentType: contentOpenMetrics, twin: "node_exporter-1.5.0.txt", noRef: true},
	{job: "express", file: "node-prom-client-express.txt", contentType: contentText},
	{job: "node_gzip", file: "node_exporter-1.5.0.txt", contentType: contentText, gzip: true},
}

// TestFixturePagesArriveComplete serves real exporters' pages (Prometheus,
// node_exporter, a Node prom-client app) in the text, protobuf and
// OpenMetrics formats and requires that every series of each page arrives
// at the receiver with the contract labels. The expected series come from
// two independent sources: expfmt's parse of the page, expanded as
// Prometheus expands histograms and summaries, and the same Prometheus
// scraping the same pages itself (job ref_<job>).
func TestFixturePagesArriveComplete(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var agentGzip atomic.Bool // the agent asked for, and got, a compressed page
	for _, fp := range fixturePages {
		body, err := os.ReadFile(filepath.Join("testdata", fp.file))
		require.NoError(t, err)
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		_, err = zw.Write(body)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		mux.HandleFunc("/"+fp.job, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", fp.contentType)
			if fp.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				if strings.HasPrefix(r.UserAgent(), "dynoscope/") {
					agentGzip.Store(true)
				}
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(zipped.Bytes())
				return
			}
			_, _ = w.Write(body)
		})
	}
	mux.HandleFunc("/clash", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, clashPage)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// The reference: Prometheus scrapes the pages itself.
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
	var targets []string
	for _, fp := range fixturePages {
		fmt.Fprintf(&cfg, "  - job_name: ref_%s\n    metrics_path: /%s\n    static_configs:\n      - targets: [%q]\n", fp.job, fp.job, strings.TrimPrefix(srv.URL, "http://"))
		targets = append(targets, fp.job+"="+srv.URL+"/"+fp.job)
	}
	targets = append(targets, "clash="+srv.URL+"/clash")
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg.String()), 0o600))
	prom := testsupport.StartPrometheus(t, "--config.file="+cfgFile)

	statusAddr := testsupport.FreeAddr(t)
	e := baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
		"DYNOSCOPE_SCRAPE_TARGETS="+strings.Join(targets, ","),
		"DYNOSCOPE_MAX_SERIES=50000",
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	)
	p := start(t, e, dynoscope(t), "agent")
	t.Cleanup(func() {
		if t.Failed() {
			_, st, _ := get("http://" + statusAddr + "/status")
			_, targets, _ := get(prom + "/api/v1/targets")
			_, jobs, _ := get(prom + "/api/v1/query?query=" + url.QueryEscape(`count by (job) ({app="e2e"})`))
			t.Logf("agent status:\n%s\nprometheus targets:\n%s\nseries by job:\n%s", st, targets, jobs)
		}
	})

	host, err := os.Hostname()
	require.NoError(t, err)
	identity := map[string]string{"app": "e2e", "environment": "test", "platform": "local", "instance": host, "dyno_type": "web"}

	for _, fp := range fixturePages {
		t.Run(fp.job, func(t *testing.T) {
			twin := fp.twin
			if twin == "" {
				twin = fp.file
			}
			page := expectedSeries(t, filepath.Join("testdata", twin))
			require.NotEmpty(t, page)
			// The express page has an `up 1` of its own: like Prometheus,
			// the agent keeps one series, the synthetic one.
			want := maps.Clone(page)
			maps.DeleteFunc(want, func(k string, _ bool) bool { return synthetic[nameOf(k)] })

			waitValue(t, prom, sel("up", map[string]string{"job": fp.job}), equals(1))
			got := waitSeries(t, prom, fmt.Sprintf(`{job=%q}`, fp.job), want, "expfmt's parse of "+twin, func(m map[string]string) {
				for k, v := range identity {
					require.Equal(t, v, m[k], "label %s of %v", k, m)
				}
			}, "job", "app", "environment", "platform", "instance", "dyno_type")
			// Every series of the page, and the three synthetic ones.
			waitValue(t, prom, fmt.Sprintf(`count({job=%q})`, fp.job), equals(float64(len(want)+3)))
			waitValue(t, prom, sel("scrape_samples_scraped", map[string]string{"job": fp.job}), equals(float64(len(page))))

			// Prometheus's own scrape of the page has the same series.
			if fp.noRef {
				return
			}
			waitValue(t, prom, sel("up", map[string]string{"job": "ref_" + fp.job}), equals(1))
			waitSeries(t, prom, fmt.Sprintf(`{job="ref_%s"}`, fp.job), got, "Prometheus's own scrape", nil, "job", "instance")
		})
	}

	require.True(t, agentGzip.Load(), "the agent accepts gzip, as Prometheus does")

	t.Run("spot checks", func(t *testing.T) {
		with := func(job string, kv ...string) map[string]string {
			m := maps.Clone(identity)
			m["job"] = job
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		checks := []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"prometheus_http_requests_total", with("prometheus_text", "code", "200", "handler", "/metrics"), 29},
			{"prometheus_http_requests_total", with("prometheus_proto", "code", "200", "handler", "/metrics"), 31},
			{"prometheus_http_request_duration_seconds_bucket", with("prometheus_proto", "handler", "/metrics", "le", "+Inf"), 31},
			{"node_cpu_seconds_total", with("node_openmetrics", "cpu", "0", "mode", "idle"), 836.05},
			{"http_request_duration_seconds_count", with("express", "method", "GET", "path", "/api/ask", "status_code", "200"), 3},
			{"clash_info", with("clash", "exported_job", "upstream", "exported_instance", "db-1:9100", "exported_app", "other", "exported_dyno_type", "worker", "zone", "eu"), 1},
		}
		for _, c := range checks {
			expr := sel(c.name, c.labels)
			v := query(t, prom, expr)
			require.Len(t, v, 1, expr)
			require.Equal(t, c.want, v[0].Value, expr)
		}
	})

	if !t.Failed() {
		p.stop(t)
	}
}

// synthetic are the series a scraper adds of its own (Prometheus adds two
// more than the agent).
var synthetic = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
}

// seriesKey is a series as sorted name="value" pairs, without the names
// given, with le and quantile values normalised ("1.0" and "1" are the
// same bucket: Prometheus 2.42 keeps the page's text, the agent does not).
func seriesKey(m map[string]string, without ...string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		if slices.Contains(without, k) {
			continue
		}
		v := m[k]
		if k == "le" || k == "quantile" {
			v = normFloat(v)
		}
		fmt.Fprintf(&b, "%s=%q,", k, v)
	}
	return b.String()
}

// nameOf is the metric name of a seriesKey.
func nameOf(key string) string {
	v, _ := strconv.Unquote(strings.SplitN(strings.TrimPrefix(key, `__name__=`), ",", 2)[0])
	return v
}

func normFloat(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return formatFloat(f)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// expectedSeries parses a text or protobuf page with expfmt and expands
// each family into the series Prometheus stores: histograms into _bucket
// (with +Inf, which protobuf pages leave implicit), _sum and _count,
// summaries into the quantiles, _sum and _count.
func expectedSeries(t testing.TB, path string) map[string]bool {
	t.Helper()
	body, err := os.ReadFile(path)
	require.NoError(t, err)
	var fams []*dto.MetricFamily
	if strings.HasSuffix(path, ".pb") {
		dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
		for {
			var mf dto.MetricFamily
			err := dec.Decode(&mf)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			fams = append(fams, &mf)
		}
	} else {
		p := expfmt.NewTextParser(model.LegacyValidation)
		byName, err := p.TextToMetricFamilies(bytes.NewReader(body))
		require.NoError(t, err)
		for _, mf := range byName {
			fams = append(fams, mf)
		}
	}
	out := map[string]bool{}
	add := func(name string, m *dto.Metric, extra ...string) {
		labels := map[string]string{"__name__": name}
		for _, lp := range m.GetLabel() {
			if lp.GetValue() != "" {
				labels[lp.GetName()] = lp.GetValue()
			}
		}
		for i := 0; i+1 < len(extra); i += 2 {
			labels[extra[i]] = extra[i+1]
		}
		out[seriesKey(labels)] = true
	}
	for _, mf := range fams {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				inf := false
				for _, b := range m.GetHistogram().GetBucket() {
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					add(name+"_bucket", m, "le", formatFloat(b.GetUpperBound()))
				}
				if !inf {
					add(name+"_bucket", m, "le", "+Inf")
				}
				add(name+"_sum", m)
				add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					add(name, m, "quantile", formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", m)
				add(name+"_count", m)
			default:
				add(name, m)
			}
		}
	}
	return out
}

// waitSeries waits until the series that expr selects, without the
// synthetic ones and the labels named in strip, are want; each series is
// given to check first (when not nil). It returns the set.
func waitSeries(t testing.TB, prom, expr string, want map[string]bool, source string, check func(map[string]string), strip ...string) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(arriveTimeout)
	for {
		got := map[string]bool{}
		for _, s := range query(t, prom, expr) {
			if check != nil {
				check(s.Metric)
			}
			if !synthetic[s.Metric["__name__"]] {
				got[seriesKey(s.Metric, strip...)] = true
			}
		}
		if maps.Equal(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			requireSameSeries(t, want, got, expr, source)
		}
		time.Sleep(tick) // polling, bounded by the deadline above
	}
}

// requireSameSeries fails with the differences, not two long dumps.
func requireSameSeries(t testing.TB, want, got map[string]bool, expr, source string) {
	t.Helper()
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 20 {
		missing = append(missing[:20], fmt.Sprintf("... %d more", len(missing)-20))
	}
	if len(extra) > 20 {
		extra = append(extra[:20], fmt.Sprintf("... %d more", len(extra)-20))
	}
	require.Truef(t, len(missing) == 0 && len(extra) == 0,
		"series of %s vs %s (%d expected, %d arrived):\nmissing:\n  %s\nunexpected:\n  %s",
		expr, source, len(want), len(got), strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
}
