package e2e

import (
	"fmt"
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
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// seqTarget serves a page whose gauge e2e_scrape_seq is 1 at the first
// scrape, 2 at the second, ...: a gap at the receiver is a lost sample.
// extra adds that many constant gauges, to fill remote write batches.
type seqTarget struct {
	srv   *httptest.Server
	n     atomic.Int64
	extra int
}

func newSeqTarget(t testing.TB, extra int) *seqTarget {
	t.Helper()
	st := &seqTarget{extra: extra}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentText)
		var b strings.Builder
		fmt.Fprintf(&b, "# TYPE e2e_scrape_seq gauge\ne2e_scrape_seq %d\n", st.n.Add(1))
		if st.extra > 0 {
			b.WriteString("# TYPE e2e_filler gauge\n")
			for i := range st.extra {
				fmt.Fprintf(&b, "e2e_filler{i=\"%d\"} %d\n", i, i)
			}
		}
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *seqTarget) url() string { return st.srv.URL + "/metrics" }

// TestRemoteOutageLosesNothing puts a remote in front of Prometheus that
// answers 503 (with Retry-After: 1) to the first requests: the agent retries
// and every scrape of a steady series arrives, none missing.
func TestRemoteOutageLosesNothing(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	target, err := url.Parse(prom)
	require.NoError(t, err)
	const outage = 4
	var requests, forwarded atomic.Int64
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= outage {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "e2e: service unavailable", http.StatusServiceUnavailable)
			return
		}
		forwarded.Add(1)
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	seq := newSeqTarget(t, 0)
	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+proxy.URL+testsupport.RemoteWritePath,
		"DYNOSCOPE_SCRAPE_TARGETS=steady="+seq.url(),
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	// Past the outage, and a few scrapes more.
	require.Eventually(t, func() bool { return forwarded.Load() >= 2 && seq.n.Load() >= 12 }, arriveTimeout, tick,
		"requests %d, forwarded %d, scrapes %d", requests.Load(), forwarded.Load(), seq.n.Load())
	waitValue(t, prom, `max_over_time(e2e_scrape_seq{job="steady"}[10m])`, atLeast(12))

	first, ok := value(t, prom, `min_over_time(e2e_scrape_seq{job="steady"}[10m])`)
	require.True(t, ok)
	require.Equal(t, 1.0, first, "the first scrape, made during the outage, arrived")
	last, _ := value(t, prom, `max_over_time(e2e_scrape_seq{job="steady"}[10m])`)
	count, _ := value(t, prom, `count_over_time(e2e_scrape_seq{job="steady"}[10m])`)
	require.Equal(t, last-first+1, count, "every scrape from 1 to %v arrived, once", last)

	retries, ok := selfMetric(t, statusAddr, "dynoscope_remote_write_retries_total")
	require.True(t, ok)
	require.GreaterOrEqual(t, retries, float64(outage), "each 503 was retried")
	dropped, _ := selfMetric(t, statusAddr, `dynoscope_remote_write_samples_dropped_total{reason="rejected"}`)
	require.Zero(t, dropped)
	p.stop(t)
}

// TestRemoteRejectsBatches has a remote that answers 400 to everything:
// the agent logs the body once (not once per batch), counts the samples as
// dropped (reason rejected), doesn't retry them, and keeps running.
func TestRemoteRejectsBatches(t *testing.T) {
	t.Parallel()
	const body = "e2e-reject: out of order sample"
	var requests atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, body, http.StatusBadRequest)
	}))
	t.Cleanup(remote.Close)

	// 2500 series a second: a full batch (2000 samples) every second.
	seq := newSeqTarget(t, 2500)
	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remote.URL+testsupport.RemoteWritePath,
		"DYNOSCOPE_SCRAPE_TARGETS=big="+seq.url(),
		"DYNOSCOPE_MAX_SERIES=5000",
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	require.Eventually(t, func() bool { return requests.Load() >= 4 }, arriveTimeout, tick, "the agent sends batch after batch")
	require.Eventually(t, func() bool {
		v, ok := selfMetric(t, statusAddr, `dynoscope_remote_write_samples_dropped_total{reason="rejected"}`)
		return ok && v >= 2000
	}, arriveTimeout, tick, "rejected samples are counted")
	retries, _ := selfMetric(t, statusAddr, "dynoscope_remote_write_retries_total")
	require.Zero(t, retries, "a 400 is not retried")

	require.True(t, p.running(), "the agent keeps running")
	seen := seq.n.Load()
	require.Eventually(t, func() bool { return seq.n.Load() >= seen+2 }, arriveTimeout, tick, "and scraping")
	require.Equal(t, 1, strings.Count(p.stderr.String(), body), "the body is logged once, not per batch:\n%s", p.stderr.String())
	require.Contains(t, p.stderr.String(), "status_code=400")
	p.stop(t)
}

