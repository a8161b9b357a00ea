package buildpacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/stretchr/testify/require"
)

// fakeApp builds the fixture app with the fake dynoscope as the agent binary and returns the
// built app (the dyno's HOME) and a fresh TMPDIR for the dyno.
func fakeApp(t testing.TB) (home, tmp string) {
	t.Helper()
	bp := archiveBuildpack(t, filepath.Join(testsupport.ModuleRoot(t), "buildpack-test", "testdata", "fake-dynoscope"))
	d := newBuild(t, nil, nil)
	runner{}.compile(t, bp, d)
	return d.Build, d.Tmp
}

// fakeVars are the config vars of a web dyno with both forwarders configured.
func fakeVars(extra ...string) map[string]string {
	vars := map[string]string{
		"DYNO":                         "web.1",
		"PORT":                         "5999",
		"GRAFANA_CLOUD_PROMETHEUS_URL": "http://127.0.0.1:9/api/prom/push",
		"GRAFANA_CLOUD_LOKI_URL":       "http://127.0.0.1:9/loki/api/v1/push",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(vars, extra[i])
			continue
		}
		vars[extra[i]] = extra[i+1]
	}
	return vars
}

// agentStarts lists the "agent PID GOMEMLIMIT=..." lines the fake agent logged.
func agentStarts(home string) []string {
	var starts []string
	for _, l := range lines(readFile(filepath.Join(home, "fake.log"))) {
		if strings.HasPrefix(l, "agent ") {
			starts = append(starts, l)
		}
	}
	return starts
}

// printer is a command that writes numbered lines to stdout and stderr, alternately, then waits
// for SIGTERM and writes a shutdown line.
const printer = `trap 'echo "shutdown line"; exit 0' TERM; for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; ` +
	`echo ready > "${HOME}/ready"; while :; do sleep 0.05; done`

func TestLauncherWebDyno(t *testing.T) {
	home, tmp := fakeApp(t)
	d := bootDyno(t, home, tmp, fakeVars(), printer)
	require.Eventually(t, func() bool {
		return readFile(filepath.Join(home, "ready")) != "" && len(agentStarts(home)) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Count(readFile(filepath.Join(home, "tee.log")), "\n") == 6 },
		5*time.Second, 10*time.Millisecond)

	require.Regexp(t, `^agent \d+ GOMEMLIMIT=64MiB$`, agentStarts(home)[0])
	// The command's output reaches the dyno's streams unchanged and in order, through the tees.
	require.Equal(t, []string{"out 1", "out 2", "out 3"}, without(lines(d.Stdout.String()), "fake agent"))
	require.Equal(t, []string{"err 1", "err 2", "err 3"}, lines(d.Stderr.String()))
	tee := lines(readFile(filepath.Join(home, "tee.log")))
	require.Equal(t, []string{"stdout out 1", "stdout out 2", "stdout out 3"}, only(tee, "stdout "))
	require.Equal(t, []string{"stderr err 1", "stderr err 2", "stderr err 3"}, only(tee, "stderr "))
	// The agent's own output goes to the dyno's stream directly, never back into the tee.
	require.Contains(t, d.Stdout.String(), "fake agent")
	require.NotContains(t, readFile(filepath.Join(home, "tee.log")), "fake agent")
	require.FileExists(t, filepath.Join(tmp, "dynoscope-launcher.pid"))

	took := d.Terminate(t)
	t.Logf("all processes of the dyno ended %s after SIGTERM", took)
	log := readFile(filepath.Join(home, "fake.log"))
	require.Contains(t, log, "agent-term")
	require.Contains(t, log, "tee-eof stdout")
	require.Contains(t, log, "tee-eof stderr")
	require.Len(t, agentStarts(home), 1, "the restart loop must not restart the agent during shutdown")
	require.Contains(t, d.Stdout.String(), "shutdown line")
	require.Contains(t, readFile(filepath.Join(home, "tee.log")), "stdout shutdown line")
}

