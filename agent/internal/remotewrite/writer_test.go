package remotewrite

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

const wait = 10 * time.Second // deadline for anything the tests wait on

func TestSendsRemoteWrite10(t *testing.T) {
	rc := newReceiver(t)
	u := rc.url(t)
	w, m, _ := testWriter(t, u, func(o *Options) { o.User, o.Password = "12345", "glc_token" })
	run(t, w)
	now := time.Now()
	w.Append(numbered(0, 10, now)) // one full batch

	require.Eventually(t, func() bool { return len(rc.accepted()) == 10 }, wait, 5*time.Millisecond)
	require.Equal(t, seq(0, 9), values(rc.accepted()))
	h := rc.hdrs[0]
	require.Equal(t, "snappy", h.Get("Content-Encoding"))
	require.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
	require.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"))
	require.Equal(t, "dynoscope/test", h.Get("User-Agent"))
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("12345:glc_token")), h.Get("Authorization"))
	require.Len(t, rc.all[0].Timeseries, 1, "samples of one series are grouped into one TimeSeries")

	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Sent) == 10 }, wait, 5*time.Millisecond)
	require.Equal(t, 1, testutil.CollectAndCount(m.RequestDuration))
	require.InDelta(t, float64(time.Now().Unix()), testutil.ToFloat64(m.LastSuccess), 5)
	st := w.Status()
	require.EqualValues(t, 10, st.SamplesSent)
	require.Equal(t, u.Redacted(), st.Endpoint)
}

func TestUserInfoInURLIsBasicAuthNotURL(t *testing.T) {
	rc := newReceiver(t)
	u := rc.url(t)
	u.User = url.UserPassword("12345", "glc_secret")
	w, _, _ := testWriter(t, u, nil)
	res := w.Check(context.Background(), nil)
	require.NoError(t, res.Err)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("12345:glc_secret")), rc.hdrs[0].Get("Authorization"))
	require.NotContains(t, res.Endpoint, "glc_secret")
}

func TestFlushesByDeadline(t *testing.T) {
	rc := newReceiver(t)
	w, _, _ := testWriter(t, rc.url(t), func(o *Options) { o.BatchDeadline = 20 * time.Millisecond })
	run(t, w)
	w.Append(numbered(0, 3, time.Now())) // under MaxSamplesPerSend: only the deadline sends it
	require.Eventually(t, func() bool { return len(rc.accepted()) == 3 }, wait, 5*time.Millisecond)
}

func TestSplitsLargeAppendIntoBatches(t *testing.T) {
	rc := newReceiver(t)
	w, _, _ := testWriter(t, rc.url(t), nil)
	run(t, w)
	w.Append(numbered(0, 35, time.Now()))
	require.Eventually(t, func() bool { return len(rc.accepted()) == 30 }, wait, 5*time.Millisecond)
	sum := w.Shutdown(context.Background()) // the last 5 wait in the pending batch until Shutdown
	require.EqualValues(t, 35, sum.Sent)
	require.Equal(t, seq(0, 34), values(rc.accepted()))
	require.Equal(t, 4, rc.numCalls())
}

func TestRetries5xxUntilRecoveryInOrder(t *testing.T) {
	rc := newReceiver(t,
		reply{status: 503, body: "unavailable"}, reply{status: 503}, reply{status: 500}, reply{status: 502})
	w, m, logs := testWriter(t, rc.url(t), nil)
	run(t, w)
	now := time.Now()
	for i := range 5 {
		w.Append(numbered(i*10, 10, now))
	}
	require.Eventually(t, func() bool { return len(rc.accepted()) == 50 }, wait, 5*time.Millisecond)
	require.Equal(t, seq(0, 49), values(rc.accepted()), "every sample arrives, in order")
	require.Equal(t, 9, rc.numCalls(), "4 failures of the first batch, then 5 batches")
	require.EqualValues(t, 4, testutil.ToFloat64(m.Retries))
	require.EqualValues(t, 40, testutil.ToFloat64(m.Failed))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Sent) == 50 }, wait, 5*time.Millisecond)
	for _, r := range reasons {
		require.Zero(t, testutil.ToFloat64(m.Dropped.WithLabelValues(r)), r)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "remote write failed, retrying"), "repeats are summarised, not logged each time")
	require.Contains(t, logs.String(), "remote write recovered")
}

