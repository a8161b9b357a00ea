package buildpacktest

import (
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// Deadlines for the real agent: bounds on a loaded 2-core machine, never sleeps.
const (
	arriveTimeout = 45 * time.Second // a sample or a log line reaching its receiver
	graceTimeout  = 30 * time.Second // Heroku's SIGTERM grace
)

// realApp builds the fixture app, with the demo app as ./demoapp, from the release archive.
func realApp(t testing.TB) (home, tmp string) {
	t.Helper()
	d := newBuild(t, nil, map[string]string{"demoapp": testsupport.Binary(t, "local/demoapp")})
	runner{}.compile(t, releaseArchive(t), d)
	return d.Build, d.Tmp
}

// procfileCommand reads the web process's command from the built app's Procfile.
func procfileCommand(t testing.TB, home, process string) string {
	t.Helper()
	for _, l := range lines(readFile(filepath.Join(home, "Procfile"))) {
		if name, cmd, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(name) == process {
			return strings.TrimSpace(cmd)
		}
	}
	t.Fatalf("no %s process in the Procfile", process)
	return ""
}

// realVars are the config vars of a web dyno shipping to the test receivers, with fast scrapes.
func realVars(t testing.TB, prom string, loki *testsupport.LokiReceiver, port int, tmp string) map[string]string {
	t.Helper()
	return map[string]string{
		"DYNO":                         "web.1",
		"PORT":                         strconv.Itoa(port),
		"HEROKU_APP_NAME":              "shop",
		"ENVIRONMENT":                  "staging",
		"GRAFANA_CLOUD_PROMETHEUS_URL": prom + testsupport.RemoteWritePath,
		"GRAFANA_CLOUD_LOKI_URL":       loki.URL,
		"DYNOSCOPE_SCRAPE_INTERVAL":    "1s",
		"DYNOSCOPE_SCRAPE_TIMEOUT":     "1s",
		"DYNOSCOPE_STATUS_ADDR":        "",
		"DYNOSCOPE_SOCKET":             filepath.Join(tmp, "dynoscope.sock"),
		"DYNOSCOPE_SHUTDOWN_TIMEOUT":   "10s",
	}
}

// get requests url and returns the status code (0 on a connection error).
func get(url string) int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// agentPIDs lists the pids of `dynoscope agent` processes in the dyno.
func agentPIDs(d *dyno) []int {
	var pids []int
	for _, p := range groupProcesses(d.Pgid) {
		pid, _ := strconv.Atoi(p[:strings.IndexByte(p, ':')])
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 2 && filepath.Base(args[0]) == "dynoscope" && args[1] == "agent" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestDynoWebEndToEnd boots a web dyno of the built app with the real agent and demo app: the app
// serves, its metrics reach a real Prometheus and its lines the Loki receiver with the contract
// labels, its output is unchanged, a killed agent comes back, and SIGTERM ends everything in time
// with the shutdown lines shipped.
func TestDynoWebEndToEnd(t *testing.T) {
	home, tmp := realApp(t)
	prom := testsupport.StartPrometheus(t)
	loki := testsupport.NewLokiReceiver(t)
	port := testsupport.FreePort(t)
	d := bootDyno(t, home, tmp, realVars(t, prom, loki, port, tmp), procfileCommand(t, home, "web"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	require.Eventually(t, func() bool { return get(base+"/health") == http.StatusOK }, arriveTimeout, 100*time.Millisecond, "the app serves")
	for range 3 {
		require.Equal(t, http.StatusOK, get(base+"/"))
	}

	// Metrics: the app's own series, with the contract labels.
	query := `http_request_duration_seconds_count{app="shop",environment="staging",platform="heroku",instance="web.1",dyno_type="web",job="app"}`
	require.Eventually(t, func() bool { return len(testsupport.QueryPrometheus(t, prom, query)) > 0 }, arriveTimeout, 500*time.Millisecond,
		"no app metrics in Prometheus for %s", query)

	// Logs: the lines, with the contract labels, and unchanged on the dyno's stdout.
	entry := loki.WaitForLine(t, `"path":"/"`, arriveTimeout)
	for k, v := range map[string]string{"app": "shop", "service_name": "shop", "environment": "staging", "platform": "heroku",
		"instance": "web.1", "dyno_type": "web", "stream": "stdout"} {
		require.Equal(t, v, entry.Labels[k], "label %s of %v", k, entry.Labels)
	}
	require.Contains(t, d.Stdout.String(), entry.Line+"\n")

	// Every line written so far arrives, unchanged.
	written := lines(d.Stdout.String())
	require.Eventually(t, func() bool { return isSubsequence(written, lokiLines(loki, "stdout")) }, arriveTimeout, 100*time.Millisecond,
		"the stdout lines did not all arrive in Loki")

	logOverhead(t, d)

	// The agent killed with SIGKILL: the restart loop brings it back; the app never notices (lines
	// written while no agent runs pass through to the dyno's stdout but are not shipped).
	pids := agentPIDs(d)
	require.Len(t, pids, 1)
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	require.Equal(t, http.StatusOK, get(base+"/health"))
	require.Eventually(t, func() bool { p := agentPIDs(d); return len(p) == 1 && p[0] != pids[0] }, 10*time.Second, 50*time.Millisecond,
		"the agent was not restarted")
	require.Equal(t, http.StatusOK, get(base+"/api/ask")) // the first /api/ask: after the restart
	loki.WaitForLine(t, `"path":"/api/ask"`, arriveTimeout)

	// SIGTERM to every process of the dyno: the app's shutdown lines are shipped, all exit in time.
	took := d.Terminate(t)
	t.Logf("every process of the dyno ended %s after SIGTERM", took)
	require.Less(t, took, graceTimeout)
	<-d.streamsClosed
	loki.WaitForLine(t, "received SIGTERM, shutting down", 5*time.Second)
	loki.WaitForLine(t, "shutdown complete", 5*time.Second)

	// What arrived is what the app wrote, unchanged and in order (the agent's own lines go to stderr).
	require.True(t, isSubsequence(lokiLines(loki, "stdout"), lines(d.Stdout.String())), "Loki got lines the app did not write, or out of order")
}

// lokiLines returns the lines Loki received for a stream, ordered by their timestamps (Loki orders
// them so; separate streams such as levels may arrive in separate pushes).
func lokiLines(loki *testsupport.LokiReceiver, stream string) []string {
	var entries []testsupport.LokiEntry
	for _, e := range loki.Entries() {
		if e.Labels["stream"] == stream {
			entries = append(entries, e)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.Before(entries[j].Time) })
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Line
	}
	return out
}

// isSubsequence tells whether every element of sub appears in seq, in the same order.
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// TestDynoWithoutCredentials boots the real app with no Grafana Cloud config vars: it serves, and
// the launcher prints one warning.
func TestDynoWithoutCredentials(t *testing.T) {
	home, tmp := realApp(t)
	port := testsupport.FreePort(t)
	d := bootDyno(t, home, tmp, map[string]string{"DYNO": "web.1", "PORT": strconv.Itoa(port)}, procfileCommand(t, home, "web"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool { return get(base+"/health") == http.StatusOK }, arriveTimeout, 100*time.Millisecond)
	require.Empty(t, agentPIDs(d))
	d.Terminate(t)
	<-d.streamsClosed
	warnings := only(lines(d.Stderr.String()), "dynoscope")
	require.Len(t, warnings, 1, d.Stderr.String())
	require.Contains(t, warnings[0], "dynoscope: warning: neither GRAFANA_CLOUD_PROMETHEUS_URL nor GRAFANA_CLOUD_LOKI_URL is set")
	require.Contains(t, d.Stdout.String(), "received SIGTERM, shutting down")
}

// logOverhead logs the memory of what the launcher added to the dyno: the agent, its restart loop
// and the two tees (every process of the dyno but the app), as RSS and as PSS (the processes share
// the dynoscope binary's pages, which RSS counts once per process).
func logOverhead(t testing.TB, d *dyno) {
	t.Helper()
	var rssTotal, pssTotal int
	for _, p := range groupProcesses(d.Pgid) {
		pid, name, _ := strings.Cut(p, ":")
		rss, pss := memField(pid, "Rss:"), memField(pid, "Pss:")
		cmdline := strings.ReplaceAll(strings.TrimRight(readFile("/proc/"+pid+"/cmdline"), "\x00"), "\x00", " ")
		if len(cmdline) > 80 {
			cmdline = cmdline[:80] + "..."
		}
		t.Logf("RSS %6d KiB  PSS %6d KiB  %s", rss, pss, cmdline)
		if name != "demoapp" {
			rssTotal += rss
			pssTotal += pss
		}
	}
	t.Logf("memory added by dynoscope to the dyno: RSS %.1f MiB, PSS %.1f MiB", float64(rssTotal)/1024, float64(pssTotal)/1024)
}

// memField reads a field in KiB from /proc/PID/smaps_rollup.
func memField(pid, field string) int {
	for _, l := range lines(readFile("/proc/" + pid + "/smaps_rollup")) {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	return 0
}

// TestDynoReleasePhase runs a release-phase dyno with the real agent: the release ends as soon as
// its command exits, with its exit status, and the command's lines are still shipped.
func TestDynoReleasePhase(t *testing.T) {
	home, tmp := realApp(t)
	loki := testsupport.NewLokiReceiver(t)
	vars := realVars(t, "http://127.0.0.1:9", loki, 0, tmp)
	vars["DYNO"] = "release.12"
	delete(vars, "PORT")
	d := bootDyno(t, home, tmp, vars, `echo "running migrations"; sleep 0.5; echo "migrations done"; exit 4`)
	require.Equal(t, 4, d.ExitCode(t, graceTimeout))
	start := time.Now()
	select {
	case <-d.streamsClosed:
	case <-time.After(2 * time.Second):
		t.Fatal("the release's output stream stayed open after its command exited: the release would hang")
	}
	t.Logf("release output closed %s after the command exited", time.Since(start))
	require.Equal(t, "running migrations\nmigrations done\n", d.Stdout.String())
	entry := loki.WaitForLine(t, "migrations done", arriveTimeout)
	require.Equal(t, "release", entry.Labels["instance"])
	require.Equal(t, "release", entry.Labels["dyno_type"])
	require.Eventually(t, func() bool { return len(groupProcesses(d.Pgid)) == 0 }, graceTimeout, 100*time.Millisecond,
		"the agent kept running after the release: %v", groupProcesses(d.Pgid))
}

// TestDynoNoAgent boots the real app where the launcher must start nothing, with the output untouched.
func TestDynoNoAgent(t *testing.T) {
	home, tmp := realApp(t)
	loki := testsupport.NewLokiReceiver(t)
	for name, extra := range map[string]map[string]string{
		"disabled":        {"DYNOSCOPE_DISABLED": "true"},
		"metrics off":     {"ENABLE_METRICS": "false"},
		"one-off dyno":    {"DYNO": "run.1"},
		"one-off opt-out": {"DYNO": "run.2", "DYNOSCOPE_ONE_OFF": "false"},
	} {
		t.Run(name, func(t *testing.T) {
			vars := realVars(t, "http://127.0.0.1:9", loki, testsupport.FreePort(t), tmp)
			for k, v := range extra {
				vars[k] = v
			}
			d := bootDyno(t, home, tmp, vars, `echo "plain output"; echo "plain error" >&2`)
			require.Equal(t, 0, d.ExitCode(t, 10*time.Second))
			<-d.streamsClosed
			require.Equal(t, "plain output\n", d.Stdout.String())
			require.Equal(t, "plain error\n", d.Stderr.String())
			require.Empty(t, groupProcesses(d.Pgid))
			require.NoFileExists(t, filepath.Join(tmp, "dynoscope-launcher.pid"))
		})
	}
	require.Zero(t, loki.Requests())
}

// TestDynoSecondSourcing emulates heroku ps:exec into a running web dyno: a shell sourcing
// .profile.d again without the config vars starts no second agent and prints nothing.
func TestDynoSecondSourcing(t *testing.T) {
	home, tmp := realApp(t)
	loki := testsupport.NewLokiReceiver(t)
	port := testsupport.FreePort(t)
	d := bootDyno(t, home, tmp, realVars(t, "http://127.0.0.1:9", loki, port, tmp), procfileCommand(t, home, "web"))
	require.Eventually(t, func() bool { return len(agentPIDs(d)) == 1 }, arriveTimeout, 50*time.Millisecond)

	exec := bootDyno(t, home, tmp, map[string]string{}, `echo "in the dyno"; dynoscope version`)
	require.Equal(t, 0, exec.ExitCode(t, 10*time.Second))
	<-exec.streamsClosed
	require.Equal(t, "in the dyno\ndynoscope "+testVersion+"\n", exec.Stdout.String())
	require.Empty(t, exec.Stderr.String())
	require.Empty(t, groupProcesses(exec.Pgid))
	require.Len(t, agentPIDs(d), 1)
	d.Terminate(t)
}

// TestDynoTerminal runs a one-off dyno with a terminal (heroku run bash), with the one-off opt-in
// on: no agent, and the command's output goes to the terminal itself.
func TestDynoTerminal(t *testing.T) {
	if _, err := osexec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed: the terminal case needs its pty")
	}
	home, tmp := realApp(t)
	loki := testsupport.NewLokiReceiver(t)
	vars := realVars(t, "http://127.0.0.1:9", loki, 0, tmp)
	vars["DYNO"], vars["DYNOSCOPE_ONE_OFF"] = "run.1", "true"
	delete(vars, "PORT")
	args := []string{"env", "-i", "HOME=" + home, "PATH=" + platformPath, "TMPDIR=" + tmp}
	for k, v := range vars {
		args = append(args, shellQuote(k+"="+v))
	}
	args = append(args, "bash", "-l", "-c", shellQuote(bootScript+`[[ -t 1 ]] && echo "stdout is the terminal"; [[ -e "${TMPDIR}/dynoscope-launcher.pid" ]] || echo "no agent"`))
	cmd := osexec.Command("script", "-q", "-e", "-c", strings.Join(args, " "), "/dev/null")
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "stdout is the terminal")
	require.Contains(t, string(out), "no agent")
	require.NoFileExists(t, filepath.Join(tmp, "dynoscope-launcher.pid"))
	require.Zero(t, loki.Requests())
}
