package e2e

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// Distinctive credentials: none may appear in any output.
const (
	secretMark     = "s3cr3t-Pa55"
	promPassword   = secretMark + "-PROM"
	lokiPassword   = secretMark + "-LOKI"
	targetPassword = secretMark + "-TGT"
)

// requireNoSecret fails when s holds a password, plain or as the base64 of
// a basic auth header.
func requireNoSecret(t testing.TB, what, s string) {
	t.Helper()
	require.NotContains(t, s, secretMark, "%s leaks a password:\n%s", what, s)
	for _, up := range []string{"prom-user:" + promPassword, "loki-user:" + lokiPassword, "scraper:" + targetPassword} {
		require.NotContains(t, s, base64.StdEncoding.EncodeToString([]byte(up)), "%s leaks a basic auth header", what)
	}
}

// authProxy forwards to target the requests with these credentials and
// answers 401 to others.
func authProxy(t testing.TB, user, password, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	forward := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			http.Error(w, "e2e: invalid credentials", http.StatusUnauthorized)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestNoSecretLeaks runs every command that prints something with
// passwords in the Prometheus and Loki credentials and in a scrape target
// URL: the credentials are used (the receivers require them) and never
// printed, in outputs, logs, the status endpoint or dry-run output.
func TestNoSecretLeaks(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	promURL := authProxy(t, "prom-user", promPassword, prom)
	loki := testsupport.NewLokiReceiver(t)
	loki.RequireBasicAuth("loki-user", lokiPassword)
	var scrapes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "scraper" || p != targetPassword {
			http.Error(w, "e2e: invalid credentials", http.StatusUnauthorized)
			return
		}
		scrapes.Add(1)
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, "# TYPE secret_page_value gauge\nsecret_page_value 42\n")
	}))
	t.Cleanup(target.Close)
	targetURL := strings.Replace(target.URL, "http://", "http://scraper:"+targetPassword+"@", 1) + "/metrics"

	logFile := filepath.Join(t.TempDir(), "app.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o600))
	statusAddr := testsupport.FreeAddr(t)
	bin := dynoscope(t)
	e := baseEnv(t).with(
		"DYNOSCOPE_APP=secrets",
		"GRAFANA_CLOUD_PROMETHEUS_URL="+promURL+testsupport.RemoteWritePath,
		"GRAFANA_CLOUD_PROMETHEUS_USER=prom-user",
		"GRAFANA_CLOUD_PROMETHEUS_PASSWORD="+promPassword,
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
		"GRAFANA_CLOUD_LOKI_USER=loki-user",
		"GRAFANA_CLOUD_LOKI_PASSWORD="+lokiPassword,
		"DYNOSCOPE_SCRAPE_TARGETS=secret="+targetURL,
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_LOG_FILES="+logFile,
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
		"DYNOSCOPE_AGENT_LOG_LEVEL=debug",
	)

	t.Run("config", func(t *testing.T) {
		code, stdout, stderr := execute(t, e, bin, "config")
		require.Equal(t, 0, code, stderr)
		requireNoSecret(t, "config stdout", stdout)
		requireNoSecret(t, "config stderr", stderr)
		require.Regexp(t, `GRAFANA_CLOUD_PROMETHEUS_PASSWORD +\*+ `, stdout)
		require.Regexp(t, `GRAFANA_CLOUD_LOKI_PASSWORD +\*+ `, stdout)
		require.Contains(t, stdout, "scraper:xxxxx@", "the target URL is printed redacted")
	})

	t.Run("config with an invalid target", func(t *testing.T) {
		code, stdout, stderr := execute(t, e.with("DYNOSCOPE_SCRAPE_TARGETS=secret=ftp://scraper:"+targetPassword+"@127.0.0.1:1/metrics"), bin, "config")
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "error: DYNOSCOPE_SCRAPE_TARGETS=")
		requireNoSecret(t, "config stdout", stdout)
		requireNoSecret(t, "config stderr", stderr)
	})

	t.Run("check", func(t *testing.T) {
		code, stdout, stderr := execute(t, e, bin, "check")
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		requireNoSecret(t, "check stdout", stdout)
		requireNoSecret(t, "check stderr", stderr)
		require.Contains(t, stdout, "ok   scrape secret")
		v, ok := value(t, prom, `dynoscope_check{app="secrets"}`)
		require.True(t, ok, "the test sample arrived through the authenticating proxy")
		require.Equal(t, 1.0, v)
		loki.WaitForLine(t, "dynoscope check: test line", arriveTimeout)
	})

	t.Run("check answered 401", func(t *testing.T) {
		bad := statusServer(t, http.StatusUnauthorized)
		code, stdout, stderr := execute(t, e.with(
			"GRAFANA_CLOUD_PROMETHEUS_URL="+bad+"/api/prom/push",
			"GRAFANA_CLOUD_LOKI_URL="+strings.Replace(bad, "http://", "http://loki-user:"+lokiPassword+"@", 1)+"/loki/api/v1/push",
		), bin, "check")
		require.Equal(t, 1, code)
		require.Contains(t, stdout, "hint: check GRAFANA_CLOUD_PROMETHEUS_USER")
		require.Contains(t, stdout, "check GRAFANA_CLOUD_LOKI_USER")
		requireNoSecret(t, "check stdout", stdout)
		requireNoSecret(t, "check stderr", stderr)
	})

	t.Run("agent", func(t *testing.T) {
		p := start(t, e, bin, "agent")
		waitValue(t, prom, `secret_page_value{app="secrets",job="secret"}`, equals(42))
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString("level=info msg=\"e2e line for loki\"\n")
		require.NoError(t, err)
		require.NoError(t, f.Close())
		loki.WaitForLine(t, "e2e line for loki", arriveTimeout)

		for _, path := range []string{"/status", "/metrics", "/"} {
			code, body := httpGet(t, "http://"+statusAddr+path)
			require.Equal(t, http.StatusOK, code, path)
			requireNoSecret(t, "status endpoint "+path, body)
		}
		_, st := httpGet(t, "http://"+statusAddr+"/status")
		require.Contains(t, st, "scraper:xxxxx@")
		p.stop(t)
		requireNoSecret(t, "agent stdout", p.stdout.String())
		requireNoSecret(t, "agent stderr", p.stderr.String())
		require.Positive(t, scrapes.Load())
	})

	t.Run("dry run", func(t *testing.T) {
		p := start(t, e.with("DYNOSCOPE_DRY_RUN=true"), bin, "agent")
		require.Eventually(t, func() bool {
			return strings.Contains(p.stderr.String(), "secret_page_value{") && strings.Contains(p.stderr.String(), "dynoscope_build_info{")
		}, arriveTimeout, tick, "the dry run prints the samples")
		p.stop(t)
		requireNoSecret(t, "dry-run stdout", p.stdout.String())
		requireNoSecret(t, "dry-run stderr", p.stderr.String())
	})
}