func TestLauncherRestartsKilledAgent(t *testing.T) {
	home, tmp := fakeApp(t)
	d := bootDyno(t, home, tmp, fakeVars(), `i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done`)
	require.Eventually(t, func() bool { return len(agentStarts(home)) == 1 }, 10*time.Second, 10*time.Millisecond)
	var pid int
	_, err := fmt.Sscanf(agentStarts(home)[0], "agent %d", &pid)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	killedAt := strings.Count(d.Stdout.String(), "tick")

	require.Eventually(t, func() bool { return len(agentStarts(home)) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, d.Stderr.String(), "dynoscope: the agent exited (status 137); restarting it in 1s")
	// The app never noticed: still running, its output still flowing.
	require.Eventually(t, func() bool { return strings.Count(d.Stdout.String(), "tick") > killedAt+5 }, 5*time.Second, 10*time.Millisecond)
	select {
	case <-d.exited:
		t.Fatal("the app exited when the agent was killed")
	default:
	}
	d.Terminate(t)
	require.Len(t, agentStarts(home), 2)
}

func TestLauncherDoesNothing(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		warning string
	}{
		{"kill switch", fakeVars("DYNOSCOPE_DISABLED", "true"), ""},
		{"ENABLE_METRICS=false", fakeVars("ENABLE_METRICS", "false"), ""},
		{"one-off dyno", fakeVars("DYNO", "run.1", "PORT", ""), ""},
		{"no credentials", fakeVars("GRAFANA_CLOUD_PROMETHEUS_URL", "", "GRAFANA_CLOUD_LOKI_URL", ""),
			"dynoscope: warning: neither GRAFANA_CLOUD_PROMETHEUS_URL nor GRAFANA_CLOUD_LOKI_URL is set, so the agent is not started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home, tmp := fakeApp(t)
			d := bootDyno(t, home, tmp, tc.vars, `echo "out"; echo "err" >&2; readlink /proc/self/fd/1 > "${HOME}/fd1"; exit 7`)
			require.Equal(t, 7, d.ExitCode(t, 5*time.Second))
			<-d.streamsClosed
			require.Equal(t, "out\n", d.Stdout.String())
			if tc.warning == "" {
				require.Equal(t, "err\n", d.Stderr.String())
			} else {
				require.Equal(t, []string{tc.warning, "err"}, cut(lines(d.Stderr.String()), " (set them"))
			}
			require.Empty(t, agentStarts(home))
			require.NoFileExists(t, filepath.Join(home, "tee.log"))
			require.NoFileExists(t, filepath.Join(tmp, "dynoscope-launcher.pid"))
		})
	}
}

func TestLauncherLogsOff(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"DYNOSCOPE_LOGS=false": fakeVars("DYNOSCOPE_LOGS", "false"),
		"no Loki URL":          fakeVars("GRAFANA_CLOUD_LOKI_URL", ""),
	} {
		t.Run(name, func(t *testing.T) {
			home, tmp := fakeApp(t)
			d := bootDyno(t, home, tmp, vars, `echo "out"; echo "err" >&2; while [[ ! -s "${HOME}/fake.log" ]]; do sleep 0.01; done`)
			require.Equal(t, 0, d.ExitCode(t, 10*time.Second))
			require.Len(t, agentStarts(home), 1)
			require.NoFileExists(t, filepath.Join(home, "tee.log"))
			d.Terminate(t)
		})
	}
}

func TestLauncherMemoryLimit(t *testing.T) {
	tests := []struct{ value, want, warning string }{
		{"128MiB", "128MiB", ""},
		{"1GiB", "1GiB", ""},
		{"lots", "64MiB", "dynoscope: warning: DYNOSCOPE_MEMORY_LIMIT=lots is not a size like 64MiB; using 64MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			home, tmp := fakeApp(t)
			d := bootDyno(t, home, tmp, fakeVars("DYNOSCOPE_MEMORY_LIMIT", tc.value, "DYNOSCOPE_LOGS", "false"),
				`while [[ ! -s "${HOME}/fake.log" ]]; do sleep 0.01; done; [[ -z "${GOMEMLIMIT:-}" ]] || echo "GOMEMLIMIT leaked"`)
			require.Equal(t, 0, d.ExitCode(t, 10*time.Second))
			require.Equal(t, []string{"agent GOMEMLIMIT=" + tc.want}, scrubPIDs(agentStarts(home)))
			require.NotContains(t, d.Stdout.String(), "leaked")
			if tc.warning != "" {
				require.Contains(t, d.Stderr.String(), tc.warning)
			}
			d.Terminate(t)
		})
	}
}

