package e2e

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// Deadlines of the waits: generous for a loaded 2-core CI machine, each
// one a bound, not a sleep.
const (
	arriveTimeout = 45 * time.Second // a sample or line to reach a receiver
	exitTimeout   = 30 * time.Second // Heroku's SIGTERM grace
	tick          = 200 * time.Millisecond
)

// dynoscope and demoapp build the binaries once per test process.
func dynoscope(t testing.TB) string { return testsupport.Binary(t, "agent/cmd/dynoscope") }
func demoapp(t testing.TB) string   { return testsupport.Binary(t, "local/demoapp") }

// env is a process environment built from scratch: nothing of the test's
// own environment leaks in but PATH and HOME, so a GRAFANA_* or
// DYNOSCOPE_* of the developer's shell can't change what a test sees.
type env map[string]string

// baseEnv is what every agent of these tests runs with: fast scrapes, no
// status server, the tee socket in a temporary directory, a short flush.
func baseEnv(t testing.TB) env {
	t.Helper()
	return env{
		"PATH":                       os.Getenv("PATH"),
		"HOME":                       t.TempDir(),
		"DYNOSCOPE_SCRAPE_INTERVAL":  "1s",
		"DYNOSCOPE_SCRAPE_TIMEOUT":   "1s",
		"DYNOSCOPE_STATUS_ADDR":      "",
		"DYNOSCOPE_SOCKET":           filepath.Join(t.TempDir(), "dynoscope.sock"),
		"DYNOSCOPE_SHUTDOWN_TIMEOUT": "10s",
		"DYNOSCOPE_APP":              "e2e",
		"ENVIRONMENT":                "test",
		"DYNOSCOPE_PLATFORM":         "local",
	}
}

// with returns a copy with kv ("NAME=value" each) set.
func (e env) with(kv ...string) env {
	out := maps.Clone(e)
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		out[k] = v
	}
	return out
}

// without returns a copy without the names.
func (e env) without(names ...string) env {
	out := maps.Clone(e)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// list is the environ form, sorted.
func (e env) list() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// output collects output that is written and read at once.
type output = testsupport.Buffer

// proc is a dynoscope process in its own process group, as a dyno's
// processes are: signal() reaches the whole group, like Heroku's SIGTERM.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *output
	exited         chan struct{}
	state          *os.ProcessState
}

// start runs bin with args in e, in a new process group; whatever is left
// of the group is killed when the test ends.
func start(t testing.TB, e env, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &output{}, stderr: &output{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = e.list()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // the group: the app under `run` too
		<-p.exited
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), tail(p.stdout.String()), tail(p.stderr.String()))
		}
	})
	return p
}

// tail is the end of a long output, for failure messages.
func tail(s string) string {
	const max = 8000
	if len(s) > max {
		return "...\n" + s[len(s)-max:]
	}
	return s
}

// signal sends sig to the process group.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(-p.cmd.Process.Pid, sig))
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// wait waits for the exit and returns the status as a shell reports it.
func (p *proc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s\nstderr:\n%s", p.cmd.Path, timeout, tail(p.stderr.String()))
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.state.ExitCode()
}

// stop sends SIGTERM to the group and requires exit status 0 within
// Heroku's grace and the agent's "stopped" line.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.wait(t, exitTimeout), "exit status after SIGTERM")
	require.Contains(t, p.stderr.String(), "msg=stopped", "the agent logs that it stopped")
}

// execute runs bin to completion (bounded) and returns its exit status
// and outputs.
func execute(t testing.TB, e env, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := start(t, e, bin, args...)
	code = p.wait(t, 60*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// query is QueryPrometheus with a short name.
func query(t testing.TB, prom, expr string) []testsupport.VectorSample {
	t.Helper()
	return testsupport.QueryPrometheus(t, prom, expr)
}

// value runs expr and returns the value of its single result, false when
// the result is empty; more than one result fails the test.
func value(t testing.TB, prom, expr string) (float64, bool) {
	t.Helper()
	v := query(t, prom, expr)
	switch len(v) {
	case 0:
		return 0, false
	case 1:
		return v[0].Value, true
	}
	t.Fatalf("query %q: %d results, want 1: %v", expr, len(v), v)
	return 0, false
}

// waitValue waits until expr has one result for which ok holds, and returns it.
func waitValue(t testing.TB, prom, expr string, ok func(float64) bool) float64 {
	t.Helper()
	var got float64
	var found bool
	deadline := time.Now().Add(arriveTimeout)
	for {
		got, found = value(t, prom, expr)
		if found && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: after %s the value is %v (found %v)", expr, arriveTimeout, got, found)
		}
		time.Sleep(tick) // polling, bounded by the deadline above
	}
}

func atLeast(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }
func equals(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// httpGet returns the status code and body of a GET (bounded).
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// selfMetric reads one sample of the agent's status endpoint /metrics
// (text format): the value of the line that starts with series, e.g.
// `dynoscope_remote_write_samples_dropped_total{reason="rejected"}`; false
// when the line is absent or the endpoint does not answer (yet).
func selfMetric(t testing.TB, statusAddr, series string) (float64, bool) {
	t.Helper()
	code, body, err := get("http://" + statusAddr + "/metrics")
	if err != nil || code != http.StatusOK {
		return 0, false // not listening yet: callers wait with require.Eventually
	}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, "line %q", line)
			return v, true
		}
	}
	return 0, false
}

// remoteWriteURL is where the agent sends to the Prometheus at base.
func remoteWriteURL(base string) string { return base + testsupport.RemoteWritePath }

// sel formats a selector {k="v",...} from pairs, sorted.
func sel(name string, labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// get is a GET that returns errors instead of failing the test, for
// conditions polled with require.Eventually.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(b), err
}

// hostname is the instance label off Heroku.
func hostname(t testing.TB) string {
	t.Helper()
	h, err := os.Hostname()
	require.NoError(t, err)
	return h
}
