package logs

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// memSender records entries; it is the Sender of tests that look at line
// handling only.
type memSender struct {
	mu      sync.Mutex
	entries []Entry
	block   chan struct{} // when not nil, Send waits for it to close
}

func (m *memSender) Send(e Entry) error {
	if m.block != nil {
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return nil
}

func (m *memSender) Stop() {}

func (m *memSender) Stats() SenderStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return SenderStats{Sent: uint64(len(m.entries))}
}

func (m *memSender) all() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Entry(nil), m.entries...)
}

var testLabels = map[string]string{"app": "demo", "environment": "staging", "platform": "heroku", "instance": "web.1", "dyno_type": "web"}

func newTestPipeline(t *testing.T, o Options) (*Pipeline, *memSender, *prometheus.Registry) {
	t.Helper()
	ms := &memSender{}
	if o.Sender == nil {
		o.Sender = ms
	}
	if o.Labels == nil {
		o.Labels = testLabels
	}
	if o.MultilineWindow == 0 {
		o.MultilineWindow = time.Second
	}
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(o, nil, reg)
	require.NoError(t, err)
	p.Start(context.Background())
	return p, ms, reg
}

// run passes input through a pipeline and shuts it down.
func run(t *testing.T, o Options, stream, input string) ([]Entry, Summary, *prometheus.Registry) {
	t.Helper()
	p, ms, reg := newTestPipeline(t, o)
	var out bytes.Buffer
	require.NoError(t, p.Passthrough(&out, strings.NewReader(input), stream))
	require.Equal(t, input, out.String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum := p.Shutdown(ctx)
	return ms.all(), sum, reg
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return string(b)
}

type got struct{ level, line string }

func simplify(es []Entry) []got {
	var out []got
	for _, e := range es {
		out = append(out, got{string(e.Labels["level"]), e.Line})
	}
	return out
}

func TestNodeFixture(t *testing.T) {
	es, sum, _ := run(t, Options{Multiline: true}, "stdout", fixture(t, "node-pino-winston-console.txt"))
	lines := strings.Split(fixture(t, "node-pino-winston-console.txt"), "\n")
	stack := strings.Join(lines[4:12], "\n")
	require.Equal(t, []got{
		{"info", lines[0]},
		{"info", lines[1]},
		{"error", lines[2]},
		{"unknown", lines[3]},
		{"error", stack},
		{"warn", lines[12]},
		{"error", lines[13]},
	}, simplify(es))
	require.Equal(t, uint64(14), sum.Read)
	require.Equal(t, uint64(7), sum.Sent)

	require.Equal(t, []Pair{{"request_id", "b1c2d3"}}, es[0].Metadata)
	require.Equal(t, []Pair{{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}}, es[1].Metadata)
	for i, e := range es {
		require.Equal(t, "stdout", string(e.Labels["stream"]))
		require.Equal(t, "demo", string(e.Labels["service_name"]))
		require.Equal(t, "web.1", string(e.Labels["instance"]))
		require.Len(t, e.Labels, 8)
		if i > 0 {
			require.True(t, e.Time.After(es[i-1].Time), "timestamps strictly increasing")
		}
	}
}

func TestPythonFixture(t *testing.T) {
	in := fixture(t, "python-logging.txt")
	es, sum, reg := run(t, Options{Multiline: true}, "stderr", in)
	lines := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
	require.Equal(t, []got{
		{"info", lines[0]},
		{"warn", lines[1]},
		{"error", strings.Join(lines[2:6], "\n")},
		{"error", lines[6]},
		{"unknown", "password=[REDACTED] postgres://[REDACTED]@db.example.com:5432/app Authorization: [REDACTED]"},
	}, simplify(es))
	require.Equal(t, uint64(1), sum.Redacted)
	require.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "dynoscope_log_lines_redacted_total")))
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestTracebackAlone(t *testing.T) {
	in := "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad\nnext line\n"
	es, _, _ := run(t, Options{Multiline: true}, "stderr", in)
	require.Equal(t, []got{
		{"error", "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad"},
		{"unknown", "next line"},
	}, simplify(es))
}

func TestJavaCausedBy(t *testing.T) {
	in := "ERROR boom\njava.lang.RuntimeException: x\n\tat a.b(C.java:1)\nCaused by: java.io.IOException: y\n\t... 3 more\nINFO ok\n"
	es, _, _ := run(t, Options{Multiline: true}, "stdout", in)
	require.Equal(t, []got{
		{"error", "ERROR boom"},
		{"unknown", "java.lang.RuntimeException: x\n\tat a.b(C.java:1)\nCaused by: java.io.IOException: y\n\t... 3 more"},
		{"info", "INFO ok"},
	}, simplify(es))
}

func TestMultilineOff(t *testing.T) {
	es, _, _ := run(t, Options{}, "stdout", "Error: x\n    at y\r\n")
	require.Equal(t, []got{{"error", "Error: x"}, {"unknown", "    at y"}}, simplify(es))
}

func TestMultilineWindow(t *testing.T) {
	p, ms, _ := newTestPipeline(t, Options{Multiline: true, MultilineWindow: 20 * time.Millisecond})
	pr, pw := io.Pipe()
	done := make(chan error)
	go func() { done <- p.Passthrough(io.Discard, pr, "stdout") }()
	_, err := pw.Write([]byte("ERROR first\n"))
	require.NoError(t, err)
	// The entry is shipped after the window although the source stays open.
	require.Eventually(t, func() bool { return len(ms.all()) == 1 }, 5*time.Second, 5*time.Millisecond)
	_, err = pw.Write([]byte("    late indented\n"))
	require.NoError(t, err)
	pw.Close()
	require.NoError(t, <-done)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Shutdown(ctx)
	require.Equal(t, []got{{"error", "ERROR first"}, {"unknown", "    late indented"}}, simplify(ms.all()))
}

