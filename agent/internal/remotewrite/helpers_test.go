package remotewrite

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// sample builds a sample; kv are label name/value pairs besides the name.
func sample(name string, t int64, v float64, kv ...string) series.Sample {
	ls := series.Labels{{Name: series.MetricName, Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, series.Label{Name: kv[i], Value: kv[i+1]})
	}
	ls.Sort()
	return series.Sample{Labels: ls, T: t, V: v}
}

// decode undoes what the writer does to a batch: snappy block format, then
// the WriteRequest with prompb's real gogo types (not our encoder's mirror).
func decode(t testing.TB, body []byte) *prompb.WriteRequest {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	require.NoError(t, err, "snappy block format")
	var req prompb.WriteRequest
	require.NoError(t, req.Unmarshal(raw))
	return &req
}

// got is one sample as it arrived.
type got struct {
	Series string
	T      int64
	V      float64
}

func flatten(reqs []*prompb.WriteRequest) []got {
	var out []got
	for _, r := range reqs {
		for _, ts := range r.Timeseries {
			ls := series.Labels{}
			for _, l := range ts.Labels {
				ls = append(ls, series.Label{Name: l.Name, Value: l.Value})
			}
			for _, s := range ts.Samples {
				out = append(out, got{Series: ls.String(), T: s.Timestamp, V: s.Value})
			}
		}
	}
	return out
}

// reply is what the receiver answers to one request.
type reply struct {
	status int
	header map[string]string
	body   string
	hang   bool          // never answer (until the client gives up)
	delay  time.Duration // answer late
}

// receiver is a remote write endpoint on a free 127.0.0.1 port that decodes
// and records every request, answering from script (then 204 forever).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex // covers everything below
	script []reply
	calls  int
	ok     []*prompb.WriteRequest // accepted requests
	all    []*prompb.WriteRequest
	hdrs   []http.Header
	times  []time.Time
}

func newReceiver(t testing.TB, script ...reply) *receiver {
	t.Helper()
	rc := &receiver{t: t, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := decode(rc.t, body)
	rc.mu.Lock()
	rep := reply{status: http.StatusNoContent}
	if rc.calls < len(rc.script) {
		rep = rc.script[rc.calls]
	}
	rc.calls++
	rc.all = append(rc.all, req)
	rc.hdrs = append(rc.hdrs, r.Header.Clone())
	rc.times = append(rc.times, time.Now())
	if rep.status/100 == 2 {
		rc.ok = append(rc.ok, req)
	}
	rc.mu.Unlock()
	if rep.hang {
		<-r.Context().Done()
		return
	}
	time.Sleep(rep.delay) // a slow server, not a wait in the test
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (rc *receiver) url(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(rc.srv.URL + DefaultPath)
	require.NoError(t, err)
	return u
}

func (rc *receiver) accepted() []got {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return flatten(rc.ok)
}

func (rc *receiver) numCalls() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.calls
}

// fakeClock is an injected clock: Sleep records the wait and moves Now on
// by it at once, so retry waits are measured, not slept.
type fakeClock struct {
	mu     sync.Mutex // covers now and sleeps
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// syncBuffer collects output that is written and read at once.
type syncBuffer = testsupport.Buffer

// testWriter builds a Writer with fast timings; edit adjusts the options.
// It returns the writer, its metrics and its log output.
func testWriter(t testing.TB, u *url.URL, edit func(*Options)) (*Writer, *Metrics, *syncBuffer) {
	t.Helper()
	opts := Options{
		URL:               u,
		UserAgent:         "dynoscope/test",
		MaxSamplesPerSend: 10,
		BatchDeadline:     time.Hour, // tests flush by size or Shutdown unless they say otherwise
		Timeout:           2 * time.Second,
		MinBackoff:        time.Millisecond,
		MaxBackoff:        5 * time.Millisecond,
	}
	if edit != nil {
		edit(&opts)
	}
	logs := &syncBuffer{}
	m := NewMetrics(nil)
	w, err := New(opts, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), m)
	require.NoError(t, err)
	return w, m, logs
}

// run starts w.Run and makes sure the test ends with it stopped.
func run(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// numbered returns n samples of one series, values and timestamps start..start+n-1.
func numbered(start, n int, now time.Time) []series.Sample {
	out := make([]series.Sample, n)
	for i := range out {
		v := start + i
		out[i] = sample("test_total", now.UnixMilli()+int64(v), float64(v), "job", "app")
	}
	return out
}

func values(gs []got) []float64 {
	out := make([]float64, len(gs))
	for i, g := range gs {
		out[i] = g.V
	}
	return out
}

func seq(from, to int) []float64 { // inclusive
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}