func TestRetryAfterWinsOverBackoff(t *testing.T) {
	clock := newFakeClock()
	rc := newReceiver(t,
		reply{status: 429, header: map[string]string{"Retry-After": "7"}},
		reply{status: 503, header: map[string]string{"Retry-After": clock.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)}}, // 7s later: 3s to go
		reply{status: 429}) // no Retry-After: the backoff
	w, _, _ := testWriter(t, rc.url(t), func(o *Options) {
		o.Now, o.Sleep = clock.Now, clock.Sleep
		o.MinBackoff, o.MaxBackoff = 100*time.Millisecond, time.Second
	})
	run(t, w)
	w.Append(numbered(0, 10, clock.Now()))
	require.Eventually(t, func() bool { return len(rc.accepted()) == 10 }, wait, 5*time.Millisecond)
	sleeps := clock.Sleeps()
	require.Len(t, sleeps, 3)
	require.Equal(t, 7*time.Second, sleeps[0], "Retry-After in seconds")
	require.Equal(t, 3*time.Second, sleeps[1], "Retry-After as an HTTP date, against the injected clock")
	// third retry: MinBackoff doubled twice (400ms), equally jittered
	require.GreaterOrEqual(t, sleeps[2], 200*time.Millisecond)
	require.LessOrEqual(t, sleeps[2], 400*time.Millisecond)
}

func TestRetryAfterRealWait(t *testing.T) {
	// The same with the real clock: the gap between the requests is the
	// server's Retry-After (1s, the smallest whole value), not the 1ms backoff.
	rc := newReceiver(t, reply{status: 429, header: map[string]string{"Retry-After": "1"}})
	w, _, _ := testWriter(t, rc.url(t), nil)
	run(t, w)
	w.Append(numbered(0, 10, time.Now()))
	require.Eventually(t, func() bool { return len(rc.accepted()) == 10 }, wait, 5*time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.GreaterOrEqual(t, rc.times[1].Sub(rc.times[0]), time.Second)
}

func TestRejected4xxDroppedOnceNotRetried(t *testing.T) {
	rc := newReceiver(t,
		reply{status: 400, body: "out of order sample"},
		reply{status: 400, body: "out of order sample"})
	w, m, logs := testWriter(t, rc.url(t), nil)
	run(t, w)
	now := time.Now()
	w.Append(numbered(0, 10, now))
	w.Append(numbered(10, 10, now))
	w.Append(numbered(20, 10, now))
	require.Eventually(t, func() bool { return len(rc.accepted()) == 10 }, wait, 5*time.Millisecond)
	require.Equal(t, seq(20, 29), values(rc.accepted()), "the next batch goes on")
	require.Equal(t, 3, rc.numCalls(), "a rejected batch is sent once")
	require.EqualValues(t, 20, testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonRejected)))
	require.Zero(t, testutil.ToFloat64(m.Retries))
	require.Equal(t, 1, strings.Count(logs.String(), "out of order sample"), "logged once, then summarised")
	require.Contains(t, w.Status().LastError, "HTTP 400: out of order sample")
}

func TestRejectBodyTruncated(t *testing.T) {
	rc := newReceiver(t, reply{status: 413, body: strings.Repeat("x", 10000)})
	w, _, _ := testWriter(t, rc.url(t), nil)
	res := w.Check(context.Background(), nil)
	require.Equal(t, 413, res.StatusCode)
	require.LessOrEqual(t, len(res.Body), maxErrorBody+len("…"))
	var serr *StatusError
	require.ErrorAs(t, res.Err, &serr)
	var rerr *RecoverableError
	require.False(t, errors.As(res.Err, &rerr), "a 413 is final")
}

// hangingListener accepts connections and never answers.
func hangingListener(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: DefaultPath}
}

func TestSilentServerTimesOutAndRetries(t *testing.T) {
	w, m, _ := testWriter(t, hangingListener(t), func(o *Options) { o.Timeout = 50 * time.Millisecond })

	start := time.Now()
	res := w.Check(context.Background(), nil)
	require.Error(t, res.Err)
	require.Less(t, time.Since(start), wait)
	require.Contains(t, Hint(res), "timed out")

	run(t, w)
	w.Append(numbered(0, 10, time.Now()))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Retries) >= 2 }, wait, 5*time.Millisecond, "timed out and retried, never hung")
	require.Equal(t, 1, testutil.CollectAndCount(m.RequestDuration), "observed under status_code=\"error\"")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	sum := w.Shutdown(ctx)
	require.Less(t, time.Since(start), 2*time.Second, "Shutdown keeps its deadline")
	require.EqualValues(t, 10, sum.Dropped[ReasonShutdown])
}

func TestConnectionRefusedRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: DefaultPath}
	require.NoError(t, ln.Close()) // nothing listens there now

	w, m, _ := testWriter(t, u, nil)
	res := w.Check(context.Background(), nil)
	require.ErrorIs(t, res.Err, syscall.ECONNREFUSED)
	var rerr *RecoverableError
	require.ErrorAs(t, res.Err, &rerr)
	require.Contains(t, Hint(res), "connection refused")

	run(t, w)
	w.Append(numbered(0, 10, time.Now()))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Retries) >= 3 }, wait, 5*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(m.Sent))
}

func TestQueueOverflowDropsOldestExactly(t *testing.T) {
	rc := newReceiver(t)
	w, m, _ := testWriter(t, rc.url(t), func(o *Options) { o.QueueMaxBytes = 2000 })
	now := time.Now()
	for i := range 100 { // 100 batches of 10, nothing sending yet
		w.Append(numbered(i*10, 10, now))
	}
	queued := w.Status().QueueBatches
	require.Greater(t, queued, 1)
	require.Less(t, queued, 100)
	dropped := testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonQueueFull))
	require.EqualValues(t, (100-queued)*10, dropped, "exact count: every sample of every dropped batch")
	require.EqualValues(t, w.Status().QueueBytes, testutil.ToFloat64(m.QueueBytes))
	require.LessOrEqual(t, w.Status().QueueBytes, int64(2000))

	run(t, w)
	require.Eventually(t, func() bool { return len(rc.accepted()) == queued*10 }, wait, 5*time.Millisecond)
	require.Equal(t, seq(1000-queued*10, 999), values(rc.accepted()), "the newest survive, in order")
}

func TestTooOldDroppedAtAppend(t *testing.T) {
	clock := newFakeClock()
	rc := newReceiver(t)
	w, m, _ := testWriter(t, rc.url(t), func(o *Options) { o.Now = clock.Now; o.MaxSampleAge = time.Hour })
	old := numbered(0, 4, clock.Now().Add(-2*time.Hour))
	fresh := numbered(4, 6, clock.Now())
	w.Append(append(old, fresh...))
	require.EqualValues(t, 4, testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonTooOld)))
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 6, sum.Sent)
	require.EqualValues(t, 4, sum.Dropped[ReasonTooOld])
}

func TestRetryEndsAtAgeBound(t *testing.T) {
	// Debian's Prometheus 2.42 answers 500 "too old sample": retrying can never
	// succeed, so the loop must end when the batch passes the age bound.
	clock := newFakeClock()
	script := make([]reply, 1000)
	for i := range script {
		script[i] = reply{status: 500, body: "too old sample"}
	}
	rc := newReceiver(t, script...)
	w, m, _ := testWriter(t, rc.url(t), func(o *Options) {
		o.Now, o.Sleep = clock.Now, clock.Sleep
		o.MaxSampleAge = 10 * time.Minute
		o.MinBackoff, o.MaxBackoff = time.Second, time.Minute
	})
	start := clock.Now()
	w.Append(numbered(0, 10, start.Add(-5*time.Minute))) // 5 minutes old already
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 10, sum.Dropped[ReasonTooOld])
	require.EqualValues(t, 10, testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonTooOld)))
	elapsed := clock.Now().Sub(start)
	require.GreaterOrEqual(t, elapsed, 5*time.Minute-time.Second)
	require.LessOrEqual(t, elapsed, 5*time.Minute, "the last wait is cut to the age bound, not past it")
	require.Less(t, rc.numCalls(), 50)
}

func TestShutdownFlushesPendingAndQueued(t *testing.T) {
	rc := newReceiver(t)
	w, _, _ := testWriter(t, rc.url(t), nil)
	now := time.Now()
	w.Append(numbered(0, 25, now)) // 2 queued batches + 5 pending; Run never started
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sum := w.Shutdown(ctx)
	require.EqualValues(t, 25, sum.Sent)
	require.Zero(t, sum.DroppedTotal())
	require.Equal(t, seq(0, 24), values(rc.accepted()))

	again := w.Shutdown(ctx)
	require.Equal(t, sum, again, "idempotent")
	w.Append(numbered(25, 3, now))
	require.EqualValues(t, 3, w.Status().Dropped[ReasonShutdown], "after Shutdown, Append counts what it refuses")
}