// TestBadTargets scrapes a target that answers 500, one with a malformed
// page and one that hangs past the scrape timeout, beside a good one: each
// bad one is up=0 at the receiver, the good one keeps arriving, the agent
// keeps running.
func TestBadTargets(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/error", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "e2e: internal error", http.StatusInternalServerError)
	})
	mux.HandleFunc("/malformed", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, "# TYPE broken gauge\nbroken{label=\"unterminated} 1\nthis is not { an exposition\n")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	bad := httptest.NewServer(mux)
	t.Cleanup(bad.Close)
	t.Cleanup(func() { close(release) }) // before bad.Close, which waits for handlers
	good := newSeqTarget(t, 0)

	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
		"DYNOSCOPE_SCRAPE_TARGETS="+strings.Join([]string{
			"good=" + good.url(),
			"error=" + bad.URL + "/error",
			"malformed=" + bad.URL + "/malformed",
			"hang=" + bad.URL + "/hang",
		}, ","),
		"DYNOSCOPE_SCRAPE_TIMEOUT=500ms",
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	for _, job := range []string{"error", "malformed", "hang"} {
		waitValue(t, prom, sel("up", map[string]string{"job": job, "app": "e2e"}), equals(0))
		waitValue(t, prom, sel("scrape_samples_scraped", map[string]string{"job": job}), equals(0))
	}
	waitValue(t, prom, sel("up", map[string]string{"job": "good"}), equals(1))
	before, _ := value(t, prom, `max_over_time(e2e_scrape_seq{job="good"}[10m])`)
	waitValue(t, prom, `max_over_time(e2e_scrape_seq{job="good"}[10m])`, atLeast(before+3))
	require.True(t, p.running())
	// Each failing target is logged once, not at every scrape.
	for _, job := range []string{"error", "malformed", "hang"} {
		require.Equal(t, 1, strings.Count(p.stderr.String(), `msg="scrape failed" app=dynoscope component=scrape job=`+job+" "), job)
	}

	// The status endpoint names each failure.
	_, st := httpGet(t, "http://"+statusAddr+"/status")
	for _, want := range []string{`"job": "error"`, "500", `"job": "malformed"`, `"job": "hang"`} {
		require.Contains(t, st, want)
	}
	p.stop(t)
}

// TestLokiRejectionLoggedOnce: a Loki that refuses every push (401, wrong
// token) makes loki-client-go give up each batch; the agent must say so
// once and then summarise (STYLE rule 12, as remote write does for its 400s),
// not write an ERROR line to the dyno's log for every batch, while it
// counts the lines as dropped.
func TestLokiRejectionLoggedOnce(t *testing.T) {
	t.Parallel()
	loki := testsupport.NewLokiReceiver(t)
	loki.RequireBasicAuth("loki-user", "the-right-token")
	logFile := filepath.Join(t.TempDir(), "app.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o600))
	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
		"GRAFANA_CLOUD_LOKI_USER=loki-user",
		"GRAFANA_CLOUD_LOKI_PASSWORD=a-wrong-token",
		"DYNOSCOPE_LOG_FILES="+logFile,
		"DYNOSCOPE_SCRAPE_TARGETS=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	// The app logs steadily until Loki has refused several batches.
	for i := 0; loki.Requests() < 5; i++ {
		require.Less(t, i, 600, "only %d push requests", loki.Requests())
		_, err := fmt.Fprintf(f, "level=info msg=\"app line %d\"\n", i)
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond) // the pace of an app's output, not a wait for a result
	}
	require.Eventually(t, func() bool {
		_, body, err := get("http://" + statusAddr + "/metrics")
		return err == nil && strings.Contains(body, "dynoscope_log_lines_dropped_total{reason=\"rejected\"}") &&
			!strings.Contains(body, "dynoscope_log_lines_dropped_total{reason=\"rejected\"} 0\n")
	}, arriveTimeout, tick, "the refused lines are counted as dropped (rejected)")
	require.True(t, p.running())
	logged := strings.Count(p.stderr.String(), "loki gave up a batch")
	require.Equal(t, 1, logged, "%d push requests refused, %d ERROR lines:\n%s", loki.Requests(), logged, p.stderr.String())
	p.stop(t)
}

// TestQueueBoundedDuringOutage: while the remote is down, the queue stays
// within DYNOSCOPE_QUEUE_MAX_BYTES by dropping its oldest batches (counted
// as queue_full); when the remote is back, the newest samples arrive.
func TestQueueBoundedDuringOutage(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	target, err := url.Parse(prom)
	require.NoError(t, err)
	var down atomic.Bool
	down.Store(true)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "e2e: down", http.StatusServiceUnavailable)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	const maxBytes = 64 << 10
	seq := newSeqTarget(t, 2500)
	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+proxy.URL+testsupport.RemoteWritePath,
		"DYNOSCOPE_SCRAPE_TARGETS=big="+seq.url(),
		"DYNOSCOPE_MAX_SERIES=5000",
		"DYNOSCOPE_QUEUE_MAX_BYTES=64KiB",
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	require.Eventually(t, func() bool {
		v, ok := selfMetric(t, statusAddr, `dynoscope_remote_write_samples_dropped_total{reason="queue_full"}`)
		return ok && v > 0
	}, arriveTimeout, tick, "the oldest batches are dropped and counted")
	for range 5 { // a few reads while the outage goes on
		qb, ok := selfMetric(t, statusAddr, "dynoscope_remote_write_queue_bytes")
		require.True(t, ok)
		require.LessOrEqual(t, qb, float64(maxBytes))
		n := seq.n.Load()
		require.Eventually(t, func() bool { return seq.n.Load() > n }, arriveTimeout, tick)
	}

	down.Store(false)
	recovered := seq.n.Load()
	waitValue(t, prom, `max_over_time(e2e_scrape_seq{job="big"}[10m])`, atLeast(float64(recovered)))
	require.True(t, p.running())
	p.stop(t)
}
