package logs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// passthroughInputs are the byte streams that must come out unchanged.
func passthroughInputs(t *testing.T) map[string][]byte {
	t.Helper()
	random := make([]byte, 4<<20)
	_, err := rand.Read(random)
	require.NoError(t, err)
	mib := bytes.Repeat([]byte("y"), 1<<20)
	return map[string][]byte{
		"random bytes":        random,
		"no trailing newline": []byte("first\nsecond without newline"),
		"1 MiB lines":         append(append(append(append([]byte{}, mib...), '\n'), mib...), '\n'),
		"binary and CRLF":     []byte("a\x00b\r\n\xff\xfe\r\n\n\n"),
		"empty":               {},
	}
}

func TestPassthroughExact(t *testing.T) {
	for name, in := range passthroughInputs(t) {
		t.Run(name, func(t *testing.T) {
			p, _, _ := newTestPipeline(t, Options{Multiline: true})
			var out bytes.Buffer
			// iotest-like small reads: a reader that returns odd sizes.
			require.NoError(t, p.Passthrough(&out, &choppy{r: bytes.NewReader(in)}, "stdout"))
			require.True(t, bytes.Equal(in, out.Bytes()), "output differs")
			sum := shutdown(t, p, 5*time.Second)
			var dropped uint64
			for _, n := range sum.Dropped {
				dropped += n
			}
			require.LessOrEqual(t, sum.Sent+dropped, sum.Read+sum.Truncated*5)
		})
	}
}

// choppy returns reads of varying small sizes.
type choppy struct {
	r io.Reader
	n int
}

func (c *choppy) Read(p []byte) (int, error) {
	c.n = c.n%7919 + 1
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestPassthroughWriteError: a broken stdout doesn't stop the reading, so
// the app never blocks on a full pipe.
func TestPassthroughWriteError(t *testing.T) {
	p, ms, _ := newTestPipeline(t, Options{})
	err := p.Passthrough(failWriter{}, strings.NewReader("a\nb\n"), "stdout")
	require.ErrorContains(t, err, "write")
	shutdown(t, p, 5*time.Second)
	require.Len(t, ms.all(), 2, "lines still shipped")
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dsock")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "d.sock")
}

func serve(t *testing.T, p *Pipeline, path string) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.ServeSocket(context.Background(), path) }()
	require.Eventually(t, func() bool { _, err := os.Stat(path); return err == nil }, 5*time.Second, 5*time.Millisecond)
	return done
}