func TestShutdownLetsRequestInFlightFinish(t *testing.T) {
	rc := newReceiver(t, reply{status: 204, delay: 200 * time.Millisecond})
	w, _, _ := testWriter(t, rc.url(t), nil)
	run(t, w)
	w.Append(numbered(0, 10, time.Now()))
	require.Eventually(t, func() bool { return rc.numCalls() == 1 }, wait, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sum := w.Shutdown(ctx) // while the request is in flight
	require.EqualValues(t, 10, sum.Sent)
	require.Equal(t, 1, rc.numCalls(), "answered once, not aborted and sent again")
}

func TestShutdownAbandonsAtDeadlineAndCounts(t *testing.T) {
	script := make([]reply, 10000)
	for i := range script {
		script[i] = reply{status: 503}
	}
	rc := newReceiver(t, script...)
	w, m, logs := testWriter(t, rc.url(t), func(o *Options) { o.MinBackoff, o.MaxBackoff = 20*time.Millisecond, 50*time.Millisecond })
	run(t, w)
	w.Append(numbered(0, 37, time.Now()))
	require.Eventually(t, func() bool { return rc.numCalls() >= 2 }, wait, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	sums := make([]Summary, 2)
	for i := range sums { // a second SIGTERM makes main call it again: same result
		wg.Go(func() { sums[i] = w.Shutdown(ctx) })
	}
	wg.Wait()
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, sums[0], sums[1])
	require.EqualValues(t, 37, sums[0].Dropped[ReasonShutdown])
	require.Zero(t, sums[0].Sent)
	require.EqualValues(t, 37, testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonShutdown)))
	require.Contains(t, logs.String(), "samples=37")
	// Nothing is sent after Shutdown returned (the request aborted at the
	// deadline may still land at the server just after).
	calls := rc.numCalls()
	require.Never(t, func() bool { return rc.numCalls() > calls+1 }, 200*time.Millisecond, 10*time.Millisecond)
}

func TestInvalidSamplesCounted(t *testing.T) {
	rc := newReceiver(t)
	w, m, _ := testWriter(t, rc.url(t), nil)
	now := time.Now().UnixMilli()
	w.Append([]series.Sample{
		{Labels: series.Labels{{Name: "job", Value: "app"}}, T: now, V: 1},                                                          // no name
		{Labels: series.Labels{{Name: "__name__", Value: "x"}, {Name: "", Value: "v"}}, T: now, V: 1},                               // empty label name
		{Labels: series.Labels{{Name: "job", Value: "a"}, {Name: "__name__", Value: "x"}, {Name: "job", Value: "b"}}, T: now, V: 1}, // duplicate
		{Labels: series.Labels{{Name: "job", Value: "a"}, {Name: "__name__", Value: "unsorted"}}, T: now, V: 1},                     // sorted, kept
	})
	require.EqualValues(t, 3, testutil.ToFloat64(m.Dropped.WithLabelValues(ReasonInvalid)))
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 1, sum.Sent)
	require.Equal(t, []got{{Series: `unsorted{job="a"}`, T: now, V: 1}}, rc.accepted())
}

func TestSecretsNeverInLogsErrorsOrStatus(t *testing.T) {
	const password = "glc_eyJvIjoiMTIzNCJ9" //nolint:gosec // a test token
	rc := newReceiver(t,
		reply{status: 500, body: "internal: token " + password + " broke"},
		reply{status: 401, body: "invalid token " + password})
	u := rc.url(t)
	w, _, logs := testWriter(t, u, func(o *Options) { o.User, o.Password = "123456", password })
	run(t, w)
	w.Append(numbered(0, 10, time.Now()))
	require.Eventually(t, func() bool { return w.Status().Dropped[ReasonRejected] == 10 }, wait, 5*time.Millisecond)
	res := w.Check(context.Background(), nil) // 204 now; then refused below

	st, err := json.Marshal(w.Status())
	require.NoError(t, err)
	for name, text := range map[string]string{"logs": logs.String(), "status": string(st), "check": res.Body} {
		require.NotContains(t, text, password, name)
		require.NotContains(t, text, "Authorization", name)
		require.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte("123456:"+password)), name)
	}
	require.Contains(t, logs.String(), "invalid token xxxxx")

	// Credentials in the URL, a refused connection: the error has no secret.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	w2, _, logs2 := testWriter(t, &url.URL{Scheme: "http", Host: addr, Path: DefaultPath, User: url.UserPassword("123456", password)}, nil)
	res = w2.Check(context.Background(), nil)
	require.Error(t, res.Err)
	require.NotContains(t, res.Err.Error(), password)
	require.NotContains(t, res.Endpoint, password)
	require.NotContains(t, logs2.String(), password)
}

