package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// recorder is an Appender that keeps every batch.
type recorder struct {
	mu      sync.Mutex
	batches [][]series.Sample
}

func (r *recorder) Append(s []series.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, s)
}

func (r *recorder) all() [][]series.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]series.Sample(nil), r.batches...)
}

// syncBuffer collects output that is written and read at once.
type syncBuffer = testsupport.Buffer

// switchHandler serves whatever handler was set last.
type switchHandler struct{ h atomic.Value }

func (s *switchHandler) set(h http.HandlerFunc) { s.h.Store(h) }
func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.Load().(http.HandlerFunc)(w, r)
}

func servePage(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctText)
		_, _ = w.Write([]byte(body))
	}
}

func startTarget(t testing.TB, h http.HandlerFunc) (*switchHandler, *url.URL) {
	t.Helper()
	sw := &switchHandler{}
	sw.set(h)
	srv := httptest.NewServer(sw)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/metrics")
	require.NoError(t, err)
	return sw, u
}

type testEnv struct {
	m   *Manager
	app *recorder
	reg *prometheus.Registry
	log *syncBuffer
}

func newTestManager(t testing.TB, opts Options) *testEnv {
	t.Helper()
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Labels == nil {
		opts.Labels = testLabels
	}
	if opts.Instance == "" {
		opts.Instance = "web.1"
	}
	env := &testEnv{app: &recorder{}, reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(env.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := NewManager(opts, env.app, logger, env.reg)
	require.NoError(t, err)
	env.m = m
	return env
}

// run starts the manager and stops it at the end of the test.
func (e *testEnv) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func (e *testEnv) gauge(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (e *testEnv) failures(reason string) float64 {
	return testutil.ToFloat64(e.m.metrics.failures.WithLabelValues(reason))
}

func valueOf(samples []series.Sample, name string) (float64, bool) {
	for _, s := range samples {
		if s.Labels.Get(series.MetricName) == name {
			return s.V, true
		}
	}
	return 0, false
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

const goodPage = "# TYPE a counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n# TYPE b gauge\nb 3\n"

func TestScrapeRequest(t *testing.T) {
	var got *http.Request
	_, u := startTarget(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		servePage(goodPage)(w, r)
	})
	u.User = url.UserPassword("scraper", "s3cret")
	env := newTestManager(t, Options{Timeout: 2500 * time.Millisecond, UserAgent: "dynoscope/1.2.3"})
	res, err := env.m.ScrapeOnce(context.Background(), Target{Job: "app", URL: u})
	require.NoError(t, err)
	require.Equal(t, 3, res.Series)
	require.Equal(t, 3, res.Scraped)
	require.Len(t, res.Samples, 6)

	require.True(t, strings.HasPrefix(got.Header.Get("Accept"), "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"))
	require.Contains(t, got.Header.Get("Accept"), "application/openmetrics-text;version=1.0.0")
	require.Contains(t, got.Header.Get("Accept"), "text/plain;version=0.0.4")
	require.Equal(t, "gzip", got.Header.Get("Accept-Encoding"))
	require.Equal(t, "dynoscope/1.2.3", got.Header.Get("User-Agent"))
	require.Equal(t, "2.5", got.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"))
	user, pass, ok := got.BasicAuth()
	require.True(t, ok)
	require.Equal(t, "scraper", user)
	require.Equal(t, "s3cret", pass)
}

func TestContentNegotiation(t *testing.T) {
	text := readFixture(t, "prometheus-2.42.0.txt")
	want := seriesOf(pageSamples(t, text, ctText))
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		require.NoError(t, zw.Close())
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"text", ctText, "", text},
		{"text gzip", ctText, "gzip", gz(text)},
		{"openmetrics gzip", ctOpenMetrics, "gzip", gz(readFixture(t, "prometheus-2.42.0.openmetrics.txt"))},
		{"protobuf", ctProto, "", readFixture(t, "prometheus-2.42.0.pb")},
		{"protobuf gzip", ctProto, "gzip", gz(readFixture(t, "prometheus-2.42.0.pb"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, u := startTarget(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.encoding != "" {
					w.Header().Set("Content-Encoding", tc.encoding)
				}
				_, _ = w.Write(tc.body)
			})
			env := newTestManager(t, Options{})
			res, err := env.m.ScrapeOnce(context.Background(), Target{Job: "app", URL: u})
			require.NoError(t, err)
			got := seriesOf(res.Samples)
			require.Equal(t, len(want), len(got))
			// Same series; the test loop's target label set differs only in the URL-free labels.
			require.Equal(t, want, got)
		})
	}
}

// Each bad target: up 0, the reason counted, logged once, the loop goes on,
// and it recovers when the target does.
func TestBadTargets(t *testing.T) {
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(bytes.Repeat([]byte("a 1\n"), 1<<20)) // 4 MiB -> a few KiB
	require.NoError(t, zw.Close())
	require.Less(t, bomb.Len(), 64<<10)

	for _, tc := range []struct {
		name, reason string
		handler      http.HandlerFunc
		closed       bool
	}{
		{name: "malformed", reason: reasonParse, handler: servePage("a{b=\"c\" 1\n")},
		{name: "body over limit", reason: reasonBodyLimit, handler: servePage(strings.Repeat("a 1\n", 20_000))},
		{name: "gzip bomb", reason: reasonBodyLimit, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb.Bytes())
		}},
		{name: "slow", reason: reasonTimeout, handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}},
		{name: "not 200", reason: reasonStatus, handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}},
		{name: "invalid utf-8 label value", reason: reasonParse, handler: servePage("a{b=\"\xff\xfe\"} 1\n")},
		{name: "connection refused", reason: reasonNetwork, closed: true, handler: servePage(goodPage)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw, u := startTarget(t, tc.handler)
			if tc.closed {
				srv := httptest.NewServer(http.NotFoundHandler())
				u = mustURL(t, srv.URL+"/metrics")
				srv.Close()
			}
			env := newTestManager(t, Options{
				Targets:   []Target{{Job: "app", URL: u}},
				Interval:  150 * time.Millisecond,
				Timeout:   100 * time.Millisecond,
				BodyLimit: 64 << 10,
			})
			env.run(t)
			require.Eventually(t, func() bool { return env.failures(tc.reason) >= 2 }, 10*time.Second, 5*time.Millisecond)
			for _, b := range env.app.all() {
				up, ok := valueOf(b, "up")
				require.True(t, ok)
				require.Equal(t, 0.0, up)
			}
			st := env.m.Status()
			require.Len(t, st, 1)
			require.False(t, st[0].Up)
			require.NotEmpty(t, st[0].LastError)
			logs := env.log.String()
			require.Equal(t, 1, strings.Count(logs, "scrape failed"), logs)
			require.Contains(t, logs, "reason="+tc.reason)
			for _, r := range failureReasons {
				if r != tc.reason {
					require.Zero(t, env.failures(r), r)
				}
			}
			if tc.closed {
				return
			}
			sw.set(servePage(goodPage))
			require.Eventually(t, func() bool {
				b := env.app.all()
				up, _ := valueOf(b[len(b)-1], "up")
				return up == 1
			}, 10*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return strings.Contains(env.log.String(), "scrape recovered") }, time.Second, 5*time.Millisecond)
		})
	}
}

