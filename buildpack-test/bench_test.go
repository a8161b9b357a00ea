package buildpacktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// launcherBudget is the bound on what the launcher adds to dyno boot.
const launcherBudget = 50 * time.Millisecond

// sourceLauncher sources the launcher once in a fresh web dyno of home, starting the agent and the
// tees, and returns how long the source took, measured inside the dyno's bash.
func sourceLauncher(tb testing.TB, home string, vars map[string]string) time.Duration {
	tb.Helper()
	tmp, err := os.MkdirTemp("", "dynoscope-launch-")
	require.NoError(tb, err)
	defer os.RemoveAll(tmp)
	args := []string{"-i", "HOME=" + home, "PATH=" + platformPath, "TMPDIR=" + tmp}
	for k, v := range vars {
		args = append(args, k+"="+v)
	}
	args = append(args, "DYNOSCOPE_SOCKET="+filepath.Join(tmp, "dynoscope.sock")) // never the machine's default
	script := `start="${EPOCHREALTIME}"; . "${HOME}/.profile.d/zz-dynoscope.sh"; end="${EPOCHREALTIME}"; ` +
		`echo "$((${end/./} - ${start/./}))" >"${TMPDIR}/us"`
	cmd := exec.Command("env", append(args, "bash", "-c", script)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(tb, cmd.Run())
	pgid := cmd.Process.Pid
	defer func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		require.Eventually(tb, func() bool { return len(groupProcesses(pgid)) == 0 }, graceTimeout, 10*time.Millisecond)
	}()
	us, err := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(tmp, "us"))))
	require.NoError(tb, err)
	return time.Duration(us) * time.Microsecond
}

// TestLauncherSourceTime checks the median time to source the launcher (agent and tees started)
// against the 50 ms budget.
func TestLauncherSourceTime(t *testing.T) {
	home, _ := fakeApp(t)
	const runs = 21
	times := make([]time.Duration, runs)
	for i := range times {
		times[i] = sourceLauncher(t, home, fakeVars())
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("launcher source time over %d runs: median %s, max %s", runs, times[runs/2], times[runs-1])
	require.Less(t, times[runs/2], launcherBudget)
}

// BenchmarkLauncherSource reports the time to source the launcher with the real agent binary
// (scripts/bench-launcher.sh reports the median of many runs).
func BenchmarkLauncherSource(b *testing.B) {
	b.ReportAllocs()
	home, _ := realApp(b)
	vars := fakeVars("DYNOSCOPE_DRY_RUN", "true", "DYNOSCOPE_STATUS_ADDR", "")
	var total time.Duration
	for b.Loop() {
		total += sourceLauncher(b, home, vars)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/source")
}
