package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// TestDemoAppUnderRun is the product's main path: the demo app runs under
// `dynoscope run` on a Heroku-like dyno, and its request histogram, the
// synthetic up, the dyno's and the agent's own metrics arrive at a real
// Prometheus with the contract labels; its log lines arrive at Loki; a
// SIGTERM to the process group (what Heroku sends) ends both with status 0.
func TestDemoAppUnderRun(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	bin, app := dynoscope(t), demoapp(t)

	tests := []struct {
		name, dyno, instance, dynoType string
	}{
		{"web dyno", "web.1", "web.1", "web"},
		// One-off dynos are named by their type alone, so each `heroku
		// run` does not create new series.
		{"one-off dyno", "run.1", "run", "run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loki := testsupport.NewLokiReceiver(t)
			port := testsupport.FreePort(t)
			e := baseEnv(t).without("DYNOSCOPE_PLATFORM").with(
				"PORT="+strconv.Itoa(port),
				"ENVIRONMENT=staging",
				"DYNOSCOPE_APP=demo",
				"DEMO_TRAFFIC=true",
				"DYNO="+tt.dyno,
				"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
				"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
			)
			p := start(t, e, bin, "run", "--", app)

			// A request of our own, so /boom is certain to be counted.
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			require.Eventually(t, func() bool {
				code, _, err := get(base + "/boom")
				return err == nil && code == 500
			}, arriveTimeout, tick, "the demo app answers /boom with 500")

			// DYNO is set: detection says heroku.
			id := map[string]string{"app": "demo", "environment": "staging", "platform": "heroku", "instance": tt.instance, "dyno_type": tt.dynoType}
			withJob := func(job string, extra ...string) map[string]string {
				m := map[string]string{"job": job}
				for k, v := range id {
					m[k] = v
				}
				for i := 0; i+1 < len(extra); i += 2 {
					m[extra[i]] = extra[i+1]
				}
				return m
			}

			boom := sel("http_request_duration_seconds_count", withJob("app", "method", "GET", "path", "/boom", "status_code", "500"))
			waitValue(t, prom, boom, atLeast(1))
			// The self-traffic's /api/ask requests arrive too, with their histogram.
			waitValue(t, prom, sel("http_request_duration_seconds_count", withJob("app", "method", "GET", "path", "/api/ask", "status_code", "200")), atLeast(1))
			waitValue(t, prom, sel("http_request_duration_seconds_bucket", withJob("app", "method", "GET", "path", "/boom", "status_code", "500", "le", "+Inf")), atLeast(1))
			waitValue(t, prom, sel("up", withJob("app")), equals(1))
			waitValue(t, prom, sel("scrape_samples_scraped", withJob("app")), atLeast(1))

			// The agent's own and the dyno's metrics, job dynoscope.
			buildInfo := query(t, prom, sel("dynoscope_build_info", withJob("dynoscope")))
			require.Len(t, buildInfo, 1)
			require.NotEmpty(t, buildInfo[0].Metric["version"])
			require.Equal(t, 1.0, buildInfo[0].Value)
			waitValue(t, prom, sel("dyno_health_up", withJob("dynoscope")), equals(1))
			waitValue(t, prom, sel("dyno_health_status_code", withJob("dynoscope")), equals(200))
			waitValue(t, prom, sel("dyno_memory_usage_bytes", withJob("dynoscope")), func(v float64) bool { return v > 0 })
			waitValue(t, prom, sel("dynoscope_remote_write_samples_sent_total", withJob("dynoscope")), func(v float64) bool { return v > 0 })

			// Counts grow: the series is alive, not a single sample.
			first, _ := value(t, prom, sel("http_request_duration_seconds_count", withJob("app", "method", "GET", "path", "/api/ask", "status_code", "200")))
			waitValue(t, prom, sel("http_request_duration_seconds_count", withJob("app", "method", "GET", "path", "/api/ask", "status_code", "200")), func(v float64) bool { return v > first })

			// No series of this dyno lacks a contract label.
			for _, name := range []string{"app", "environment", "platform", "instance", "dyno_type", "job"} {
				missing := query(t, prom, fmt.Sprintf(`{app="demo",instance=%q,%s=""}`, tt.instance, name))
				require.Empty(t, missing, "series without %s", name)
			}

			// The app's log lines reach Loki with the stream labels, and its
			// stdout is still passed through.
			e500 := loki.WaitForLine(t, `"path":"/boom"`, arriveTimeout)
			require.Equal(t, "demo", e500.Labels["app"])
			require.Equal(t, "demo", e500.Labels["service_name"])
			require.Equal(t, "staging", e500.Labels["environment"])
			require.Equal(t, tt.instance, e500.Labels["instance"])
			require.Equal(t, tt.dynoType, e500.Labels["dyno_type"])
			require.Equal(t, "stdout", e500.Labels["stream"])
			require.Equal(t, "error", e500.Labels["level"])
			require.Contains(t, p.stdout.String(), `"path":"/boom"`)

			p.stop(t)
			require.Contains(t, p.stdout.String(), "shutdown complete", "the app got its own SIGTERM and finished")
		})
	}
}