// TestLogRedactionThroughRun: secrets in the app's own log lines are
// redacted in what is shipped to Loki (built-in rules and
// DYNOSCOPE_LOG_REDACT), while the app's output reaches heroku logs
// unchanged.
func TestLogRedactionThroughRun(t *testing.T) {
	t.Parallel()
	loki := testsupport.NewLokiReceiver(t)
	lines := []string{
		"connecting to postgres://app:" + secretMark + "-DB@db.internal:5432/app",
		"request headers: Authorization: Bearer " + secretMark + "-BEARER",
		`level=error msg="login failed" password=` + secretMark + "-PW user=bob",
		"charged card=4111111111111111 ok",
		"an ordinary line, nothing to hide",
	}
	app := "printf '%s\\n' \"$@\""
	args := append([]string{"run", "--", "sh", "-c", app, "sh"}, lines...)
	code, stdout, stderr := execute(t, baseEnv(t).with(
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
		"DYNOSCOPE_LOG_REDACT=card=[0-9]+",
		"DYNOSCOPE_LOG_MULTILINE=false",
	), dynoscope(t), args...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, strings.Join(lines, "\n")+"\n", stdout, "the passthrough is never altered")

	got := loki.WaitForEntries(t, len(lines), arriveTimeout)
	var shipped []string
	for _, e := range got {
		shipped = append(shipped, e.Line)
	}
	all := strings.Join(shipped, "\n")
	requireNoSecret(t, "lines shipped to Loki", all)
	require.NotContains(t, all, "4111111111111111")
	require.Equal(t, 4, strings.Count(all, "[REDACTED]"), all)
	require.Contains(t, all, "an ordinary line, nothing to hide")
	require.Contains(t, all, "db.internal:5432/app", "only the secret is cut, not the line")
}
