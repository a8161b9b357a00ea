package config

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/kelseyhightower/envconfig"
	"github.com/stretchr/testify/require"
)

// secret is a distinctive password: it must never show up in output.
const secret = "glc_Zebra-Quokka-9931"

// readEnvFile reads KEY=VALUE lines and the "# want: " comment of a testdata file.
func readEnvFile(t testing.TB, path string) (environ []string, want string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			want = w
			continue
		}
		if line != "" {
			environ = append(environ, line)
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, want, "%s has no '# want: ' line", path)
	return environ, want
}

// varErrors unpacks Load's error into its messages.
func varErrors(t testing.TB, err error) []string {
	t.Helper()
	var me *multierror.Error
	require.True(t, errors.As(err, &me), "want a *multierror.Error, got %T", err)
	var out []string
	for _, e := range me.Errors {
		var ve *VarError
		require.True(t, errors.As(e, &ve), "want *VarError, got %T", e)
		out = append(out, ve.Error())
	}
	return out
}

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.env")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".env"), func(t *testing.T) {
			environ, want := readEnvFile(t, file)
			_, _, err := Load(environ)
			require.Error(t, err)
			require.Equal(t, []string{want}, varErrors(t, err))
			require.NotContains(t, err.Error(), secret)
		})
	}
}

// TestEveryInvalidVariable checks that all bad variables are reported at once.
func TestEveryInvalidVariable(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.env")
	require.NoError(t, err)
	var environ, wants []string
	seen := map[string]bool{}
	for _, file := range files {
		env, want := readEnvFile(t, file)
		name, _, _ := strings.Cut(want, "=")
		if seen[name] || len(env) != 1 {
			continue // one case per variable, single-variable files only
		}
		seen[name] = true
		environ = append(environ, env...)
		wants = append(wants, want)
	}
	_, _, err = Load(environ)
	require.ElementsMatch(t, wants, varErrors(t, err))
	require.True(t, strings.HasPrefix(err.Error(), "invalid configuration ("))
}

func TestDefaults(t *testing.T) {
	c, warnings, err := Load(nil)
	require.NoError(t, err)
	require.Nil(t, c.PrometheusURL)
	require.Nil(t, c.LokiURL)
	require.True(t, c.EnableMetrics)
	require.Equal(t, "development", c.Environment)
	require.Equal(t, UnknownApp, c.App)
	require.Empty(t, c.Platform)
	require.Empty(t, c.ScrapeTargets)
	require.Equal(t, 60*time.Second, c.ScrapeInterval)
	require.Equal(t, 10*time.Second, c.ScrapeTimeout)
	require.Empty(t, c.Labels)
	require.Nil(t, c.MetricsKeep)
	require.Nil(t, c.MetricsDrop)
	require.Equal(t, 2000, c.MaxSeries)
	require.Equal(t, InstanceDyno, c.Instance)
	require.Equal(t, int64(16<<20), c.QueueMaxBytes)
	require.Equal(t, "/health", c.HealthPath)
	require.True(t, c.Logs)
	require.Empty(t, c.LogFiles)
	require.Nil(t, c.LogRedact)
	require.Empty(t, c.LogMinLevel)
	require.Nil(t, c.LogDrop)
	require.False(t, c.LogRateLimit.Enabled())
	require.Equal(t, int64(256<<10), c.LogMaxLineBytes)
	require.Equal(t, int64(16<<20), c.LogQueueMaxBytes)
	require.True(t, c.LogMultiline)
	require.Equal(t, "/tmp/dynoscope.sock", c.Socket)
	require.Equal(t, "127.0.0.1:9358", c.StatusAddr)
	require.Equal(t, 25*time.Second, c.ShutdownTimeout)
	require.False(t, c.DryRun)
	require.Equal(t, slog.LevelInfo, c.AgentLogLevel)
	require.False(t, c.Disabled)
	require.False(t, c.OneOff)
	require.Equal(t, int64(64<<20), c.MemoryLimit)
	require.False(t, c.MetricsForwarding())
	require.False(t, c.LogForwarding())
	require.Nil(t, c.HealthURL())
	require.Equal(t, []string{
		`DYNOSCOPE_APP and HEROKU_APP_NAME are not set: the app label is "unknown" (set DYNOSCOPE_APP, or run heroku labs:enable runtime-dyno-metadata)`,
		"GRAFANA_CLOUD_PROMETHEUS_URL is not set: metrics are not forwarded",
		"GRAFANA_CLOUD_LOKI_URL is not set: logs are not forwarded",
	}, warnings)
}

