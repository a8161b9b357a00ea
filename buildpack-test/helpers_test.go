package buildpacktest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/stretchr/testify/require"
)

// platformPath is the PATH of the emulated build image and dyno: the system directories, without
// the Go toolchain (Heroku's stacks have none).
const platformPath = "/usr/local/bin:/usr/bin:/bin"

// goArch is the architecture bin/compile detects on this machine.
func goArch() string { return runtime.GOARCH }

// copyTree copies src into dst (created), keeping file modes; symlinks are copied as links.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case info.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return copyFile(path, target, info.Mode().Perm())
		}
	})
	require.NoError(t, err)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// worldDir makes a fresh directory that other users can enter (for the non-root build), removed
// at the end of the test.
func worldDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dynoscope-bp-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// checkoutBuildpack lays out the buildpack as a plain git checkout: the repository's bin/ (without
// any agent binary), lib/ and manifest.txt, with manifest (when non-empty) replacing manifest.txt.
func checkoutBuildpack(t testing.TB, manifest string) string {
	t.Helper()
	dir := filepath.Join(worldDir(t), "buildpack")
	copyTree(t, filepath.Join(testsupport.ModuleRoot(t), "bin"), filepath.Join(dir, "bin"))
	matches, err := filepath.Glob(filepath.Join(dir, "bin", "dynoscope-*"))
	require.NoError(t, err)
	for _, m := range matches {
		require.NoError(t, os.Remove(m))
	}
	copyTree(t, filepath.Join(testsupport.ModuleRoot(t), "lib"), filepath.Join(dir, "lib"))
	if manifest == "" {
		manifest = readFile(filepath.Join(testsupport.ModuleRoot(t), "manifest.txt"))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.txt"), []byte(manifest), 0o644))
	return dir
}

// archiveBuildpack lays out the buildpack as a release archive does, with agent as the binary.
func archiveBuildpack(t testing.TB, agent string) string {
	t.Helper()
	dir := checkoutBuildpack(t, "version 9.9.9-test\n")
	require.NoError(t, copyFile(agent, filepath.Join(dir, "bin", "dynoscope-linux-"+goArch()), 0o755))
	return dir
}

// buildDirs is one build's directories, as the platform passes them to bin/compile.
type buildDirs struct {
	Build, Cache, Env, Tmp string
}

// newBuild copies the fixture app (plus extra files) into a fresh BUILD_DIR and makes empty CACHE_DIR,
// ENV_DIR (holding vars, one file per config var) and TMPDIR.
func newBuild(t testing.TB, vars map[string]string, extra map[string]string) buildDirs {
	t.Helper()
	base := worldDir(t)
	d := buildDirs{
		Build: filepath.Join(base, "build"), Cache: filepath.Join(base, "cache"),
		Env: filepath.Join(base, "env"), Tmp: filepath.Join(base, "tmp"),
	}
	copyTree(t, filepath.Join(testsupport.ModuleRoot(t), "buildpack-test", "testdata", "app"), d.Build)
	for name, src := range extra {
		require.NoError(t, copyFile(src, filepath.Join(d.Build, name), 0o755))
	}
	for _, dir := range []string{d.Cache, d.Env, d.Tmp} {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	writeEnvDir(t, d.Env, vars)
	return d
}

// writeEnvDir writes config vars as the platform does: one file per var, the value without newline.
func writeEnvDir(t testing.TB, dir string, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644))
	}
}

// result is what a finished script printed and its exit code.
type result struct {
	Stdout, Stderr string
	Code           int
}

// runner runs a buildpack script the way the platform does: a clean environment, the given user.
type runner struct {
	// Cred runs the script as another user when set.
	Cred *syscall.Credential
	// Env is the whole environment (nil: PATH, HOME and TMPDIR only).
	Env []string
}

// run runs buildpack/bin/NAME args with a deadline.
func (r runner) run(t testing.TB, tmp, buildpack, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(buildpack, "bin", name), args...)
	cmd.Env = r.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + platformPath, "HOME=/nonexistent", "TMPDIR=" + tmp, "STACK=heroku-24"}
	}
	cmd.Dir = tmp
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if r.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.Cred}
	}
	require.NoError(t, cmd.Start())
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	res := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.Code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("bin/%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	return res
}