func TestNewValidatesURLAndCredentials(t *testing.T) {
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	tests := []struct {
		name     string
		url      string
		password string
		wantErr  error
		errText  string
	}{
		{name: "https with credentials", url: "https://prometheus-prod-01.grafana.net/api/prom/push", password: "tok"},
		{name: "plain http without credentials", url: "http://prometheus:9090/api/v1/write"},
		{name: "plain http to loopback IP", url: "http://127.0.0.1:9090/api/v1/write", password: "tok"},
		{name: "plain http to localhost", url: "http://localhost:9090/api/v1/write", password: "tok"},
		{name: "plain http to IPv6 loopback", url: "http://[::1]:9090/api/v1/write", password: "tok"},
		{name: "plain http with credentials elsewhere", url: "http://prometheus-prod-01.grafana.net/api/prom/push", password: "tok", wantErr: ErrInsecureCredentials},
		{name: "credentials in the URL over plain http", url: "http://u:tok@example.com/api/prom/push", wantErr: ErrInsecureCredentials},
		{name: "not http", url: "ftp://example.com/push", errText: "scheme must be http or https"},
		{name: "no host", url: "https:///push", errText: "no host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{URL: parse(tc.url), Password: tc.password}
			if tc.password != "" {
				opts.User = "123"
			}
			_, err := New(opts, discardLogger(), nil)
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), "tok")
			case tc.errText != "":
				require.ErrorContains(t, err, tc.errText)
			default:
				require.NoError(t, err)
			}
		})
	}
	_, err := New(Options{}, discardLogger(), nil)
	require.ErrorContains(t, err, "no URL")
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://prometheus-prod-01.grafana.net", "https://prometheus-prod-01.grafana.net/api/prom/push"},
		{"https://prometheus-prod-01.grafana.net/", "https://prometheus-prod-01.grafana.net/api/prom/push"},
		{"https://prometheus-prod-01.grafana.net/api/prom/push", "https://prometheus-prod-01.grafana.net/api/prom/push"},
		{"http://127.0.0.1:9090/api/v1/write", "http://127.0.0.1:9090/api/v1/write"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, NormalizeURL(u).String())
			require.Equal(t, tc.in, u.String(), "the input is not modified")
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
		{"absurd", "999999999", 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, retryAfter(tc.header, now))
		})
	}
}

func TestBackoffGrowsJitteredAndCapped(t *testing.T) {
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		for range 20 {
			got := backoff(attempt, DefaultMinBackoff, DefaultMaxBackoff)
			require.GreaterOrEqual(t, got, want/2, "attempt %d", attempt)
			require.LessOrEqual(t, got, want, "attempt %d", attempt)
		}
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		res  CheckResult
		want string
	}{
		{"ok", CheckResult{StatusCode: 204}, ""},
		{"unauthorized", CheckResult{StatusCode: 401, Err: errors.New("x")}, "instance ID"},
		{"not found", CheckResult{StatusCode: 404, Err: errors.New("x")}, "/api/prom/push"},
		{"refused", CheckResult{Err: &RecoverableError{Err: syscall.ECONNREFUSED}}, "connection refused"},
		{"timeout", CheckResult{Err: context.DeadlineExceeded}, "timed out"},
		{"dns", CheckResult{Err: &net.DNSError{Err: "no such host", Name: "nope.invalid"}}, "does not resolve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Hint(tc.res)
			if tc.want == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, tc.want)
		})
	}
}

func TestDryRunPrintsAndSendsNothing(t *testing.T) {
	out := &syncBuffer{}
	w, m, _ := testWriter(t, nil, func(o *Options) { o.DryRun = out })
	run(t, w)
	ts := time.Now().UnixMilli()
	w.Append([]series.Sample{sample("up", ts, 1, "app", "shop", "instance", "web.1", "job", "app")})
	res := w.Check(context.Background(), series.Labels{{Name: "app", Value: "shop"}})
	require.NoError(t, res.Err)
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 1, sum.Sent)
	require.EqualValues(t, 1, testutil.ToFloat64(m.Sent))
	require.Contains(t, out.String(), `up{app="shop",instance="web.1",job="app"} 1 `+itoa(ts)+"\n")
	require.Contains(t, out.String(), `dynoscope_check{app="shop"} 1 `)
	require.Equal(t, "dry-run", w.Status().Endpoint)
}