func TestValidFull(t *testing.T) {
	c, warnings, err := Load([]string{
		"DYNO=web.1", "PORT=5000", "HEROKU_APP_NAME=shop", "HEROKU_DYNO_ID=1vac4117",
		"GRAFANA_CLOUD_PROMETHEUS_URL=https://prometheus-prod-01.grafana.net",
		"GRAFANA_CLOUD_PROMETHEUS_USER=123456",
		"GRAFANA_CLOUD_PROMETHEUS_PASSWORD=" + secret,
		"GRAFANA_CLOUD_LOKI_URL=https://logs-prod.grafana.net/custom/push",
		"DYNOSCOPE_SCRAPE_TARGETS=http://127.0.0.1:5000,sidekiq=http://u:" + secret + "@127.0.0.1:9394/m?x=1,http://127.0.0.1:9100",
		"DYNOSCOPE_LABELS=team=payments, dyno_type=api",
		"DYNOSCOPE_METRICS_KEEP=http_.*|up",
		"DYNOSCOPE_LOG_RATE_LIMIT=100/s,burst=500",
		"DYNOSCOPE_LOG_MIN_LEVEL=WARN",
		"DYNOSCOPE_LOG_FILES=log/*.log, /tmp/x.log",
		"DYNOSCOPE_HEALTH_PATH=/up?full=1",
		"DYNOSCOPE_STATUS_ADDR=",
		"DYNOSCOPE_AGENT_LOG_LEVEL=debug",
		"DYNOSCOPE_INSTANCE=dyno_id",
		"DYNOSCOPE_BINARY_SHA256=" + strings.Repeat("ab", 32),
		"RAILS_ENV=Staging",
	})
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, "https://prometheus-prod-01.grafana.net/api/prom/push", c.PrometheusURL.String())
	require.Equal(t, "https://logs-prod.grafana.net/custom/push", c.LokiURL.String())
	require.Equal(t, "shop", c.App)
	require.Equal(t, "staging", c.Environment)
	require.Len(t, c.ScrapeTargets, 3)
	require.Equal(t, "app=http://127.0.0.1:5000/metrics", c.ScrapeTargets[0].String())
	require.Equal(t, "sidekiq=http://u:xxxxx@127.0.0.1:9394/m?x=1", c.ScrapeTargets[1].String())
	require.Equal(t, secret, mustPassword(t, c.ScrapeTargets[1]))
	require.Equal(t, "127.0.0.1:9100", c.ScrapeTargets[2].Job)
	require.Equal(t, map[string]string{"team": "payments", "dyno_type": "api"}, c.Labels)
	require.True(t, c.MetricsKeep.MatchString("up"))
	require.False(t, c.MetricsKeep.MatchString("upstream"), "metric regexes are anchored")
	require.Equal(t, RateLimit{PerSecond: 100, Burst: 500}, c.LogRateLimit)
	require.Equal(t, "warn", c.LogMinLevel)
	require.Equal(t, []string{"log/*.log", "/tmp/x.log"}, c.LogFiles)
	require.Equal(t, "http://127.0.0.1:5000/up?full=1", c.HealthURL().String())
	require.Empty(t, c.StatusAddr, "set but empty turns the status server off")
	require.Equal(t, slog.LevelDebug, c.AgentLogLevel)
	require.Equal(t, InstanceDynoID, c.Instance)
	require.True(t, c.MetricsForwarding())
	require.True(t, c.LogForwarding())
}

func mustPassword(t testing.TB, tg Target) string {
	t.Helper()
	p, ok := tg.URL.User.Password()
	require.True(t, ok)
	return p
}