func TestLauncherOneOffOptIn(t *testing.T) {
	home, tmp := fakeApp(t)
	d := bootDyno(t, home, tmp, fakeVars("DYNO", "run.3", "PORT", "", "DYNOSCOPE_ONE_OFF", "true"),
		`while [[ ! -s "${HOME}/fake.log" ]]; do sleep 0.01; done; echo "job done"`)
	require.Equal(t, 0, d.ExitCode(t, 10*time.Second))
	require.Len(t, agentStarts(home), 1)
	select {
	case <-d.streamsClosed:
	case <-time.After(2 * time.Second):
		t.Fatal("the one-off dyno's output stayed open after its command exited")
	}
	require.Equal(t, "job done\n", d.Stdout.String())
	require.Eventually(t, func() bool { return strings.Contains(readFile(filepath.Join(home, "fake.log")), "agent-term") },
		5*time.Second, 10*time.Millisecond, "the agent is stopped when the command exits")
}

func TestLauncherReleasePhaseEndsWithItsCommand(t *testing.T) {
	home, tmp := fakeApp(t)
	vars := fakeVars("DYNO", "release.7", "PORT", "")
	start := time.Now()
	d := bootDyno(t, home, tmp, vars, `while [[ ! -s "${HOME}/fake.log" ]]; do sleep 0.01; done; echo "migrating"; echo "migration warning" >&2; exit 3`)
	require.Equal(t, 3, d.ExitCode(t, 10*time.Second), "the release's exit status is the command's")
	select {
	case <-d.streamsClosed:
	case <-time.After(2 * time.Second):
		t.Fatal("the release's output stream stayed open after its command exited: the release would hang")
	}
	t.Logf("release finished %s after boot", time.Since(start))
	require.Equal(t, "migrating\n", d.Stdout.String())
	require.Equal(t, "migration warning\n", d.Stderr.String())
	require.Eventually(t, func() bool { return strings.Contains(readFile(filepath.Join(home, "fake.log")), "agent-term") },
		5*time.Second, 10*time.Millisecond, "the agent is stopped when the release command exits")
	require.Eventually(t, func() bool { return len(groupProcesses(d.Pgid)) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, readFile(filepath.Join(home, "tee.log")), "stdout migrating")
	require.Contains(t, readFile(filepath.Join(tmp, "dynoscope-agent.log")), "fake agent")
}

func TestLauncherTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed: the terminal case needs its pty")
	}
	home, tmp := fakeApp(t)
	var env []string
	for k, v := range fakeVars("DYNO", "run.1", "PORT", "", "DYNOSCOPE_ONE_OFF", "true") {
		env = append(env, k+"="+v)
	}
	inner := append(append([]string{"env", "-i", "HOME=" + home, "PATH=" + platformPath, "TMPDIR=" + tmp}, env...),
		"bash", "-l", "-c", shellQuote(bootScript+`if [[ -t 1 ]]; then echo "stdout is the terminal"; fi; echo "interactive done"`))
	cmd := exec.Command("script", "-q", "-e", "-c", strings.Join(inner, " "), "/dev/null")
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "stdout is the terminal")
	require.Contains(t, string(out), "interactive done")
	require.Empty(t, agentStarts(home))
	require.NoFileExists(t, filepath.Join(home, "tee.log"))
}