func TestStaleness(t *testing.T) {
	src := &bodySource{contentType: ctText}
	l := testLoop(t, src)
	l.limit = series.NewLimit(0)
	stale := func(samples []series.Sample) []string {
		var out []string
		for _, s := range samples {
			if s.IsStale() {
				out = append(out, s.Labels.Get(series.MetricName)+s.Labels.Get("x"))
			}
		}
		return out
	}
	scrape := func(body string) []series.Sample {
		src.body = []byte(body)
		res, _ := l.scrape(context.Background())
		return res.Samples
	}

	require.Empty(t, stale(scrape(goodPage)))
	require.Equal(t, 3, l.limit.Active())
	require.Equal(t, []string{"a_total2"}, stale(scrape("# TYPE a counter\na_total{x=\"1\"} 1\nb 3\n")))
	require.Equal(t, 2, l.limit.Active(), "a vanished series frees its slot")
	got := scrape("a{")
	up, _ := valueOf(got, "up")
	require.Equal(t, 0.0, up)
	require.ElementsMatch(t, []string{"a_total1", "b"}, stale(got), "a failed scrape marks every series stale")
	require.Zero(t, l.limit.Active())
	require.Empty(t, stale(scrape("a{")), "only once")
	require.Empty(t, stale(scrape(goodPage)))
	require.Equal(t, 3, l.limit.Active())
}