func TestEnvironmentAndApp(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		env     string
		app     string
	}{
		{"explicit wins", []string{"ENVIRONMENT=Review", "NODE_ENV=production", "DYNO=web.1"}, "review", UnknownApp},
		{"node", []string{"NODE_ENV=production", "RAILS_ENV=staging"}, "production", UnknownApp},
		{"rails", []string{"RAILS_ENV=staging", "APP_ENV=x"}, "staging", UnknownApp},
		{"app env", []string{"APP_ENV=QA"}, "qa", UnknownApp},
		{"heroku", []string{"DYNO=worker.2", "HEROKU_APP_NAME=shop"}, "production", "shop"},
		{"elsewhere", []string{"DYNOSCOPE_LOG_MIN_LEVEL=all"}, "development", UnknownApp},
		{"app override", []string{"DYNOSCOPE_APP=shop-eu", "HEROKU_APP_NAME=shop"}, "development", "shop-eu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(tt.environ)
			require.NoError(t, err)
			require.Equal(t, tt.env, c.Environment)
			require.Equal(t, tt.app, c.App)
		})
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	c, _, err := Load([]string{
		"PORT=5000",
		"GRAFANA_CLOUD_PROMETHEUS_URL=https://9:" + secret + "@prom.example.com",
		"GRAFANA_CLOUD_PROMETHEUS_USER=123456",
		"GRAFANA_CLOUD_PROMETHEUS_PASSWORD=" + secret,
		"GRAFANA_CLOUD_LOKI_PASSWORD=" + secret,
		"DYNOSCOPE_SCRAPE_TARGETS=http://a:" + secret + "@127.0.0.1:5000/metrics",
		"DYNOSCOPE_SCRAPE_INTERVAL=30s",
	})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, c.Print(&buf))
	out := buf.String()
	require.NotContains(t, out, secret)
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		lines[f[0]] = f[1:]
	}
	require.Len(t, lines, len(KnownNames()), "every variable is printed")
	require.Equal(t, []string{"****", "set"}, lines["GRAFANA_CLOUD_PROMETHEUS_PASSWORD"])
	require.Equal(t, []string{"-", "not", "set"}, lines["GRAFANA_CLOUD_LOKI_USER"])
	require.Equal(t, []string{"https://9:xxxxx@prom.example.com/api/prom/push", "set"}, lines["GRAFANA_CLOUD_PROMETHEUS_URL"])
	require.Equal(t, []string{"app=http://a:xxxxx@127.0.0.1:5000/metrics", "set"}, lines["DYNOSCOPE_SCRAPE_TARGETS"])
	require.Equal(t, []string{"30s", "set"}, lines["DYNOSCOPE_SCRAPE_INTERVAL"])
	require.Equal(t, []string{"10s", "default"}, lines["DYNOSCOPE_SCRAPE_TIMEOUT"])
	require.Equal(t, []string{"development", "default", "(off", "Heroku)"}, lines["ENVIRONMENT"])
}

func TestUnknownNames(t *testing.T) {
	_, warnings, err := Load([]string{
		"DYNOSCOPE_SCRAPE_INTERVALL=5s",
		"DYNOSCOPE_LABLES=a=b",
		"GRAFANA_CLOUD_PROMETHEUS_PASS=x",
		"GRAFANA_CLOUD_API_KEY=x", // another tool's: no warning
		"DYNOSCOPE_WHATEVER_THIS_IS_NOT_CLOSE=1",
		"_DYNOSCOPE_INTERNAL=1",
		"ENABLE_METRICS=false", // agent off: no forwarding warnings
		"DYNOSCOPE_APP=x",
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		"DYNOSCOPE_LABLES is not a dynoscope variable: did you mean DYNOSCOPE_LABELS?",
		"DYNOSCOPE_SCRAPE_INTERVALL is not a dynoscope variable: did you mean DYNOSCOPE_SCRAPE_INTERVAL?",
		"DYNOSCOPE_WHATEVER_THIS_IS_NOT_CLOSE is not a dynoscope variable: see dynoscope config for the known names",
		"GRAFANA_CLOUD_PROMETHEUS_PASS is not a dynoscope variable: did you mean GRAFANA_CLOUD_PROMETHEUS_PASSWORD?",
	}, warnings)
}

