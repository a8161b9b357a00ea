package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// TestTeeToAgent is the buildpack's launcher flow: the app's output goes
// through `dynoscope tee`, which passes it on byte for byte and offers each
// line to `dynoscope agent` over the socket. The tee starts before the
// agent (they start together at dyno boot): lines written once the agent is
// up are shipped, and the tee never waits for it.
func TestTeeToAgent(t *testing.T) {
	t.Parallel()
	loki := testsupport.NewLokiReceiver(t)
	e := baseEnv(t).with(
		"DYNO=web.1",
		"DYNOSCOPE_PLATFORM=heroku",
		"GRAFANA_CLOUD_LOKI_URL="+loki.URL,
		"DYNOSCOPE_SCRAPE_TARGETS=",
	)
	bin := dynoscope(t)

	tee := exec.Command(bin, "tee", "--stream", "stderr")
	tee.Env = e.list()
	stdin, err := tee.StdinPipe()
	require.NoError(t, err)
	var teeOut, teeErr output
	tee.Stdout, tee.Stderr = &teeOut, &teeErr
	require.NoError(t, tee.Start())
	teeExited := make(chan struct{})
	var teeErrWait error
	go func() { teeErrWait = tee.Wait(); close(teeExited) }()
	t.Cleanup(func() {
		_ = tee.Process.Kill()
		<-teeExited
	})

	var written bytes.Buffer
	write := func(s string) {
		t.Helper()
		written.WriteString(s)
		_, err := stdin.Write([]byte(s))
		require.NoError(t, err)
	}
	write("before the agent: passed through\n")
	require.Eventually(t, func() bool { return teeOut.String() == written.String() }, 10*time.Second, 10*time.Millisecond,
		"without an agent the tee still copies at once")

	agent := start(t, e, bin, "agent")
	// Lines go on until one reaches Loki: the tee connects when the socket appears.
	for i := 0; ; i++ {
		write(fmt.Sprintf("level=error msg=\"after the agent\" n=%d\n", i))
		if len(loki.Entries()) > 0 {
			break
		}
		require.Less(t, i, 400, "no line reached Loki")
		require.Eventually(t, func() bool { return teeOut.String() == written.String() }, 10*time.Second, 10*time.Millisecond)
		time.Sleep(50 * time.Millisecond) // the pace of an app's output, not a wait for a result
	}
	write("the last line\n")
	e1 := loki.WaitForLine(t, "the last line", arriveTimeout)
	require.Equal(t, "stderr", e1.Labels["stream"])
	require.Equal(t, "web.1", e1.Labels["instance"])
	errLine := loki.WaitForLine(t, "after the agent", arriveTimeout)
	require.Equal(t, "error", errLine.Labels["level"])

	require.NoError(t, stdin.Close())
	select {
	case <-teeExited:
		require.NoError(t, teeErrWait, "tee exits 0 at EOF; stderr: %s", teeErr.String())
	case <-time.After(exitTimeout):
		t.Fatal("tee did not exit at EOF")
	}
	require.Equal(t, written.String(), teeOut.String(), "the tee passes every byte through")
	require.Empty(t, teeErr.String())
	agent.stop(t)
}

// TestRunAsPID1ForwardsSIGTERM: as a container's entrypoint (PID 1 of its
// PID namespace), `run` is the only process that gets the SIGTERM, so it
// forwards it to the app, which then exits in its own time.
func TestRunAsPID1ForwardsSIGTERM(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--pid", "--fork", "true").Run(); err != nil {
		t.Skipf("a PID namespace needs unshare and CAP_SYS_ADMIN (root): %v", err)
	}
	e := baseEnv(t).with("DYNOSCOPE_LOGS=false")
	app := `trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done`
	p := start(t, e, "unshare", "--pid", "--fork", "--kill-child", dynoscope(t), "run", "--", "sh", "-c", app)
	require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "ready") }, arriveTimeout, tick)

	// Only dynoscope (PID 1 inside) gets the signal, not the group.
	pid := childOf(t, p.cmd.Process.Pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t, exitTimeout), "the app's status")
	require.Contains(t, p.stdout.String(), "got-term")
}

// TestRunDoesNotForwardSIGTERM: elsewhere (Heroku, a terminal) the app gets
// its own signal from the platform; `run` does not send it a second one.
func TestRunDoesNotForwardSIGTERM(t *testing.T) {
	t.Parallel()
	e := baseEnv(t).with("DYNOSCOPE_LOGS=false")
	app := `trap 'echo got-term' TERM; echo ready; while :; do sleep 0.05; done`
	p := start(t, e, dynoscope(t), "run", "--", "sh", "-c", app)
	require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "ready") }, arriveTimeout, tick)
	require.NoError(t, syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)) // dynoscope only
	require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "signal received") }, arriveTimeout, 10*time.Millisecond)
	require.Never(t, func() bool { return strings.Contains(p.stdout.String(), "got-term") }, time.Second, 50*time.Millisecond,
		"the app got no SIGTERM from dynoscope")
	require.True(t, p.running(), "run waits for the app")
	// The platform's SIGTERM to the whole group: the app's trap runs once.
	p.signal(t, syscall.SIGTERM)
	require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "got-term") }, arriveTimeout, 10*time.Millisecond)
	require.Equal(t, 1, strings.Count(p.stdout.String(), "got-term"))
	p.signal(t, syscall.SIGKILL)
}

// childOf returns the only child of pid.
func childOf(t testing.TB, pid int) int {
	t.Helper()
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		require.NoError(t, err)
		f := strings.Fields(string(b))
		if len(f) != 1 {
			return false
		}
		child, err = strconv.Atoi(f[0])
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	return child
}
