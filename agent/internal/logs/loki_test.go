package logs

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

func lokiOptions(t testing.TB, r *testsupport.LokiReceiver) Options {
	u, err := url.Parse(r.URL)
	if err != nil {
		panic(err)
	}
	return Options{
		URL: u, User: "123456", Password: "glc_secret_token",
		Labels:    testLabels,
		Multiline: true, MultilineWindow: 20 * time.Millisecond,
		BatchWait:  20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxRetries: 10,
		SendTimeout: 2 * time.Second,
	}
}

func startLoki(t testing.TB, o Options) (*Pipeline, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(o, nil, reg)
	require.NoError(t, err)
	p.Start(context.Background())
	return p, reg
}

func shutdown(t testing.TB, p *Pipeline, d time.Duration) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Shutdown(ctx)
}

func TestLokiWire(t *testing.T) {
	r := testsupport.NewLokiReceiver(t)
	r.RequireBasicAuth("123456", "glc_secret_token")
	p, _ := startLoki(t, lokiOptions(t, r))
	in := fixture(t, "node-pino-winston-console.txt") + fixture(t, "python-logging.txt")
	require.NoError(t, p.Passthrough(io.Discard, strings.NewReader(in), "stdout"))
	sum := shutdown(t, p, 5*time.Second)
	es := r.WaitForEntries(t, 12, 5*time.Second)
	require.Len(t, es, 12)
	require.Equal(t, uint64(12), sum.Sent, sum.String())

	byLine := map[string]testsupport.LokiEntry{}
	for _, e := range es {
		byLine[e.Line] = e
	}
	first := byLine[strings.SplitN(in, "\n", 2)[0]]
	require.Equal(t, map[string]string{"app": "demo", "service_name": "demo", "environment": "staging", "platform": "heroku",
		"instance": "web.1", "dyno_type": "web", "stream": "stdout", "level": "info"}, first.Labels)
	require.Equal(t, map[string]string{"request_id": "b1c2d3"}, first.Metadata)
	tb := byLine["ERROR:ai_service:lookup failed\nTraceback (most recent call last):\n  File \"<stdin>\", line 7, in <module>\nKeyError: 'missing'"]
	require.Equal(t, "error", tb.Labels["level"])
	red := r.WaitForLine(t, "postgres://", time.Second)
	require.Equal(t, "password=[REDACTED] postgres://[REDACTED]@db.example.com:5432/app Authorization: [REDACTED]", red.Line)
	// Within a Loki stream, entries arrive in strictly increasing time.
	last := map[string]time.Time{}
	for _, e := range es {
		k := fmt.Sprint(e.Labels)
		require.True(t, e.Time.After(last[k]), "order in stream %s", k)
		last[k] = e.Time
	}
}

// feed writes lines through a pipe into Passthrough; the returned func
// writes more, close ends the source.
func feed(t *testing.T, p *Pipeline) (write func(string), closeFn func()) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- p.Passthrough(io.Discard, pr, "stdout") }()
	return func(s string) {
			_, err := pw.Write([]byte(s))
			require.NoError(t, err)
		}, func() {
			pw.Close()
			require.NoError(t, <-done)
		}
}

func TestLoki400DropsOnlyThatBatch(t *testing.T) {
	r := testsupport.NewLokiReceiver(t)
	r.FailNext(1, 400)
	o := lokiOptions(t, r)
	o.Multiline = false // both lines of a write in one batch
	p, _ := startLoki(t, o)
	write, closeFn := feed(t, p)
	write("batch one a\nbatch one b\n")
	require.Eventually(t, func() bool { return r.Requests() >= 1 }, 5*time.Second, 5*time.Millisecond)
	write("batch two a\nbatch two b\n")
	r.WaitForEntries(t, 2, 5*time.Second)
	closeFn()
	sum := shutdown(t, p, 5*time.Second)
	var lines []string
	for _, e := range r.Entries() {
		lines = append(lines, e.Line)
	}
	require.Equal(t, []string{"batch two a", "batch two b"}, lines)
	require.Equal(t, uint64(2), sum.Dropped[ReasonRejected], sum.String())
	require.Equal(t, uint64(2), sum.Sent)
}

