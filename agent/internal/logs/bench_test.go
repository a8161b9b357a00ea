package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// benchLines is ~200-byte lines of the usual shapes: JSON, logfmt, plain,
// one with a secret.
func benchLines(n int) []byte {
	shapes := []string{
		`{"level":30,"time":1796312528869,"pid":30010,"hostname":"vm","request_id":"b1c2d3","route":"/api/ask","msg":"answered question in 123ms with model small and 2 tools used ok"}`,
		`ts=2026-12-03T15:42:09.683Z level=info msg="request handled" method=GET path=/api/ask status=200 duration_ms=12 request_id=abc123 trace_id=4bf92f3577b34da6 user=42 ok`,
		`2026-12-03 15:42:09,683 [INFO] gunicorn.access: 10.1.2.3 - - "GET /api/ask HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36" ok fine`,
		`INFO:ai_service:connecting to postgres://app:s3cret@db.example.com:5432/app with pool size 10 and timeout 5s, retrying on failure with backoff ok`,
	}
	var b bytes.Buffer
	for i := 0; b.Len() < n*200; i++ {
		s := shapes[i%len(shapes)]
		b.WriteString(s[:min(len(s), 199)])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkLineHandling is the pipeline's per-line work on one core:
// split, level and metadata, multiline, redaction, labels, queue push.
func BenchmarkLineHandling(b *testing.B) {
	for _, multiline := range []bool{false, true} {
		b.Run(fmt.Sprintf("multiline=%v", multiline), func(b *testing.B) {
			p, err := NewPipeline(Options{Sender: &memSender{}, Labels: testLabels, Multiline: multiline}, nil, prometheus.NewRegistry())
			require.NoError(b, err)
			data := benchLines(1000)
			src := p.addSource("stdout", nil)
			sp := newSplitter(DefaultMaxLineBytes)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			lines := 0
			for i := 0; i < b.N; i++ {
				for off := 0; off < len(data); off += readBufSize {
					bt := &batch{src: src, t: time.Now()}
					sp.feed(data[off:min(off+readBufSize, len(data))], bt)
					lines += len(bt.lines)
					p.handleBatch(bt)
				}
				for {
					if _, ok := p.queue.TryPop(); !ok {
						break
					}
				}
			}
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkPassthrough compares the copy alone (cat) with Passthrough and
// the tee (agent absent) on the same input; lines the pipeline can't take
// are dropped and counted, the copy never waits.
func BenchmarkPassthrough(b *testing.B) {
	data := benchLines(100_000) // ~20 MiB a round
	b.Run("cat", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			copyChunks(io.Discard, bytes.NewReader(data))
		}
	})
	b.Run("passthrough", func(b *testing.B) {
		r := testsupport.NewLokiReceiver(b)
		r.HangAll(true)
		o := lokiOptions(nil, r)
		p, err := NewPipeline(o, nil, prometheus.NewRegistry())
		require.NoError(b, err)
		p.Start(context.Background())
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			require.NoError(b, p.Passthrough(io.Discard, bytes.NewReader(data), "stdout"))
		}
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s := p.Shutdown(ctx)
		b.ReportMetric(float64(s.Dropped[ReasonQueueFull])/float64(s.Read)*100, "%dropped")
	})
	b.Run("tee-no-agent", func(b *testing.B) {
		tee := NewTee(TeeOptions{Socket: "/nonexistent/dynoscope.sock", Stream: "stdout"})
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			require.NoError(b, tee.Copy(io.Discard, bytes.NewReader(data)))
		}
		tee.Close(time.Now())
	})
}

func copyChunks(dst io.Writer, src io.Reader) {
	buf := make([]byte, readBufSize)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

// BenchmarkWriteLatencyLokiDown measures how long the app's writes take
// while Loki accepts connections and never answers: the app writes 200-byte
// lines one at a time into a synchronous pipe read by Passthrough. It
// reports the p50, p99 and p99.9 of one write (goal: p99 under 1 ms).
func BenchmarkWriteLatencyLokiDown(b *testing.B) {
	r := testsupport.NewLokiReceiver(b)
	r.HangAll(true)
	o := lokiOptions(b, r)
	o.SendTimeout = time.Minute
	p, _ := startLoki(b, o)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- p.Passthrough(io.Discard, pr, "stdout") }()
	line := benchLines(1)[:200]
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		_, err := pw.Write(line)
		lat = append(lat, time.Since(start))
		require.NoError(b, err)
	}
	b.StopTimer()
	pw.Close()
	require.NoError(b, <-done)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	b.ReportMetric(float64(lat[n/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[n*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[n*999/1000].Nanoseconds()), "p99.9-ns")
	shutdown(b, p, time.Second)
}

// TestQueueMemory measures the heap held by a full 16 MiB queue (Loki
// hanging) above the idle pipeline.
func TestQueueMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	r := testsupport.NewLokiReceiver(t)
	r.HangAll(true)
	o := lokiOptions(t, r)
	o.SendTimeout = time.Minute
	o.Multiline = false
	p, _ := startLoki(t, o)
	idleHeap, idleRSS := memNow()
	// 40 MiB of lines, more than the queue holds, generated as read.
	require.NoError(t, p.Passthrough(io.Discard, &chunked{data: benchLines(300), left: 40 << 20, busy: func() bool { return p.intakeBytes.Load() > DefaultIntakeMaxBytes/4 }}, "stdout"))
	require.Eventually(t, func() bool {
		return p.queue.Bytes() > DefaultQueueMaxBytes*9/10 && p.intakeBytes.Load() == 0
	}, 10*time.Second, 10*time.Millisecond)
	fullHeap, fullRSS := memNow()
	t.Logf("full queue: %d entries, %.1f MiB by the queue's measure; heap +%.1f MiB, RSS +%.1f MiB over idle",
		p.queue.Len(), float64(p.queue.Bytes())/(1<<20), float64(fullHeap-idleHeap)/(1<<20), float64(fullRSS-idleRSS)/(1<<20))
	require.Less(t, fullHeap-idleHeap, uint64(24<<20))
	shutdown(t, p, time.Second)
}

// chunked repeats data (whole lines) in 60 KiB reads until left bytes are
// read, pausing while busy (line handling behind): the test measures the
// queue, not the intake.
type chunked struct {
	data      []byte
	off, left int
	busy      func() bool
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	for c.busy() {
		time.Sleep(time.Millisecond)
	}
	if c.off >= len(c.data) {
		c.off = 0
	}
	n := copy(p[:min(len(p), 60<<10, c.left)], c.data[c.off:])
	c.off += n
	c.left -= n
	return n, nil
}

func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapAlloc, rss
}

// BenchmarkPipes moves the input through OS pipes on both sides, as the
// app → capture → dyno stdout path does: "cat" is a plain copy loop, the
// others the real capture with Loki hanging (passthrough) or the agent
// absent (tee).
func BenchmarkPipes(b *testing.B) {
	data := benchLines(100_000) // ~20 MiB a round
	run := func(b *testing.B, copyFn func(dst io.Writer, src io.Reader)) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			inR, inW, err := os.Pipe()
			require.NoError(b, err)
			outR, outW, err := os.Pipe()
			require.NoError(b, err)
			go func() { inW.Write(data); inW.Close() }()
			drained := make(chan struct{})
			go func() { io.Copy(io.Discard, outR); close(drained) }()
			copyFn(outW, inR)
			outW.Close()
			<-drained
			inR.Close()
			outR.Close()
		}
	}
	b.Run("cat", func(b *testing.B) { run(b, copyChunks) })
	b.Run("passthrough", func(b *testing.B) {
		r := testsupport.NewLokiReceiver(b)
		r.HangAll(true)
		p, err := NewPipeline(lokiOptions(b, r), nil, prometheus.NewRegistry())
		require.NoError(b, err)
		p.Start(context.Background())
		run(b, func(dst io.Writer, src io.Reader) { p.Passthrough(dst, src, "stdout") })
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s := p.Shutdown(ctx)
		b.ReportMetric(float64(s.Dropped[ReasonQueueFull])/float64(max(s.Read, 1))*100, "%dropped")
	})
	b.Run("tee-no-agent", func(b *testing.B) {
		tee := NewTee(TeeOptions{Socket: "/nonexistent/dynoscope.sock", Stream: "stdout"})
		run(b, func(dst io.Writer, src io.Reader) { tee.Copy(dst, src) })
		tee.Close(time.Now())
	})
}