func TestCheckSendsOneSample(t *testing.T) {
	rc := newReceiver(t)
	clock := newFakeClock()
	w, m, _ := testWriter(t, rc.url(t), func(o *Options) { o.Now = clock.Now })
	res := w.Check(context.Background(), series.Labels{{Name: "instance", Value: "web.1"}, {Name: "app", Value: "shop"}})
	require.NoError(t, res.Err)
	require.Equal(t, 204, res.StatusCode)
	require.Positive(t, res.Latency)
	require.Equal(t, []got{{Series: `dynoscope_check{app="shop",instance="web.1"}`, T: clock.Now().UnixMilli(), V: 1}}, rc.accepted())
	require.Zero(t, testutil.ToFloat64(m.Sent), "check does not count as forwarded data")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSelfMetricNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	rc := newReceiver(t, reply{status: 400, body: "bad"})
	clock := newFakeClock()
	w, err := New(Options{URL: rc.url(t), MaxSamplesPerSend: 2, Now: clock.Now, MaxSampleAge: time.Hour}, discardLogger(), m)
	require.NoError(t, err)
	m.Dropped.WithLabelValues(ReasonSeriesLimit).Add(3) // what the scrape stage counts on the shared vector
	w.Append(numbered(0, 2, clock.Now()))               // rejected
	w.Append(numbered(2, 3, clock.Now()))               // 2 sent, 1 pending then sent at Shutdown
	w.Append(numbered(5, 1, clock.Now().Add(-2*time.Hour)))
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 3, sum.Sent)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP dynoscope_remote_write_samples_dropped_total Samples that will never be sent, by reason: queue_full, too_old, rejected, series_limit, shutdown, invalid.
# TYPE dynoscope_remote_write_samples_dropped_total counter
dynoscope_remote_write_samples_dropped_total{reason="invalid"} 0
dynoscope_remote_write_samples_dropped_total{reason="queue_full"} 0
dynoscope_remote_write_samples_dropped_total{reason="rejected"} 2
dynoscope_remote_write_samples_dropped_total{reason="series_limit"} 3
dynoscope_remote_write_samples_dropped_total{reason="shutdown"} 0
dynoscope_remote_write_samples_dropped_total{reason="too_old"} 1
# HELP dynoscope_remote_write_samples_sent_total Samples accepted by the remote write endpoint (2xx).
# TYPE dynoscope_remote_write_samples_sent_total counter
dynoscope_remote_write_samples_sent_total 3
# HELP dynoscope_remote_write_retries_total Remote write requests retried after a network error, 5xx or 429.
# TYPE dynoscope_remote_write_retries_total counter
dynoscope_remote_write_retries_total 0
# HELP dynoscope_remote_write_queue_bytes Bytes of encoded, compressed batches waiting to be sent.
# TYPE dynoscope_remote_write_queue_bytes gauge
dynoscope_remote_write_queue_bytes 0
`), "dynoscope_remote_write_samples_dropped_total", "dynoscope_remote_write_samples_sent_total",
		"dynoscope_remote_write_retries_total", "dynoscope_remote_write_queue_bytes"))
	require.EqualValues(t, float64(clock.Now().Unix()), testutil.ToFloat64(m.LastSuccess))
	require.Equal(t, 2, testutil.CollectAndCount(m.RequestDuration), `status_code="400" and "204"`)
	require.EqualValues(t, 2, testutil.CollectAndCount(reg, "dynoscope_remote_write_request_duration_seconds"))
}

func TestCheckHintsForTLSProblems(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(tlsSrv.Close)
	u, err := url.Parse(tlsSrv.URL + DefaultPath)
	require.NoError(t, err)
	w, _, _ := testWriter(t, u, func(o *Options) { o.User, o.Password = "1", "tok" })
	res := w.Check(context.Background(), nil)
	require.Error(t, res.Err, "the test server's certificate is not trusted: TLS is verified")
	require.Contains(t, Hint(res), "TLS certificate")

	rc := newReceiver(t) // plain http spoken to as https
	u = rc.url(t)
	u.Scheme = "https"
	w, _, _ = testWriter(t, u, nil)
	res = w.Check(context.Background(), nil)
	require.Error(t, res.Err)
	require.Contains(t, Hint(res), "TLS handshake")
}