func TestTeeToAgent(t *testing.T) {
	path := socketPath(t)
	p, ms, _ := newTestPipeline(t, Options{Multiline: true, MaxLineBytes: 100})
	served := serve(t, p, path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	tee := NewTee(TeeOptions{Socket: path, Stream: "stderr", MaxLineBytes: 100, MinBackoff: 5 * time.Millisecond})
	in := "ERROR:svc:boom\nTraceback (most recent call last):\n  File \"x\"\nKeyError: 'k'\n" + strings.Repeat("z", 150) + "\nlast without newline"
	var out bytes.Buffer
	require.NoError(t, tee.Copy(&out, strings.NewReader(in)))
	require.Equal(t, in, out.String())
	require.Zero(t, tee.Close(time.Now().Add(5*time.Second)))
	// The tee has written everything; wait for the agent to read it (a
	// connection still in the listen backlog at shutdown is not waited for).
	require.Eventually(t, func() bool { return p.Status().LinesRead == 7 }, 5*time.Second, 5*time.Millisecond)
	sum := shutdown(t, p, 5*time.Second) // waits for the connection to end
	require.NoError(t, <-served)
	require.Equal(t, uint64(7), sum.Read)
	require.Equal(t, []got{
		{"error", "ERROR:svc:boom\nTraceback (most recent call last):\n  File \"x\"\nKeyError: 'k'"},
		{"unknown", strings.Repeat("z", 100)}, {"unknown", strings.Repeat("z", 50)},
		{"unknown", "last without newline"},
	}, simplify(ms.all()))
	require.Equal(t, "stderr", string(ms.all()[0].Labels["stream"]))
	require.Equal(t, uint64(1), sum.Truncated)
}

// TestTeeSurvivesTheAgent: the agent goes away mid-stream and comes back;
// the tee passes every byte through, never waits, and ends cleanly.
func TestTeeSurvivesTheAgent(t *testing.T) {
	path := socketPath(t)
	p1, ms1, _ := newTestPipeline(t, Options{})
	serve(t, p1, path)
	tee := NewTee(TeeOptions{Socket: path, Stream: "stdout", MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	pr, pw := io.Pipe()
	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() { copied <- tee.Copy(&out, pr) }()

	_, err := pw.Write([]byte("before\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ms1.all()) == 1 }, 5*time.Second, 5*time.Millisecond)
	shutdown(t, p1, 200*time.Millisecond) // the agent is killed: socket closed, connection cut

	var want strings.Builder
	want.WriteString("before\n")
	for i := range 1000 {
		line := strings.Repeat("during outage ", i%5) + "\n"
		want.WriteString(line)
		_, err := pw.Write([]byte(line))
		require.NoError(t, err, "the tee never blocks the writer")
	}

	p2, ms2, _ := newTestPipeline(t, Options{})
	serve(t, p2, path)
	_, err = pw.Write([]byte("after restart\n"))
	require.NoError(t, err)
	want.WriteString("after restart\n")
	require.Eventually(t, func() bool {
		for _, e := range ms2.all() {
			if e.Line == "after restart" {
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	pw.Close()
	require.NoError(t, <-copied)
	tee.Close(time.Now().Add(time.Second))
	require.Equal(t, want.String(), out.String())
	shutdown(t, p2, time.Second)
}

func TestTeeWithoutAgent(t *testing.T) {
	tee := NewTee(TeeOptions{Socket: filepath.Join(t.TempDir(), "absent.sock"), Stream: "stdout"})
	in := strings.Repeat("no agent here\n", 10000)
	var out bytes.Buffer
	start := time.Now()
	require.NoError(t, tee.Copy(&out, strings.NewReader(in)))
	require.Equal(t, in, out.String())
	tee.Close(time.Now().Add(5 * time.Second))
	require.Less(t, time.Since(start), 2*time.Second, "no lingering without an agent")
}

func TestSocketRefusesLiveAgent(t *testing.T) {
	path := socketPath(t)
	p, _, _ := newTestPipeline(t, Options{})
	serve(t, p, path)
	p2, _, _ := newTestPipeline(t, Options{})
	require.ErrorContains(t, p2.ServeSocket(context.Background(), path), "another agent")
	shutdown(t, p, time.Second)
	shutdown(t, p2, time.Second)
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.log")
	require.NoError(t, os.WriteFile(app, []byte("one\n"), 0o644))
	p, ms, _ := newTestPipeline(t, Options{Files: []string{filepath.Join(dir, "*.log")}, FilePoll: 5 * time.Millisecond})
	lines := func() []string {
		var out []string
		for _, e := range ms.all() {
			out = append(out, string(e.Labels["stream"])+":"+e.Line)
		}
		return out
	}
	waitLines := func(want ...string) {
		t.Helper()
		require.Eventually(t, func() bool { return len(lines()) >= len(want) }, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, want, lines())
	}
	waitLines("app.log:one")

	appendTo(t, app, "two\npartial")
	waitLines("app.log:one", "app.log:two")

	// Rotation: rename, then a new file under the same name.
	require.NoError(t, os.Rename(app, app+".1"))
	appendTo(t, app+".1", " line\n")
	require.NoError(t, os.WriteFile(app, []byte("new file\n"), 0o644))
	waitLines("app.log:one", "app.log:two", "app.log:partial line", "app.log:new file")

	// Truncation.
	require.NoError(t, os.WriteFile(app, []byte("cut\n"), 0o644))
	waitLines("app.log:one", "app.log:two", "app.log:partial line", "app.log:new file", "app.log:cut")

	// A file appearing later.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "worker.log"), []byte("late\n"), 0o644))
	waitLines("app.log:one", "app.log:two", "app.log:partial line", "app.log:new file", "app.log:cut", "worker.log:late")

	appendTo(t, app, "final without newline")
	sum := shutdown(t, p, 5*time.Second)
	require.Contains(t, lines(), "app.log:final without newline")
	require.Equal(t, uint64(7), sum.Read)
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestSkipRecords(t *testing.T) {
	p, _, _ := newTestPipeline(t, Options{})
	s := p.addSource("stdout", nil)
	var in []byte
	in = appendRecord(in, 'L', 1, []byte("a"))
	in = appendRecord(in, 'C', 1, []byte("bb"))
	in = appendRecord(in, 'K', 1, []byte("cc"))
	in = append(in, "D3\nL1 partial"...)
	r := bufio.NewReader(bytes.NewReader(in))
	_, err := r.Peek(len(in))
	require.NoError(t, err)
	require.Equal(t, len(in)-len("L1 partial"), p.skipRecords(s, r))
	require.Equal(t, uint64(2), p.Status().Dropped[ReasonQueueFull])
	rest, _ := io.ReadAll(r)
	require.Equal(t, "L1 partial", string(rest))
	shutdown(t, p, time.Second)
}
