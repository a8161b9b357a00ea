package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// TestStalenessMarkers: a series that leaves the page, and every series of
// a target whose scrape fails, end at once at the receiver (a staleness
// marker), not five minutes later; they come back with the target.
func TestStalenessMarkers(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	var mode atomic.Int32 // 0: a and b; 1: a only; 2: 500
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch mode.Load() {
		case 0:
			w.Header().Set("Content-Type", contentText)
			_, _ = io.WriteString(w, "# TYPE e2e_a gauge\ne2e_a 1\n# TYPE e2e_b gauge\ne2e_b 2\n")
		case 1:
			w.Header().Set("Content-Type", contentText)
			_, _ = io.WriteString(w, "# TYPE e2e_a gauge\ne2e_a 1\n")
		default:
			http.Error(w, "e2e: down", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
		"DYNOSCOPE_SCRAPE_TARGETS=flappy="+srv.URL+"/metrics",
		"DYNOSCOPE_HEALTH_PATH=",
	), dynoscope(t), "agent")

	present := func(expr string) bool { _, ok := value(t, prom, expr); return ok }
	waitFor := func(msg string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, arriveTimeout, tick, msg)
	}
	const a, b, up = `e2e_a{job="flappy"}`, `e2e_b{job="flappy"}`, `up{job="flappy"}`
	waitFor("a and b arrive", func() bool { return present(a) && present(b) })

	mode.Store(1)
	waitFor("b ends when it leaves the page", func() bool { return !present(b) })
	require.True(t, present(a))

	mode.Store(2)
	waitValue(t, prom, up, equals(0))
	waitFor("a ends when the scrape fails", func() bool { return !present(a) })

	mode.Store(0)
	waitValue(t, prom, up, equals(1))
	waitFor("both come back", func() bool { return present(a) && present(b) })
	p.stop(t)
}

// TestShutdownIsBoundedWhenRemoteHangs: with a remote that accepts and
// never answers, SIGTERM (sent twice, as Heroku may) ends the agent with
// status 0 by DYNOSCOPE_SHUTDOWN_TIMEOUT, and what could not be sent is
// counted as dropped at shutdown. A second SIGTERM does not abort the flush.
func TestShutdownIsBoundedWhenRemoteHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var requests atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(remote.Close)
	t.Cleanup(func() { close(release) }) // before remote.Close, which waits for handlers
	seq := newSeqTarget(t, 2500)         // a full batch at each scrape: no waiting for the batch deadline

	const timeout = 3 * time.Second
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remote.URL+testsupport.RemoteWritePath,
		"DYNOSCOPE_SCRAPE_TARGETS=big="+seq.url(),
		"DYNOSCOPE_MAX_SERIES=5000",
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_SHUTDOWN_TIMEOUT="+timeout.String(),
	), dynoscope(t), "agent")
	require.Eventually(t, func() bool { return requests.Load() >= 1 && seq.n.Load() >= 3 }, arriveTimeout, tick)

	signalled := time.Now()
	p.signal(t, syscall.SIGTERM)
	require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "signal received") }, 10*time.Second, 10*time.Millisecond)
	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.wait(t, timeout+10*time.Second))
	took := time.Since(signalled)
	require.Less(t, took, timeout+5*time.Second, "the flush ends by its deadline")
	stopped := regexp.MustCompile(`msg=stopped .*dropped_by_reason="map\[([^]]*)\]"`).FindStringSubmatch(p.stderr.String())
	require.NotNil(t, stopped, p.stderr.String())
	require.Regexp(t, `shutdown:[1-9]`, stopped[1], "what could not be sent is counted")
	t.Logf("stopped %s after SIGTERM: %s", took.Round(time.Millisecond), stopped[0])
}

// TestConfigRefusesUnsafeEndpoints: credentials over plain http to a host
// other than loopback, and a status endpoint off loopback, are configuration
// errors that name the variable; the password is not printed.
func TestConfigRefusesUnsafeEndpoints(t *testing.T) {
	t.Parallel()
	e := baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL=http://10.255.255.1:9/api/prom/push",
		"GRAFANA_CLOUD_PROMETHEUS_USER=prom-user",
		"GRAFANA_CLOUD_PROMETHEUS_PASSWORD="+promPassword,
		"GRAFANA_CLOUD_LOKI_URL=http://loki-user:"+lokiPassword+"@10.255.255.1:9/loki/api/v1/push",
		"DYNOSCOPE_STATUS_ADDR=0.0.0.0:9358",
	)
	for _, cmd := range []string{"config", "check"} {
		t.Run(cmd, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := execute(t, e, dynoscope(t), cmd)
			require.Equal(t, 1, code)
			require.Less(t, time.Since(start), 10*time.Second, "refused before any connection")
			all := stdout + stderr
			for _, want := range []string{
				`error: GRAFANA_CLOUD_PROMETHEUS_URL="http://10.255.255.1:9/api/prom/push" would send credentials over plain http to a host other than loopback: use https`,
				`error: GRAFANA_CLOUD_LOKI_URL="http://loki-user:xxxxx@10.255.255.1:9/loki/api/v1/push" would send credentials over plain http`,
				`error: DYNOSCOPE_STATUS_ADDR="0.0.0.0:9358" must be a 127.0.0.1 address`,
			} {
				require.Contains(t, all, want)
			}
			requireNoSecret(t, cmd+" output", all)
		})
	}
	t.Run("agent", func(t *testing.T) {
		// The agent starts nothing with such a configuration, and says why.
		p := start(t, e.with("DYNOSCOPE_SCRAPE_TARGETS="), dynoscope(t), "agent")
		require.Eventually(t, func() bool {
			return strings.Contains(p.stderr.String(), "configuration is invalid: forwarding is off")
		}, arriveTimeout, tick)
		p.signal(t, syscall.SIGTERM)
		require.Equal(t, 0, p.wait(t, exitTimeout))
		requireNoSecret(t, "agent stderr", p.stderr.String())
		require.NotContains(t, p.stderr.String(), "msg=started")
	})
}