func TestLauncherSecondSourcing(t *testing.T) {
	home, tmp := fakeApp(t)
	d := bootDyno(t, home, tmp, fakeVars(), `while :; do sleep 0.05; done`)
	require.Eventually(t, func() bool { return len(agentStarts(home)) == 1 }, 10*time.Second, 10*time.Millisecond)

	// heroku ps:exec: a new shell in the same dyno (same /tmp) sources .profile.d again, without the
	// config vars, and without a terminal when given a command.
	exec1 := bootDyno(t, home, tmp, map[string]string{}, `echo "exec shell"; command -v dynoscope`)
	require.Equal(t, 0, exec1.ExitCode(t, 5*time.Second))
	<-exec1.streamsClosed
	require.Equal(t, "exec shell\n"+filepath.Join(home, ".dynoscope", "bin", "dynoscope")+"\n", exec1.Stdout.String())
	require.Empty(t, exec1.Stderr.String())
	// Even with the config vars (e.g. a nested login shell), the marker stops a second agent.
	exec2 := bootDyno(t, home, tmp, fakeVars(), `echo "again"`)
	require.Equal(t, 0, exec2.ExitCode(t, 5*time.Second))
	<-exec2.streamsClosed
	require.Equal(t, "again\n", exec2.Stdout.String())
	require.Empty(t, exec2.Stderr.String())
	require.Len(t, agentStarts(home), 1)
	d.Terminate(t)
}

// TestLauncherLeavesTheShellAlone sources the launcher into shells with various options and checks
// that options, traps, functions and variables (except PATH) are as before, and that it returns 0.
func TestLauncherLeavesTheShellAlone(t *testing.T) {
	home, tmp := fakeApp(t)
	snapshot := `{ set +o; shopt -p; trap -p; declare -F; compgen -v | grep -Ev '^(PATH|_|BASH_.*|PIPESTATUS|FUNCNAME|BASHPID|EPOCH.*|SECONDS|RANDOM|SRANDOM|LINENO|COLUMNS|LINES)$'; }`
	for _, opts := range []string{"", "set -euo pipefail", "set -o posix", "shopt -s nullglob failglob extglob; set -x"} {
		t.Run(opts, func(t *testing.T) {
			script := opts + "\n" + snapshot + " > \"${TMPDIR}/before\" 2>/dev/null\n" +
				`. "${HOME}/.profile.d/zz-dynoscope.sh"; echo "status $?" >&2` + "\n" +
				snapshot + " > \"${TMPDIR}/after\" 2>/dev/null\n" +
				`[[ ":${PATH}:" == *":${HOME}/.dynoscope/bin:"* ]] && echo "path ok" >&2` + "\n"
			for _, vars := range []map[string]string{fakeVars("DYNOSCOPE_LOGS", "false"), fakeVars("DYNOSCOPE_DISABLED", "true")} {
				_ = os.Remove(filepath.Join(tmp, "dynoscope-launcher.pid"))
				args := []string{"-i", "HOME=" + home, "PATH=" + platformPath, "TMPDIR=" + tmp}
				for k, v := range vars {
					args = append(args, k+"="+v)
				}
				cmd := exec.Command("env", append(args, "bash", "-c", script)...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				// A file, not a pipe: the agent left running in the background holds it open.
				outFile, err := os.Create(filepath.Join(tmp, "out"))
				require.NoError(t, err)
				cmd.Stdout, cmd.Stderr = outFile, outFile
				err = cmd.Run()
				outFile.Close()
				pgid := cmd.Process.Pid
				t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
				out := readFile(filepath.Join(tmp, "out"))
				require.NoError(t, err, out)
				require.Contains(t, string(out), "status 0")
				require.Contains(t, string(out), "path ok")
				require.Equal(t, readFile(filepath.Join(tmp, "before")), readFile(filepath.Join(tmp, "after")))
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
			}
		})
	}
}

// without drops the lines containing s.
func without(in []string, s string) []string {
	var out []string
	for _, l := range in {
		if !strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// only keeps the lines starting with prefix.
func only(in []string, prefix string) []string {
	var out []string
	for _, l := range in {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// cut truncates each line at sep.
func cut(in []string, sep string) []string {
	out := make([]string, len(in))
	for i, l := range in {
		out[i], _, _ = strings.Cut(l, sep)
	}
	return out
}

var pidPattern = regexp.MustCompile(` \d+ `)

func scrubPIDs(in []string) []string {
	out := make([]string, len(in))
	for i, l := range in {
		out[i] = pidPattern.ReplaceAllString(l, " ")
	}
	sort.Strings(out)
	return out
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
