package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// TestAgentSettings runs the binary with the config vars an operator tunes
// and checks their effect at the receiver; each case has its own app label
// on one shared Prometheus.
func TestAgentSettings(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	bin := dynoscope(t)

	// SIGTERM flushes the batch still waiting for its deadline (5s), so the
	// last scrapes before the signal arrive; and no staleness marker is
	// written at shutdown: the replacement dyno continues the same series.
	t.Run("SIGTERM flushes and leaves no staleness marker", func(t *testing.T) {
		t.Parallel()
		seq := newSeqTarget(t, 0)
		p := start(t, baseEnv(t).with(
			"DYNOSCOPE_APP=e2e-flush",
			"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
			"DYNOSCOPE_SCRAPE_TARGETS=steady="+seq.url(),
			"DYNOSCOPE_HEALTH_PATH=",
		), bin, "agent")
		const steady = `e2e_scrape_seq{app="e2e-flush",job="steady"}`
		// The first batch went out (its 5s deadline passed); then the next
		// batch fills for a few scrapes and is cut short by SIGTERM.
		waitValue(t, prom, "max_over_time("+steady+"[10m])", atLeast(1))
		sent, _ := value(t, prom, "max_over_time("+steady+"[10m])")
		require.Eventually(t, func() bool { return seq.n.Load() >= int64(sent)+2 }, arriveTimeout, tick)
		scraped := seq.n.Load()
		p.signal(t, syscall.SIGTERM)
		require.Equal(t, 0, p.wait(t, exitTimeout))
		require.Contains(t, p.stderr.String(), "msg=stopped")
		require.Contains(t, p.stderr.String(), "samples_dropped=0")

		last, _ := value(t, prom, "max_over_time("+steady+"[10m])")
		require.GreaterOrEqual(t, last, float64(scraped), "the scrapes before SIGTERM were flushed")
		count, _ := value(t, prom, "count_over_time("+steady+"[10m])")
		first, _ := value(t, prom, "min_over_time("+steady+"[10m])")
		require.Equal(t, last-first+1, count, "no gap")
		// A staleness marker would end the series: an instant query would
		// find nothing.
		v, ok := value(t, prom, steady)
		require.True(t, ok, "no staleness marker at shutdown")
		require.Equal(t, last, v)
		up, ok := value(t, prom, `up{app="e2e-flush",job="steady"}`)
		require.True(t, ok)
		require.Equal(t, 1.0, up)
	})

	// DYNOSCOPE_MAX_SERIES caps the dyno's series: the page's new series
	// past it are dropped and counted, up and the agent's own metrics still
	// flow, the warning is logged once.
	t.Run("series limit", func(t *testing.T) {
		t.Parallel()
		big := newSeqTarget(t, 300)
		statusAddr := testsupport.FreeAddr(t)
		p := start(t, baseEnv(t).with(
			"DYNOSCOPE_APP=e2e-limit",
			"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
			"DYNOSCOPE_SCRAPE_TARGETS=big="+big.url(),
			"DYNOSCOPE_HEALTH_PATH=",
			"DYNOSCOPE_MAX_SERIES=100",
			"DYNOSCOPE_STATUS_ADDR="+statusAddr,
		), bin, "agent")
		waitValue(t, prom, `up{app="e2e-limit",job="big"}`, equals(1))
		waitValue(t, prom, `dynoscope_series_limit{app="e2e-limit"}`, equals(100))
		waitValue(t, prom, `count(dynoscope_build_info{app="e2e-limit"})`, equals(1))
		require.Eventually(t, func() bool {
			v, ok := selfMetric(t, statusAddr, `dynoscope_remote_write_samples_dropped_total{reason="series_limit"}`)
			return ok && v >= 200
		}, arriveTimeout, tick, "the series over the limit are counted")
		// The page's series and its synthetic ones fit in the budget; the
		// agent's own series (job dynoscope) always flow and take slots
		// first, even past the cap (series.Limit.Force), so a dyno sends at
		// most DYNOSCOPE_MAX_SERIES plus its own.
		page := waitValue(t, prom, `count({app="e2e-limit",job="big"})`, atLeast(4))
		require.Less(t, page, 100.0)
		own := waitValue(t, prom, `count({app="e2e-limit",job="dynoscope"})`, atLeast(1))
		total := waitValue(t, prom, `count({app="e2e-limit"})`, atLeast(1))
		require.LessOrEqual(t, total-own, 100.0, "the dyno sends at most DYNOSCOPE_MAX_SERIES series besides its own")
		t.Logf("DYNOSCOPE_MAX_SERIES=100: %v series arrived: %v of the page (3 synthetic), %v of the agent", total, page, own)
		require.Equal(t, 1, strings.Count(p.stderr.String(), "series limit reached"), "warned once")
		p.stop(t)
	})

	// DYNOSCOPE_LABELS adds labels (and may set dyno_type off Heroku);
	// DYNOSCOPE_METRICS_KEEP and _DROP filter by metric name (HTTP targets
	// only: up and the agent's own metrics always pass).
	t.Run("labels, keep and drop", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentText)
			_, _ = io.WriteString(w, "# TYPE keep_me gauge\nkeep_me 1\n# TYPE keep_me_not gauge\nkeep_me_not 2\n# TYPE other_metric gauge\nother_metric 3\n")
		}))
		t.Cleanup(srv.Close)
		p := start(t, baseEnv(t).with(
			"DYNOSCOPE_APP=e2e-labels",
			"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
			"DYNOSCOPE_SCRAPE_TARGETS=filtered="+srv.URL+"/metrics",
			"DYNOSCOPE_HEALTH_PATH=",
			"DYNOSCOPE_LABELS=team=core,dyno_type=worker",
			"DYNOSCOPE_METRICS_KEEP=keep_.*",
			"DYNOSCOPE_METRICS_DROP=keep_me_not",
		), bin, "agent")
		waitValue(t, prom, `keep_me{app="e2e-labels",team="core",dyno_type="worker",job="filtered"}`, equals(1))
		waitValue(t, prom, `up{app="e2e-labels",team="core",dyno_type="worker",job="filtered"}`, equals(1))
		waitValue(t, prom, `dynoscope_build_info{app="e2e-labels",team="core",dyno_type="worker"}`, equals(1))
		// Three scrapes later, the filtered metrics still have not arrived.
		waitValue(t, prom, `scrape_samples_scraped{app="e2e-labels",job="filtered"}`, equals(3))
		require.Empty(t, query(t, prom, `{__name__=~"keep_me_not|other_metric"}`))
		p.stop(t)
	})

	// On Heroku the identity comes from the dyno's metadata: app from
	// HEROKU_APP_NAME, environment from NODE_ENV (lowercased), instance
	// from HEROKU_DYNO_ID with DYNOSCOPE_INSTANCE=dyno_id (preboot), the
	// release in dyno_info only; a bare target URL gets /metrics and job
	// app; a failing /health is dyno_health_up 0 with its status code.
	t.Run("heroku identity and health", func(t *testing.T) {
		t.Parallel()
		const dynoID = "0f8e3b7c-3a51-4d2e-9c55-e2e000000001"
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentText)
			_, _ = io.WriteString(w, "# TYPE heroku_page gauge\nheroku_page 1\n")
		})
		mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "e2e: unhealthy", http.StatusServiceUnavailable)
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		p := start(t, baseEnv(t).without("DYNOSCOPE_APP", "ENVIRONMENT", "DYNOSCOPE_PLATFORM").with(
			"HEROKU_APP_NAME=e2e-heroku-app",
			"NODE_ENV=Production",
			"DYNO=worker.3",
			"HEROKU_DYNO_ID="+dynoID,
			"DYNOSCOPE_INSTANCE=dyno_id",
			"HEROKU_RELEASE_VERSION=v42",
			"HEROKU_SLUG_COMMIT=abc123",
			"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
			"DYNOSCOPE_SCRAPE_TARGETS="+srv.URL,
		), bin, "agent")
		id := map[string]string{"app": "e2e-heroku-app", "environment": "production", "platform": "heroku", "instance": dynoID, "dyno_type": "worker"}
		with := func(kv ...string) map[string]string {
			m := map[string]string{}
			for k, v := range id {
				m[k] = v
			}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		waitValue(t, prom, sel("heroku_page", with("job", "app")), equals(1))
		waitValue(t, prom, sel("dyno_info", with("job", "dynoscope", "release", "v42", "commit", "abc123")), equals(1))
		waitValue(t, prom, sel("dyno_health_up", with("job", "dynoscope")), equals(0))
		waitValue(t, prom, sel("dyno_health_status_code", with("job", "dynoscope")), equals(503))
		require.Empty(t, query(t, prom, `{app="e2e-heroku-app",release!=""}`+` unless dyno_info`), "release is a label of dyno_info only")
		p.stop(t)
	})
}