// A scrape cut short by shutdown appends nothing: no up 0, no staleness
// markers (the next dyno continues the series).
func TestNoStaleAtShutdown(t *testing.T) {
	var calls atomic.Int32
	entered := make(chan struct{})
	_, u := startTarget(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			servePage(goodPage)(w, r)
			return
		}
		close(entered)
		<-r.Context().Done()
	})
	env := newTestManager(t, Options{Targets: []Target{{Job: "app", URL: u}}, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond})
	env.m.opts.Timeout = time.Minute // the second scrape waits for shutdown, not its timeout
	env.m.loops[0].timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { env.m.Run(ctx); close(done) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("second scrape did not start")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	batches := env.app.all()
	require.Len(t, batches, 1)
	for _, s := range batches[0] {
		require.False(t, s.IsStale())
	}
	require.Zero(t, env.failures(reasonTimeout))
}

func TestSeriesLimit(t *testing.T) {
	page := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "m{i=\"%d\"} %d\n", i, i)
		}
		return b.String()
	}
	swA, uA := startTarget(t, servePage(page(8)))
	_, uB := startTarget(t, servePage(page(8)))
	env := newTestManager(t, Options{
		Targets:   []Target{{Job: "a", URL: uA}, {Job: "b", URL: uB}},
		MaxSeries: 20,
	})
	a, b := env.m.loops[0], env.m.loops[1]
	dropped := func() float64 { return testutil.ToFloat64(env.m.metrics.droppedLimit) }
	scrape := func(l *loop) Result {
		res, err := l.scrape(context.Background())
		require.NoError(t, err)
		return res
	}
	require.Equal(t, 6.0, env.gauge(t, "dynoscope_active_series"), "up and scrape_* of two targets")
	require.Equal(t, 20.0, env.gauge(t, "dynoscope_series_limit"))

	require.Equal(t, 8, scrape(a).Series)
	require.Equal(t, 6, scrape(b).Series)
	require.Equal(t, 20.0, env.gauge(t, "dynoscope_active_series"))
	require.Equal(t, 2.0, dropped())

	require.Equal(t, 6, scrape(b).Series, "admitted series stay, the rest stay out")
	require.Equal(t, 4.0, dropped())
	res := scrape(b)
	v, _ := valueOf(res.Samples, "scrape_samples_scraped")
	require.Equal(t, 8.0, v, "scrape_samples_scraped counts the page, before the limit")

	swA.set(servePage(page(4)))
	resA := scrape(a)
	require.Equal(t, 4, resA.Series)
	require.Equal(t, 16.0, env.gauge(t, "dynoscope_active_series"), "stale series free their slots")
	require.Equal(t, 8, scrape(b).Series, "the freed slots go to new series")
	require.Equal(t, 18.0, env.gauge(t, "dynoscope_active_series"))
	require.Equal(t, 6.0, dropped())

	swA.set(servePage(page(8)))
	require.Equal(t, 6, scrape(a).Series)
	require.Equal(t, 20.0, env.gauge(t, "dynoscope_active_series"))
	require.Equal(t, 8.0, dropped())
	require.Equal(t, 1, strings.Count(env.log.String(), "series limit reached"), "warned once, then counted")
}

