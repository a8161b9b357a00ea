package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// appServer is a small app on a free port: /metrics and /health, as the
// buildpack's default target ($PORT) and probe expect.
func appServer(t testing.TB) (port int) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, "# TYPE app_requests_total counter\napp_requests_total{path=\"/\"} 7\napp_requests_total{path=\"/x\"} 1\n")
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, p, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return port
}

// statusServer answers every request with code.
func statusServer(t testing.TB, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, fmt.Sprintf("e2e answers %d", code), code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheck runs `dynoscope check` against the real receivers and against
// endpoints that fail the way a misconfigured app fails: the exit status
// and the hint tell the operator what to fix.
func TestCheck(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	loki := testsupport.NewLokiReceiver(t)
	app := appServer(t)
	bin := dynoscope(t)
	unauthorized := statusServer(t, http.StatusUnauthorized)
	notFound := statusServer(t, http.StatusNotFound)
	refused := "http://" + testsupport.FreeAddr(t)

	good := baseEnv(t).with(
		"PORT="+strconv.Itoa(app),
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
	)
	tests := []struct {
		name     string
		env      env
		code     int
		want     []string // lines (or parts) of stdout
		instance string   // of the test sample and line that must arrive; "" = none
	}{
		{
			name: "all good", env: good.with("DYNOSCOPE_APP=check-good"), code: 0,
			want: []string{
				"ok   scrape app", "2 series",
				"ok   health", "/health: 200",
				"ok   prometheus", "(sample dynoscope_check sent)",
				"ok   loki", "(test line sent)",
				"OK: 4 checks passed",
			},
			instance: hostname(t),
		},
		{
			// heroku run: a one-off dyno has no PORT, so no target; the
			// endpoints are still tested.
			name: "one-off dyno", env: good.without("PORT").with("DYNOSCOPE_APP=check-oneoff", "DYNO=run.1"), code: 0,
			want: []string{
				"ok   scrape", "no target: PORT is not set and DYNOSCOPE_SCRAPE_TARGETS is empty",
				"ok   prometheus", "ok   loki", "OK: 3 checks passed",
			},
			instance: "run",
		},
		{
			name: "401", env: good.with("GRAFANA_CLOUD_PROMETHEUS_URL="+unauthorized+"/api/prom/push", "GRAFANA_CLOUD_LOKI_URL="+unauthorized+"/loki/api/v1/push"), code: 1,
			want: []string{
				"FAIL prometheus", "401",
				"hint: check GRAFANA_CLOUD_PROMETHEUS_USER (the instance ID, a number) and GRAFANA_CLOUD_PROMETHEUS_PASSWORD",
				"FAIL loki", "check GRAFANA_CLOUD_LOKI_USER",
				"FAIL: 2 of 4 checks failed",
			},
		},
		{
			name: "404", env: good.with("GRAFANA_CLOUD_PROMETHEUS_URL="+notFound+"/api/v1/wrong", "GRAFANA_CLOUD_LOKI_URL="+notFound+"/loki/wrong"), code: 1,
			want: []string{
				"FAIL prometheus", "404",
				"hint: check GRAFANA_CLOUD_PROMETHEUS_URL: it must end in /api/prom/push",
				"FAIL loki", "hint: check GRAFANA_CLOUD_LOKI_URL: the push path is /loki/api/v1/push",
				"FAIL: 2 of 4 checks failed",
			},
		},
		{
			name: "connection refused", env: good.with("GRAFANA_CLOUD_PROMETHEUS_URL="+refused+"/api/prom/push", "GRAFANA_CLOUD_LOKI_URL="+refused+"/loki/api/v1/push"), code: 1,
			want: []string{
				"FAIL prometheus", "hint: connection refused: nothing listens at that host and port; check GRAFANA_CLOUD_PROMETHEUS_URL",
				"FAIL loki", "hint: connection refused: check the host and port of GRAFANA_CLOUD_LOKI_URL",
				"FAIL: 2 of 4 checks failed",
			},
		},
		{
			name: "target down", env: good.with("PORT=" + strconv.Itoa(testsupport.FreePort(t))), code: 1,
			want: []string{"FAIL scrape app", "hint: is the app listening there", "FAIL health", "FAIL: 2 of 4 checks failed"},
		},
		{
			name: "invalid config", env: good.with("DYNOSCOPE_SCRAPE_INTERVAL=5"), code: 1,
			want: []string{`error: DYNOSCOPE_SCRAPE_INTERVAL="5" is not a duration`, "FAIL: fix the config vars above"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.env, bin, "check")
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, w := range tt.want {
				require.Contains(t, stdout, w)
			}
			if tt.instance == "" {
				return
			}
			app := tt.env["DYNOSCOPE_APP"]
			v, ok := value(t, prom, sel("dynoscope_check", map[string]string{"app": app, "instance": tt.instance, "environment": "test"}))
			require.True(t, ok, "the test sample arrived")
			require.Equal(t, 1.0, v)
			e := loki.WaitForLine(t, "dynoscope check: test line from "+tt.instance, arriveTimeout)
			require.Equal(t, app, e.Labels["app"])
			require.Equal(t, "dynoscope_check", e.Labels["stream"])
		})
	}
}