func TestLokiRetries429And5xx(t *testing.T) {
	for _, status := range []int{429, 500, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			r := testsupport.NewLokiReceiver(t)
			r.FailNext(4, status)
			p, _ := startLoki(t, lokiOptions(t, r))
			write, closeFn := feed(t, p)
			for i := range 50 {
				write(fmt.Sprintf("line %d\n", i))
			}
			closeFn()
			r.WaitForEntries(t, 50, 10*time.Second)
			sum := shutdown(t, p, 5*time.Second)
			require.Equal(t, uint64(50), sum.Sent, sum.String())
			require.Empty(t, nonZero(sum.Dropped))
			require.GreaterOrEqual(t, r.Requests(), 5)
		})
	}
}

func TestLokiRetryExhausted(t *testing.T) {
	r := testsupport.NewLokiReceiver(t)
	r.FailNext(3, 500)
	o := lokiOptions(t, r)
	o.MaxRetries = 3
	p, _ := startLoki(t, o)
	write, closeFn := feed(t, p)
	write("lost\n")
	require.Eventually(t, func() bool { return r.Requests() >= 3 }, 5*time.Second, 5*time.Millisecond)
	write("kept\n")
	r.WaitForLine(t, "kept", 5*time.Second)
	closeFn()
	sum := shutdown(t, p, 5*time.Second)
	require.Equal(t, uint64(1), sum.Dropped[ReasonRetryExhausted], sum.String())
}

// TestLokiHangingNeverHoldsTheApp: Loki accepts connections and never
// answers; a writer of 200k lines finishes and every byte is passed through.
func TestLokiHangingNeverHoldsTheApp(t *testing.T) {
	r := testsupport.NewLokiReceiver(t)
	r.HangAll(true)
	o := lokiOptions(t, r)
	o.QueueMaxBytes = 1 << 20
	o.SendTimeout = time.Minute
	p, _ := startLoki(t, o)
	var in strings.Builder
	for i := range 200_000 {
		fmt.Fprintf(&in, "line %06d of the app\n", i)
	}
	var out strings.Builder
	start := time.Now()
	require.NoError(t, p.Passthrough(&out, strings.NewReader(in.String()), "stdout"))
	took := time.Since(start)
	require.Equal(t, in.String(), out.String())
	t.Logf("200k lines passed through in %s with Loki hanging", took)
	sum := shutdown(t, p, 2*time.Second)
	require.Less(t, sum.Elapsed, 3*time.Second)
	var dropped uint64
	for _, n := range sum.Dropped {
		dropped += n
	}
	require.Equal(t, uint64(200_000), sum.Read)
	require.Equal(t, sum.Read, sum.Sent+dropped, "every line sent or counted: %s", sum)
	require.NotZero(t, sum.Dropped[ReasonShutdown])
}

func TestCheck(t *testing.T) {
	r := testsupport.NewLokiReceiver(t)
	r.RequireBasicAuth("123456", "glc_secret_token")
	p, _ := startLoki(t, lokiOptions(t, r))
	defer shutdown(t, p, time.Second)
	res := p.Check(context.Background())
	require.True(t, res.OK, res.String())
	require.Equal(t, 204, res.Status)
	e := r.WaitForLine(t, "dynoscope check", time.Second)
	require.Equal(t, "dynoscope_check", e.Labels["stream"])

	bad := lokiOptions(t, r)
	bad.Password = "wrong"
	pb, _ := startLoki(t, bad)
	defer shutdown(t, pb, time.Second)
	res = pb.Check(context.Background())
	require.False(t, res.OK)
	require.Equal(t, 401, res.Status)
	require.Contains(t, res.Hint, "GRAFANA_CLOUD_LOKI_USER")
	require.NotContains(t, res.String(), "wrong")

	nf := lokiOptions(t, r)
	nf.URL, _ = url.Parse(strings.TrimSuffix(r.URL, "/loki/api/v1/push") + "/nope")
	pn, _ := startLoki(t, nf)
	defer shutdown(t, pn, time.Second)
	res = pn.Check(context.Background())
	require.Equal(t, 404, res.Status)
	require.Contains(t, res.Hint, "/loki/api/v1/push")

	gone := testsupport.NewLokiReceiver(t)
	ro := lokiOptions(t, gone)
	gone.Close()
	pr, _ := startLoki(t, ro)
	defer shutdown(t, pr, time.Second)
	res = pr.Check(context.Background())
	require.False(t, res.OK)
	require.Contains(t, res.Hint, "refused")
}

func TestPlainHTTPCredentialsRefused(t *testing.T) {
	u, _ := url.Parse("http://logs.example.com/loki/api/v1/push")
	_, err := NewPipeline(Options{URL: u, User: "1", Password: "p"}, nil, nil)
	require.ErrorContains(t, err, "https")
}