func TestGatherer(t *testing.T) {
	selfReg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dyno_memory_usage_bytes", Help: "h"})
	g.Set(42)
	selfReg.MustRegister(g)
	_, u := startTarget(t, servePage(goodPage))
	env := newTestManager(t, Options{
		Targets:   []Target{{Job: "app", URL: u}},
		Interval:  50 * time.Millisecond,
		Timeout:   40 * time.Millisecond,
		Keep:      regexpMust(t, "^a_total$"),
		MaxSeries: 1, // in-process series pass the budget
	})
	env.m.AddGatherer(SelfJob, selfReg)
	env.run(t)
	var got []series.Sample
	require.Eventually(t, func() bool {
		for _, b := range env.app.all() {
			if v, ok := valueOf(b, "dyno_memory_usage_bytes"); ok && v == 42 {
				got = b
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	ls := got[0].Labels
	require.Equal(t, "dynoscope", ls.Get("job"))
	require.Equal(t, "web.1", ls.Get("instance"))
	require.Equal(t, "demo", ls.Get("app"))
	up, _ := valueOf(got, "up")
	require.Equal(t, 1.0, up)
	require.Eventually(t, func() bool {
		st := env.m.Status()
		return len(st) == 2 && st[0].Up && st[1].Up && st[1].Job == SelfJob
	}, 10*time.Second, 5*time.Millisecond)
}

func TestCredentialsNeverPrinted(t *testing.T) {
	_, u := startTarget(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusUnauthorized)
	})
	u.User = url.UserPassword("scraper", "s3cret")
	closed := httptest.NewServer(http.NotFoundHandler())
	uc := mustURL(t, strings.Replace(closed.URL, "http://", "http://scraper:s3cret@", 1)+"/metrics")
	closed.Close()
	env := newTestManager(t, Options{
		Targets:  []Target{{Job: "app", URL: u}, {Job: "gone", URL: uc}},
		Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond,
	})
	env.run(t)
	require.Eventually(t, func() bool {
		return env.failures(reasonStatus) >= 1 && env.failures(reasonNetwork) >= 1
	}, 10*time.Second, 5*time.Millisecond)
	for _, target := range []Target{{Job: "app", URL: u}, {Job: "gone", URL: uc}} {
		_, err := env.m.ScrapeOnce(context.Background(), target)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "s3cret")
		require.Contains(t, err.Error(), "xxxxx")
	}
	require.NotContains(t, env.log.String(), "s3cret")
	for _, st := range env.m.Status() {
		require.NotContains(t, fmt.Sprint(st), "s3cret")
	}

	_, err := NewManager(Options{Interval: time.Second, Timeout: time.Second,
		Targets: []Target{{Job: "app", URL: mustURL(t, "http://u:s3cret@example.com/metrics")}}}, &recorder{}, nil, nil)
	require.ErrorIs(t, err, ErrInsecure)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestNewManagerInvalid(t *testing.T) {
	good := mustURL(t, "http://127.0.0.1:9/metrics")
	for _, tc := range []struct {
		name string
		opts Options
		err  string
	}{
		{"no interval", Options{Timeout: time.Second}, "scrape: interval must be positive"},
		{"timeout over interval", Options{Interval: time.Second, Timeout: 2 * time.Second}, "scrape: timeout 2s must be positive and at most the interval 1s"},
		{"no job", Options{Interval: time.Second, Timeout: time.Second, Targets: []Target{{URL: good}}}, "scrape: target without a job"},
		{"bad scheme", Options{Interval: time.Second, Timeout: time.Second, Targets: []Target{{Job: "a", URL: mustURL(t, "ftp://h/m")}}}, "scrape: target ftp://h/m: scheme must be http or https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewManager(tc.opts, &recorder{}, nil, nil)
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestJitterOffsetStable(t *testing.T) {
	lb := newLabeler("app", "web.1", nil, nil, nil)
	a1 := newLoop("app", "", "http://127.0.0.1:5000/metrics", nil, lb, time.Minute)
	a2 := newLoop("app", "", "http://127.0.0.1:5000/metrics", nil, lb, time.Minute)
	b := newLoop("app", "", "http://127.0.0.1:5001/metrics", nil, lb, time.Minute)
	require.Equal(t, a1.offset, a2.offset)
	require.NotEqual(t, a1.offset, b.offset)
	require.GreaterOrEqual(t, a1.offset, time.Duration(0))
	require.Less(t, a1.offset, time.Minute)
}

// Remote write registers the same dropped-samples vector; the second
// registration reuses the first.
func TestDroppedCounterShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	rw := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynoscope_remote_write_samples_dropped_total", Help: DroppedHelp}, []string{"reason"})
	reg.MustRegister(rw)
	m, err := NewManager(Options{Interval: time.Second, Timeout: time.Second, MaxSeries: 1}, &recorder{}, nil, reg)
	require.NoError(t, err)
	m.metrics.droppedLimit.Inc()
	require.Equal(t, 1.0, testutil.ToFloat64(rw.WithLabelValues("series_limit")))

	// Passed in by main: not registered again.
	rw2 := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dynoscope_remote_write_samples_dropped_total", Help: "other help"}, []string{"reason"})
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(rw2)
	m2, err := NewManager(Options{Interval: time.Second, Timeout: time.Second, Dropped: rw2}, &recorder{}, nil, reg2)
	require.NoError(t, err)
	m2.metrics.droppedLimit.Inc()
	require.Equal(t, 1.0, testutil.ToFloat64(rw2.WithLabelValues("series_limit")))
}

func TestGathererFailure(t *testing.T) {
	env := newTestManager(t, Options{Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond})
	env.m.AddGatherer(SelfJob, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return nil, fmt.Errorf("collector broke")
	}))
	env.run(t)
	require.Eventually(t, func() bool { return env.failures(reasonGather) >= 2 }, 10*time.Second, 5*time.Millisecond)
	b := env.app.all()
	up, ok := valueOf(b[0], "up")
	require.True(t, ok)
	require.Equal(t, 0.0, up)
	require.Contains(t, env.log.String(), "collector broke")
}
