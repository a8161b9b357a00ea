package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// logsEnv is the environment of a web.1 dynoscope that ships logs to recv
// and nothing else.
func logsEnv(t *testing.T, recvURL string, extra ...string) []string {
	t.Helper()
	return baseEnv(t).without("DYNOSCOPE_PLATFORM").with(append([]string{
		"DYNO=web.1",
		"DYNOSCOPE_APP=logs-e2e",
		"ENVIRONMENT=staging",
		"GRAFANA_CLOUD_LOKI_URL=" + recvURL,
		"DYNOSCOPE_SCRAPE_TARGETS=",
	}, extra...)...).list()
}

// TestSIGTERMToProcessGroupShipsTheAppsLastLines sends SIGTERM to every
// process of the "dyno" at once, as Heroku does: the app goes on writing for
// a few seconds, and every one of those lines still reaches stdout and Loki,
// and everything exits well before Heroku's 30 s.
func TestSIGTERMToProcessGroupShipsTheAppsLastLines(t *testing.T) {
	recv := testsupport.NewLokiReceiver(t)
	bin := testsupport.Binary(t, "agent/cmd/dynoscope")
	app := `trap 'for i in 1 2 3 4 5 6; do echo "after-term $i"; sleep 0.5; done; echo "last words" >&2; exit 0' TERM
echo ready
while :; do sleep 0.1; done`

	cmd := exec.Command(bin, "run", "--", "bash", "-c", app)
	cmd.Env = logsEnv(t, recv.URL, "DYNOSCOPE_SHUTDOWN_TIMEOUT=20s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	recv.WaitForLine(t, "ready", 20*time.Second)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM))
	signalled := time.Now()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "dynoscope run exits with the app's status 0\nstderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM\nstderr:\n%s", stderr.String())
	}
	took := time.Since(signalled)
	require.Less(t, took, 15*time.Second, "exits soon after the app does")

	want := "ready\nafter-term 1\nafter-term 2\nafter-term 3\nafter-term 4\nafter-term 5\nafter-term 6\n"
	require.Equal(t, want, stdout.String(), "the app's stdout passed through unchanged and in order")
	require.Contains(t, stderr.String(), "last words\n")

	for i := 1; i <= 6; i++ {
		e := recv.WaitForLine(t, fmt.Sprintf("after-term %d", i), 5*time.Second)
		require.Equal(t, "stdout", e.Labels["stream"])
		require.Equal(t, "web.1", e.Labels["instance"])
		require.Equal(t, "logs-e2e", e.Labels["app"])
	}
	last := recv.WaitForLine(t, "last words", 5*time.Second)
	require.Equal(t, "stderr", last.Labels["stream"])
	require.Contains(t, stderr.String(), "msg=stopped", "one summary line at the end")
}

// TestLokiHangingNeverHoldsTheAppBack: with a Loki that accepts connections
// and never answers, an app writing 200k lines finishes, every line reaches
// stdout byte for byte, and what could not be shipped is counted.
func TestLokiHangingNeverHoldsTheAppBack(t *testing.T) {
	recv := testsupport.NewLokiReceiver(t)
	recv.HangAll(true)
	t.Cleanup(func() { recv.HangAll(false) })
	bin := testsupport.Binary(t, "agent/cmd/dynoscope")

	cmd := exec.Command(bin, "run", "--", "seq", "200000")
	cmd.Env = logsEnv(t, recv.URL, "DYNOSCOPE_SHUTDOWN_TIMEOUT=4s")
	var stdout bytes.Buffer
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
	require.Less(t, time.Since(start), 20*time.Second, "the app and the flush deadline, nothing more")

	want, err := exec.Command("seq", "200000").Output()
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, stdout.Bytes()), "all 200000 lines on stdout, byte for byte (got %d bytes, want %d)", stdout.Len(), len(want))

	summary := stderr.String()
	require.Contains(t, summary, "read 200000 lines", "every line was offered to the pipeline")
	require.Regexp(t, `dropped [1-9][0-9]*`, summary, "what Loki did not take is counted, not lost silently")
	require.Empty(t, recv.Entries(), "the hanging Loki acknowledged nothing")
}

// lockedBuffer collects output that is written and read at once.
type lockedBuffer = testsupport.Buffer