func TestKnownNames(t *testing.T) {
	names := KnownNames()
	for _, n := range []string{
		"GRAFANA_CLOUD_PROMETHEUS_URL", "GRAFANA_CLOUD_PROMETHEUS_USER", "GRAFANA_CLOUD_PROMETHEUS_PASSWORD",
		"GRAFANA_CLOUD_LOKI_URL", "GRAFANA_CLOUD_LOKI_USER", "GRAFANA_CLOUD_LOKI_PASSWORD",
		"ENABLE_METRICS", "ENVIRONMENT", "DYNOSCOPE_APP", "DYNOSCOPE_PLATFORM",
		"DYNOSCOPE_SCRAPE_TARGETS", "DYNOSCOPE_SCRAPE_INTERVAL", "DYNOSCOPE_SCRAPE_TIMEOUT",
		"DYNOSCOPE_LABELS", "DYNOSCOPE_METRICS_KEEP", "DYNOSCOPE_METRICS_DROP", "DYNOSCOPE_MAX_SERIES",
		"DYNOSCOPE_INSTANCE", "DYNOSCOPE_QUEUE_MAX_BYTES", "DYNOSCOPE_HEALTH_PATH", "DYNOSCOPE_LOGS",
		"DYNOSCOPE_LOG_FILES", "DYNOSCOPE_LOG_REDACT", "DYNOSCOPE_LOG_MIN_LEVEL", "DYNOSCOPE_LOG_DROP",
		"DYNOSCOPE_LOG_RATE_LIMIT", "DYNOSCOPE_LOG_MAX_LINE_BYTES", "DYNOSCOPE_LOG_QUEUE_MAX_BYTES",
		"DYNOSCOPE_LOG_MULTILINE", "DYNOSCOPE_SOCKET", "DYNOSCOPE_STATUS_ADDR", "DYNOSCOPE_SHUTDOWN_TIMEOUT",
		"DYNOSCOPE_DRY_RUN", "DYNOSCOPE_AGENT_LOG_LEVEL", "DYNOSCOPE_DISABLED", "DYNOSCOPE_ONE_OFF",
		"DYNOSCOPE_MEMORY_LIMIT", "DYNOSCOPE_BINARY_URL", "DYNOSCOPE_BINARY_SHA256",
	} {
		require.Contains(t, names, n)
	}
	require.Len(t, names, 39)
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16MiB", 16 << 20, true}, {"256KiB", 256 << 10, true}, {"1GiB", 1 << 30, true},
		{"1048576", 1 << 20, true}, {"512B", 512, true}, {"1.5MiB", 3 << 19, true},
		{"64M", 0, false}, {"", 0, false}, {"-1KiB", 0, false}, {"1.5", 0, false}, {"MiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			require.Equal(t, tt.ok, err == nil, "err=%v", err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want RateLimit
		ok   bool
	}{
		{"", RateLimit{}, true}, {"none", RateLimit{}, true},
		{"100", RateLimit{100, 100}, true}, {"100/s", RateLimit{100, 100}, true},
		{"100/s,burst=500", RateLimit{100, 500}, true}, {"600/m", RateLimit{10, 600}, true},
		{"0.5/s", RateLimit{0.5, 1}, true},
		{"100/h", RateLimit{}, false}, {"0", RateLimit{}, false}, {"100/s,burst=0", RateLimit{}, false},
		{"100/s,bust=5", RateLimit{}, false}, {"fast", RateLimit{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRateLimit(tt.in)
			require.Equal(t, tt.ok, err == nil, "err=%v", err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseTargets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"http://127.0.0.1:5000", []string{"app=http://127.0.0.1:5000/metrics"}},
		{"web=http://127.0.0.1:5000/m,http://127.0.0.1:9394", []string{"web=http://127.0.0.1:5000/m", "app=http://127.0.0.1:9394/metrics"}},
		{"app=http://127.0.0.1:1/x,http://localhost:9394/metrics", []string{"app=http://127.0.0.1:1/x", "localhost:9394=http://localhost:9394/metrics"}},
		{"http://h:1/m?a=b", []string{"app=http://h:1/m?a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ts, err := ParseTargets(tt.in)
			require.NoError(t, err)
			var got []string
			for _, tg := range ts {
				got = append(got, tg.String())
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPlainHTTPAllowed(t *testing.T) {
	tests := [][]string{
		{"GRAFANA_CLOUD_PROMETHEUS_URL=http://127.0.0.1:9090/api/v1/write", "GRAFANA_CLOUD_PROMETHEUS_PASSWORD=x"},
		{"GRAFANA_CLOUD_LOKI_URL=http://localhost:3100", "GRAFANA_CLOUD_LOKI_USER=x"},
		{"GRAFANA_CLOUD_PROMETHEUS_URL=http://prometheus:9090/api/v1/write"}, // compose, no credentials
		{"GRAFANA_CLOUD_LOKI_URL=http://[::1]:3100"},
	}
	for _, environ := range tests {
		_, _, err := Load(environ)
		require.NoError(t, err, environ)
	}
}

func TestPortDefault(t *testing.T) {
	c, warnings, err := Load([]string{"PORT=abc", "DYNOSCOPE_APP=x"})
	require.NoError(t, err)
	require.Empty(t, c.ScrapeTargets)
	require.Contains(t, warnings, `PORT="abc" is not a port number: no default scrape target`)
	c, _, err = Load([]string{"PORT=5000", "DYNOSCOPE_SCRAPE_TARGETS="})
	require.NoError(t, err)
	require.Empty(t, c.ScrapeTargets, "set but empty means no target")
}

func TestRedactURLs(t *testing.T) {
	require.Equal(t, "a=http://u:xxxxx@h/x,http://h2,https://v:xxxxx@h3",
		redactURLs("a=http://u:p@ss@h/x,http://h2,https://v:"+secret+"@h3"))
	require.Equal(t, "http://tok@h", redactURLs("http://tok@h"))
	require.Equal(t, "plain", redactURLs("plain"))
}

func TestHerokuWarnings(t *testing.T) {
	_, warnings, err := Load([]string{
		"DYNO=web.1", "DYNOSCOPE_APP=shop", "DYNOSCOPE_DRY_RUN=true",
		"DYNOSCOPE_INSTANCE=dyno_id", "DYNOSCOPE_SHUTDOWN_TIMEOUT=45s",
		"GRAFANA_CLOUD_LOKI_USER=42",
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		"only one of GRAFANA_CLOUD_LOKI_USER and GRAFANA_CLOUD_LOKI_PASSWORD is set: basic auth needs both",
		"DYNOSCOPE_INSTANCE=dyno_id but HEROKU_DYNO_ID is not set: instance is the dyno name (run heroku labs:enable runtime-dyno-metadata)",
		"DYNOSCOPE_SHUTDOWN_TIMEOUT=45s: Heroku kills the dyno 30s after SIGTERM, so the flush may be cut short",
	}, warnings)
}

// TestEnvconfigDecoders checks the parsed types also work with
// envconfig.Process, for any other envconfig struct.
func TestEnvconfigDecoders(t *testing.T) {
	var spec struct {
		Queue Size      `envconfig:"TEST_DYNOSCOPE_QUEUE"`
		Rate  RateLimit `envconfig:"TEST_DYNOSCOPE_RATE"`
	}
	t.Setenv("TEST_DYNOSCOPE_QUEUE", "16MiB")
	t.Setenv("TEST_DYNOSCOPE_RATE", "100/s,burst=500")
	require.NoError(t, envconfig.Process("", &spec))
	require.Equal(t, Size(16<<20), spec.Queue)
	require.Equal(t, RateLimit{100, 500}, spec.Rate)
	t.Setenv("TEST_DYNOSCOPE_QUEUE", "lots")
	require.ErrorContains(t, envconfig.Process("", &spec), "is not a size")
}

func BenchmarkLoad(b *testing.B) {
	environ := append(os.Environ(), "PORT=5000", "DYNO=web.1", "DYNOSCOPE_LABELS=team=a,region=eu",
		"GRAFANA_CLOUD_PROMETHEUS_URL=https://prom.example.com", "DYNOSCOPE_METRICS_DROP=go_gc_.*")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Load(environ); err != nil {
			b.Fatal(err)
		}
	}
}