// compile runs detect, compile and release as the platform does and requires them to succeed.
func (r runner) compile(t testing.TB, buildpack string, d buildDirs) result {
	t.Helper()
	detect := r.run(t, d.Tmp, buildpack, "detect", d.Build)
	require.Equal(t, 0, detect.Code)
	require.Equal(t, "dynoscope\n", detect.Stdout)
	res := r.run(t, d.Tmp, buildpack, "compile", d.Build, d.Cache, d.Env)
	require.Equal(t, 0, res.Code, res.Stderr)
	release := r.run(t, d.Tmp, buildpack, "release", d.Build)
	require.Equal(t, 0, release.Code)
	require.Equal(t, "--- {}\n", release.Stdout)
	return res
}

// syncBuffer collects output that is written and read at once.
type syncBuffer = testsupport.Buffer

// dyno is a booted dyno: bash -l -c sourcing .profile.d/*.sh, then the command, in its own process
// group (the "dyno": every process the platform would signal).
type dyno struct {
	Home, Tmp      string
	Stdout, Stderr *syncBuffer
	Pgid           int
	exited         chan struct{} // closed when bash (or the command it became) exits
	streamsClosed  chan struct{} // closed when nothing holds the dyno's stdout and stderr any more
	waitErr        error
}

// bootScript is what the emulated platform runs: Heroku sources .profile.d/*.sh in the shell that
// then runs the Procfile command.
const bootScript = `for f in "${HOME}"/.profile.d/*.sh; do if [[ -r "${f}" ]]; then . "${f}"; fi; done; unset f; `

// bootDyno starts command in a dyno with HOME at home and only the given variables (env -i).
func bootDyno(t testing.TB, home, tmp string, vars map[string]string, command string) *dyno {
	t.Helper()
	env := []string{"HOME=" + home, "PATH=" + platformPath, "TMPDIR=" + tmp}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command("env", append(append([]string{"-i"}, env...), "bash", "-l", "-c", bootScript+command)...)
	cmd.Dir = home
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	devnull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer devnull.Close()
	cmd.Stdin = devnull
	d := &dyno{Home: home, Tmp: tmp, Stdout: &syncBuffer{}, Stderr: &syncBuffer{},
		exited: make(chan struct{}), streamsClosed: make(chan struct{})}
	var copies sync.WaitGroup
	for _, s := range []struct {
		set *io.Writer
		buf *syncBuffer
	}{{&cmd.Stdout, d.Stdout}, {&cmd.Stderr, d.Stderr}} {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		*s.set = w
		copies.Add(1)
		go func(r *os.File, buf *syncBuffer) {
			defer copies.Done()
			_, _ = io.Copy(buf, r)
			r.Close()
		}(r, s.buf)
		defer w.Close() // the parent's copy: only the dyno's processes hold the write end
	}
	require.NoError(t, cmd.Start())
	d.Pgid = cmd.Process.Pid
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	go func() {
		copies.Wait()
		close(d.streamsClosed)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-d.Pgid, syscall.SIGKILL)
		<-d.exited
		if t.Failed() {
			t.Logf("dyno stdout:\n%s\ndyno stderr:\n%s", d.Stdout.String(), d.Stderr.String())
		}
	})
	return d
}

// ExitCode waits up to timeout for the command to exit and returns its status.
func (d *dyno) ExitCode(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		t.Fatalf("dyno still running after %s", timeout)
	}
	var exit *exec.ExitError
	if errors.As(d.waitErr, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, d.waitErr)
	return 0
}

// Terminate sends SIGTERM to every process of the dyno, as the platform does, and returns how long
// it took for all of them to end (failing after the platform's 30 s grace).
func (d *dyno) Terminate(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, syscall.Kill(-d.Pgid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return len(groupProcesses(d.Pgid)) == 0 }, 30*time.Second, 20*time.Millisecond,
		"processes of the dyno still running 30 s after SIGTERM: %v", groupProcesses(d.Pgid))
	return time.Since(start)
}

// groupProcesses lists the live (non-zombie) processes of process group pgid as "pid:name".
func groupProcesses(pgid int) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so parse after the last ')'.
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			found = append(found, fmt.Sprintf("%d:%s", pid, s[strings.IndexByte(s, '(')+1:end]))
		}
	}
	return found
}

// lines splits s into its non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// readFile returns the file's content, or "" when it does not exist yet.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