func TestFinalLineWithoutNewline(t *testing.T) {
	es, _, _ := run(t, Options{Multiline: true}, "stdout", "one\ntwo")
	require.Equal(t, []got{{"unknown", "one"}, {"unknown", "two"}}, simplify(es))
}

func TestTruncationAndUTF8(t *testing.T) {
	long := strings.Repeat("x", 25)
	in := long + "\n" + "bad \xff byte\n\n"
	es, sum, reg := run(t, Options{MaxLineBytes: 10, Multiline: true}, "stdout", in)
	require.Equal(t, []got{
		{"unknown", "xxxxxxxxxx"}, {"unknown", "xxxxxxxxxx"}, {"unknown", "xxxxx"},
		{"unknown", "bad \uFFFD by"},
	}, simplify(es))
	require.Equal(t, uint64(2), sum.Truncated)
	require.Equal(t, uint64(1), sum.Dropped[ReasonEmpty])
	require.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "dynoscope_log_lines_invalid_utf8_total")))
}

func TestBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	in := "DEBUG noisy\nINFO kept 1\nINFO healthcheck ok\nERROR kept 2\nINFO kept 3\nINFO over the rate\n"
	es, sum, _ := run(t, Options{
		MinLevel:  "info",
		Drop:      regexp.MustCompile(`healthcheck`),
		RateLimit: 1, Burst: 3,
		Now: func() time.Time { return now },
	}, "stdout", in)
	require.Equal(t, []got{{"info", "INFO kept 1"}, {"error", "ERROR kept 2"}, {"info", "INFO kept 3"}}, simplify(es))
	require.Equal(t, map[string]uint64{ReasonMinLevel: 1, ReasonDropRegex: 1, ReasonRateLimit: 1}, nonZero(sum.Dropped))
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

func TestExtraRedactAndLabels(t *testing.T) {
	labels := map[string]string{"app": "demo", "team": "ai", "level": "x", "bad-name": "y"}
	es, sum, _ := run(t, Options{Redact: regexp.MustCompile(`user-\d+`), Labels: labels}, "web.log", "hello user-42\n")
	require.Equal(t, "hello [REDACTED]", es[0].Line)
	require.Equal(t, uint64(1), sum.Redacted)
	require.Equal(t, "ai", string(es[0].Labels["team"]))
	require.NotContains(t, es[0].Labels, model.LabelName("bad-name"))
	require.Equal(t, "unknown", string(es[0].Labels["level"]))
	require.Equal(t, "web.log", string(es[0].Labels["stream"]))
}

func TestLabelLimit(t *testing.T) {
	labels := map[string]string{}
	for _, k := range []string{"app", "environment", "platform", "instance", "dyno_type", "a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		labels[k] = "v"
	}
	es, _, _ := run(t, Options{Labels: labels}, "stdout", "x\n")
	require.Len(t, es[0].Labels, MaxLabels)
	require.Equal(t, "v", string(es[0].Labels["dyno_type"]))
}

func TestQueueFullDropsOldest(t *testing.T) {
	ms := &memSender{block: make(chan struct{})}
	p, _, _ := newTestPipeline(t, Options{Sender: ms, QueueMaxBytes: 10 * 100})
	var in strings.Builder
	for i := range 100 {
		in.WriteString("line " + strings.Repeat("x", i%10) + "\n")
	}
	require.NoError(t, p.Passthrough(io.Discard, strings.NewReader(in.String()), "stdout"))
	require.Eventually(t, func() bool { return p.Status().Dropped[ReasonQueueFull] > 0 }, 5*time.Second, 5*time.Millisecond)
	close(ms.block)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum := p.Shutdown(ctx)
	require.Equal(t, uint64(100), sum.Read)
	require.Equal(t, sum.Read, sum.Sent+sum.Dropped[ReasonQueueFull], "every line is sent or counted")
	es := ms.all()
	require.Equal(t, "line xxxxxxxxx", es[len(es)-1].Line, "the newest lines are kept")
}

func TestDryRun(t *testing.T) {
	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(Options{DryRun: &out, Labels: testLabels}, nil, reg)
	require.NoError(t, err)
	p.Start(context.Background())
	require.NoError(t, p.Passthrough(io.Discard, strings.NewReader(`{"level":"error","request_id":"r9","msg":"x"}`+"\n"), "stdout"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum := p.Shutdown(ctx)
	require.Equal(t, uint64(1), sum.Sent)
	require.Equal(t, sum, p.Shutdown(ctx), "a second SIGTERM's Shutdown returns the first's summary")
	require.Regexp(t, `^\S+Z \{app="demo", dyno_type="web", environment="staging", instance="web.1", level="error", platform="heroku", service_name="demo", stream="stdout"\} "\{\\"level\\":\\"error\\",\\"request_id\\":\\"r9\\",\\"msg\\":\\"x\\"\}" request_id="r9"\n$`, out.String())
}

func TestNilPipelinePassthrough(t *testing.T) {
	var p *Pipeline
	var out bytes.Buffer
	require.NoError(t, p.Passthrough(&out, strings.NewReader("a\nb"), "stdout"))
	require.Equal(t, "a\nb", out.String())
}

func TestNoDestination(t *testing.T) {
	_, err := NewPipeline(Options{}, nil, nil)
	require.ErrorIs(t, err, ErrNoDestination)
}
