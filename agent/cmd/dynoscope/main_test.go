package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// commandTimeout bounds one in-process command of these tests.
const commandTimeout = 60 * time.Second

// lockedBuffer collects output that is written and read at once.
type lockedBuffer = testsupport.Buffer

// testEnviron is an environment built from scratch (nothing of the test
// process's GRAFANA_* or DYNOSCOPE_* leaks in), with no status server, the
// tee socket in a temporary directory and a short flush; kv are appended
// (the last value of a name wins, as in the process environment).
func testEnviron(t testing.TB, kv ...string) []string {
	t.Helper()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"DYNOSCOPE_APP=cmdtest",
		"ENVIRONMENT=test",
		"DYNOSCOPE_PLATFORM=local",
		"DYNOSCOPE_STATUS_ADDR=",
		"DYNOSCOPE_SOCKET=" + filepath.Join(t.TempDir(), "d.sock"),
		"DYNOSCOPE_SHUTDOWN_TIMEOUT=5s",
		"DYNOSCOPE_SCRAPE_INTERVAL=1s",
		"DYNOSCOPE_SCRAPE_TIMEOUT=1s",
	}
	return append(env, kv...)
}

// invoke calls run in-process with stdin and returns the exit status and
// both outputs; it fails the test if the command takes longer than
// commandTimeout.
func invoke(t testing.TB, environ []string, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, environ, stdio{stdin, &out, &errOut}) }()
	select {
	case code = <-done:
	case <-time.After(commandTimeout):
		t.Fatalf("dynoscope %s: still running after %s\nstderr:\n%s", strings.Join(args, " "), commandTimeout, errOut.String())
	}
	return code, out.String(), errOut.String()
}

func TestNoArgumentsPrintsUsage(t *testing.T) {
	code, stdout, _ := invoke(t, testEnviron(t), nil)
	require.Equal(t, 2, code)
	require.Contains(t, stdout, "Usage: dynoscope COMMAND [ARGS]")
	for _, c := range commands() {
		require.Contains(t, stdout, "  "+c.name+" ", "usage lists %s", c.name)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, stdout, stderr := invoke(t, testEnviron(t), nil, "frobnicate")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	require.True(t, strings.HasPrefix(stderr, "dynoscope: unknown command \"frobnicate\"\n\nUsage: dynoscope COMMAND"), stderr)
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := invoke(t, testEnviron(t), nil, "version")
	require.Equal(t, 0, code)
	require.Equal(t, "dynoscope "+version+"\n", stdout)
	require.Empty(t, stderr)
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, _ := invoke(t, testEnviron(t), nil, args...)
		require.Equal(t, 0, code, args)
		require.Contains(t, stdout, "Usage: dynoscope COMMAND", args)
	}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			for _, flag := range []string{"--help", "-h"} {
				code, stdout, stderr := invoke(t, testEnviron(t), nil, c.name, flag)
				require.Equal(t, 0, code, "stderr: %s", stderr)
				// setup's flag package prints its usage on stderr.
				require.Contains(t, stdout+stderr, "Usage: dynoscope "+c.name)
			}
		})
	}
}

func TestRunWithoutCommand(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"run", "--"}} {
		code, stdout, stderr := invoke(t, testEnviron(t), nil, args...)
		require.Equal(t, 2, code, args)
		require.Empty(t, stdout)
		require.Equal(t, "dynoscope run: no command given: use dynoscope run -- CMD [ARGS...]\n", stderr)
	}
}

// TestRunExitStatus: the child's status is returned as a shell reports it.
func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"success", []string{"true"}, 0},
		{"false", []string{"false"}, 1},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7},
		{"not found", []string{"dynoscope-e2e-no-such-command"}, 127},
		{"not executable", []string{"/dev/null"}, 126},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137},
		{"killed by SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 143},
		{"without --", []string{"sh", "-c", "exit 3"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--"}, tt.args...)
			if tt.name == "without --" {
				args = append([]string{"run"}, tt.args...)
			}
			code, _, stderr := invoke(t, testEnviron(t), nil, args...)
			require.Equal(t, tt.want, code, stderr)
		})
	}
	t.Run("not found names the command", func(t *testing.T) {
		_, _, stderr := invoke(t, testEnviron(t), nil, "run", "--", "dynoscope-e2e-no-such-command")
		require.Contains(t, stderr, "dynoscope run: start dynoscope-e2e-no-such-command:")
	})
}

// awkwardBytes is input a line-based copy could mangle: NUL, invalid
// UTF-8, CR LF, a line longer than DYNOSCOPE_LOG_MAX_LINE_BYTES (256KiB;
// truncated for Loki, never in the passthrough), and no final newline.
func awkwardBytes() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("hello passthrough line\n")
	b.WriteString("crlf line\r\n")
	b.Write([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
	for range 300 << 10 {
		b.WriteByte(byte('a' + r.IntN(26)))
	}
	b.WriteByte('\n')
	for range 4096 {
		b.WriteByte(byte(r.IntN(256)))
	}
	b.WriteString("\nlast line without newline")
	return b.Bytes()
}

// TestRunPassesOutputThrough: the child's stdout and stderr are
// dynoscope's, byte for byte, with logs off and with logs shipped to Loki.
func TestRunPassesOutputThrough(t *testing.T) {
	input := awkwardBytes()
	tests := []struct {
		name   string
		child  []string
		stream string
	}{
		{"stdout", []string{"cat"}, "stdout"},
		{"stderr", []string{"sh", "-c", "cat >&2"}, "stderr"},
	}
	for _, tt := range tests {
		for _, logs := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s logs=%v", tt.name, logs), func(t *testing.T) {
				// The agent's own log lines would share stderr: errors only.
				environ := testEnviron(t, "DYNOSCOPE_LOGS=false", "DYNOSCOPE_AGENT_LOG_LEVEL=error")
				var loki *testsupport.LokiReceiver
				if logs {
					loki = testsupport.NewLokiReceiver(t)
					environ = testEnviron(t, "GRAFANA_CLOUD_LOKI_URL="+loki.URL, "DYNOSCOPE_AGENT_LOG_LEVEL=error")
				}
				args := append([]string{"run", "--"}, tt.child...)
				code, stdout, stderr := invoke(t, environ, bytes.NewReader(input), args...)
				require.Equal(t, 0, code, stderr)
				got, other := stdout, stderr
				if tt.stream == "stderr" {
					got, other = stderr, stdout
				}
				require.True(t, bytes.Equal(input, []byte(got)), "the %s passthrough differs: %d bytes in, %d out", tt.stream, len(input), len(got))
				require.Empty(t, other)
				if logs {
					e := loki.WaitForLine(t, "hello passthrough line", 10*time.Second)
					require.Equal(t, tt.stream, e.Labels["stream"])
					require.Equal(t, "cmdtest", e.Labels["app"])
					loki.WaitForLine(t, "last line without newline", 10*time.Second)
				}
			})
		}
	}
}

// TestRunInvalidConfig: a bad config var turns forwarding off, never the
// app: the child runs, its status is returned, and the error names the
// variable.
func TestRunInvalidConfig(t *testing.T) {
	code, stdout, stderr := invoke(t, testEnviron(t, "DYNOSCOPE_SCRAPE_INTERVAL=5"), nil, "run", "--", "sh", "-c", "echo child-ran; exit 3")
	require.Equal(t, 3, code)
	require.Equal(t, "child-ran\n", stdout)
	require.Contains(t, stderr, `DYNOSCOPE_SCRAPE_INTERVAL=\"5\" is not a duration`)
	require.Contains(t, stderr, "configuration is invalid: forwarding is off until it is fixed; the app is not affected")
}

func TestConfigInvalid(t *testing.T) {
	code, stdout, stderr := invoke(t, testEnviron(t, "DYNOSCOPE_SCRAPE_INTERVAL=5"), nil, "config")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "DYNOSCOPE_SCRAPE_INTERVAL")
	require.Contains(t, stderr, "\nerror: DYNOSCOPE_SCRAPE_INTERVAL=\"5\" is not a duration: use Go syntax such as 60s or 1m30s\n")
}

func TestConfigValid(t *testing.T) {
	code, stdout, stderr := invoke(t, testEnviron(t), nil, "config")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^DYNOSCOPE_SCRAPE_INTERVAL +1s +set$`, stdout)
	require.Regexp(t, `(?m)^DYNOSCOPE_APP +cmdtest +set$`, stdout)
	require.NotContains(t, stderr, "error:")
}

// TestRunMetricsDisabled: ENABLE_METRICS=false is the seed's off switch:
// the child runs as if dynoscope were not there, nothing is started, nothing
// is sent.
func TestRunMetricsDisabled(t *testing.T) {
	var requests atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(remote.Close)
	loki := testsupport.NewLokiReceiver(t)
	statusAddr := testsupport.FreeAddr(t)
	environ := testEnviron(t,
		"ENABLE_METRICS=false",
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remote.URL+"/api/v1/write",
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
		"DYNOSCOPE_SCRAPE_TARGETS=app="+remote.URL+"/metrics",
	)

	// The child echoes stdin until it closes: while it runs, nothing listens.
	stdinR, stdinW := io.Pipe()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"run", "--", "cat"}, environ, stdio{stdinR, &out, &errOut})
	}()
	_, err := io.WriteString(stdinW, "ping\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return out.String() == "ping\n" }, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool {
		c, err := net.DialTimeout("tcp", statusAddr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 500*time.Millisecond, 50*time.Millisecond, "no status server")
	require.NoError(t, stdinW.Close())
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(commandTimeout):
		t.Fatal("run did not return after the child's stdin closed")
	}
	require.Equal(t, "ping\n", out.String())
	require.Contains(t, errOut.String(), "ENABLE_METRICS=false: the agent is off")
	require.NotContains(t, errOut.String(), "msg=started")
	require.NotContains(t, errOut.String(), "msg=stopped")
	require.Zero(t, requests.Load(), "no scrape, no remote write")
	require.Zero(t, loki.Requests(), "no log push")
}
