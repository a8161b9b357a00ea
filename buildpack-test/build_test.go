package buildpacktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/stretchr/testify/require"
)

// testVersion is the version the tests build the buildpack archive with.
const testVersion = "0.0.0-test"

// maxFootprint is the bound on what the buildpack adds to the slug, per architecture.
const maxFootprint = 25 << 20

var (
	archiveOnce sync.Once
	archiveDir  string // the extracted archive made by scripts/buildpack.sh
	archiveErr  error
)

// releaseArchive runs scripts/buildpack.sh (what `make buildpack` runs) once per test process,
// for this machine's architecture only, and returns the extracted archive: the buildpack as the
// platform downloads it.
func releaseArchive(t testing.TB) string {
	t.Helper()
	archiveOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dynoscope-archive-")
		if err != nil {
			archiveErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		cmd := exec.Command(filepath.Join(testsupport.ModuleRoot(t), "scripts", "buildpack.sh"), testVersion)
		cmd.Env = append(os.Environ(), "DYNOSCOPE_ARCHES="+goArch(), "DIST_DIR="+filepath.Join(dir, "dist"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			archiveErr = fmt.Errorf("scripts/buildpack.sh: %w\n%s", err, out)
			return
		}
		archive := filepath.Join(dir, "dist", "dynoscope-buildpack-"+testVersion+".tgz")
		archiveDir = filepath.Join(dir, "buildpack")
		if err := os.MkdirAll(archiveDir, 0o755); err != nil {
			archiveErr = err
			return
		}
		if out, err := exec.Command("tar", "-xzf", archive, "-C", archiveDir).CombinedOutput(); err != nil {
			archiveErr = fmt.Errorf("tar: %w\n%s", err, out)
		}
	})
	require.NoError(t, archiveErr)
	return archiveDir
}

// agentBinary is the release binary of this machine's architecture, from the archive.
func agentBinary(t testing.TB) string {
	t.Helper()
	return filepath.Join(releaseArchive(t), "bin", "dynoscope-linux-"+goArch())
}

// buildUser returns the credentials of an unprivileged build user: "dynoscope-build", created with
// useradd when the tests run as root; when they don't, the current user already is unprivileged.
func buildUser(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: the build already runs as an unprivileged user")
		return nil
	}
	const name = "dynoscope-build"
	u, err := user.Lookup(name)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		require.NoError(t, err, "useradd: %s", out)
		u, err = user.Lookup(name)
		require.NoError(t, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	require.NoError(t, err)
	gid, err := strconv.Atoi(u.Gid)
	require.NoError(t, err)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// chownBuild gives the build's directories to cred's user, as the platform's build user owns them.
func chownBuild(t testing.TB, d buildDirs, cred *syscall.Credential) {
	t.Helper()
	if cred == nil {
		return
	}
	for _, dir := range []string{d.Build, d.Cache, d.Env, d.Tmp} {
		require.NoError(t, filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, int(cred.Uid), int(cred.Gid))
		}))
	}
}

// treeSize is the total size of the regular files under dir.
func treeSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	}))
	return n
}

// listTree lists the paths under dir, relative, sorted.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var paths []string
	require.NoError(t, filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel != "." {
			paths = append(paths, rel)
		}
		return nil
	}))
	sort.Strings(paths)
	return paths
}

// requireInstalled checks the slug: the agent runs and reports version, the launcher is in place,
// the app's own files are untouched; it returns the footprint in bytes.
func requireInstalled(t testing.TB, build, version string) int64 {
	t.Helper()
	agent := filepath.Join(build, ".dynoscope", "bin", "dynoscope")
	out, err := exec.Command(agent, "version").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), version)
	launcher := filepath.Join(build, ".profile.d", "zz-dynoscope.sh")
	want, err := os.ReadFile(filepath.Join(testsupport.ModuleRoot(t), "lib", "launcher.sh"))
	require.NoError(t, err)
	require.Equal(t, string(want), readFile(launcher))
	require.FileExists(t, filepath.Join(build, "Procfile"))
	footprint := treeSize(t, filepath.Join(build, ".dynoscope")) + int64(len(want))
	require.LessOrEqual(t, footprint, int64(maxFootprint))
	return footprint
}

func TestBuildpackArchiveLayout(t *testing.T) {
	bp := releaseArchive(t)
	require.Equal(t, []string{
		"bin", "bin/compile", "bin/detect", "bin/dynoscope-linux-" + goArch(), "bin/release",
		"lib", "lib/agent.sh", "lib/launcher.sh", "lib/output.sh", "manifest.txt",
	}, listTree(t, bp))
	require.Contains(t, readFile(filepath.Join(bp, "manifest.txt")), "version "+testVersion+"\n")
	out, err := exec.Command("file", agentBinary(t)).CombinedOutput()
	if err == nil { // file(1) is optional; when present it confirms a static, stripped binary
		require.Contains(t, string(out), "statically linked")
		require.Contains(t, string(out), "stripped")
	}
}

func TestBuildFromArchive(t *testing.T) {
	bp := releaseArchive(t)
	for _, asUser := range []bool{false, true} {
		t.Run(map[bool]string{false: "root or current user", true: "unprivileged build user"}[asUser], func(t *testing.T) {
			r := runner{}
			if asUser {
				r.Cred = buildUser(t)
			}
			d := newBuild(t, nil, nil)
			chownBuild(t, d, r.Cred)
			res := r.compile(t, bp, d)
			require.Contains(t, res.Stdout, "-----> Installing the dynoscope agent\n")
			require.Contains(t, res.Stdout, "       Using the agent shipped in this buildpack ("+testVersion+", linux/"+goArch()+")\n")
			require.Contains(t, res.Stdout, "-----> Installing the dynoscope launcher\n")
			require.Empty(t, res.Stderr)
			footprint := requireInstalled(t, d.Build, testVersion)
			t.Logf("slug footprint of the buildpack (linux/%s): %.1f MiB", goArch(), float64(footprint)/(1<<20))
			require.Empty(t, listTree(t, d.Tmp), "temporary files left behind")
			require.Empty(t, listTree(t, d.Cache), "the archive's binary needs no cache")

			// A second build reuses nothing and needs nothing: same result.
			d2 := newBuild(t, nil, nil)
			d2.Cache = d.Cache
			chownBuild(t, d2, r.Cred)
			r.compile(t, bp, d2)
			requireInstalled(t, d2.Build, testVersion)
		})
	}
}

// releaseServer serves the agent binary at /v<version>/dynoscope-linux-<arch> and counts requests.
type releaseServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newReleaseServer(t testing.TB, binary string) *releaseServer {
	t.Helper()
	s := &releaseServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path != "/v1.2.3/dynoscope-linux-"+goArch() {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, binary)
	}))
	t.Cleanup(s.Close)
	return s
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// manifestFor is a manifest pinning version 1.2.3 at url with sum, as scripts/release.sh writes it.
func manifestFor(url, sum string) string {
	return fmt.Sprintf("# test manifest\nversion 1.2.3\nlinux-%s %s %s\n", goArch(), url, sum)
}

func TestBuildDownloadsAndCaches(t *testing.T) {
	binary := agentBinary(t)
	for _, asUser := range []bool{false, true} {
		t.Run(map[bool]string{false: "root or current user", true: "unprivileged build user"}[asUser], func(t *testing.T) {
			r := runner{}
			if asUser {
				r.Cred = buildUser(t)
			}
			srv := newReleaseServer(t, binary)
			bp := checkoutBuildpack(t, manifestFor(srv.URL+"/v1.2.3/dynoscope-linux-"+goArch(), sha256File(t, binary)))

			d := newBuild(t, nil, nil)
			chownBuild(t, d, r.Cred)
			res := r.compile(t, bp, d)
			require.Contains(t, res.Stdout, "       Downloading "+srv.URL+"/v1.2.3/dynoscope-linux-"+goArch()+"\n")
			require.Equal(t, int64(1), srv.requests.Load())
			requireInstalled(t, d.Build, testVersion)
			require.Equal(t, []string{"dynoscope", "dynoscope/1.2.3", "dynoscope/1.2.3/linux-" + goArch(),
				"dynoscope/1.2.3/linux-" + goArch() + "/dynoscope"}, listTree(t, d.Cache))
			require.Empty(t, listTree(t, d.Tmp), "temporary files left behind")

			// The second build downloads nothing: the release server is gone.
			srv.Close()
			d2 := newBuild(t, nil, nil)
			d2.Cache = d.Cache
			chownBuild(t, d2, r.Cred)
			res = r.compile(t, bp, d2)
			require.Contains(t, res.Stdout, "       Using the cached agent 1.2.3 (linux/"+goArch()+")\n")
			require.NotContains(t, res.Stdout, "Downloading")
			requireInstalled(t, d2.Build, testVersion)
		})
	}
}

// requireFailedCleanly checks a failed build: the message, and nothing half-installed anywhere.
func requireFailedCleanly(t testing.TB, res result, d buildDirs, message string) {
	t.Helper()
	require.Equal(t, 1, res.Code)
	require.Contains(t, res.Stderr, message)
	require.NoDirExists(t, filepath.Join(d.Build, ".dynoscope"))
	require.NoDirExists(t, filepath.Join(d.Build, ".profile.d"))
	require.Empty(t, listTree(t, d.Tmp), "temporary files left behind")
	require.NotContains(t, strings.Join(listTree(t, d.Cache), "\n"), "dynoscope/1.2.3/linux", "a rejected binary was cached")
}

func TestBuildFailures(t *testing.T) {
	binary := agentBinary(t)
	srv := newReleaseServer(t, binary)
	good := srv.URL + "/v1.2.3/dynoscope-linux-" + goArch()
	sum := sha256File(t, binary)
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		manifest string
		vars     map[string]string
		message  string
	}{
		{"checksum mismatch", manifestFor(good, wrong), nil,
			"Checksum mismatch for the dynoscope agent downloaded from:\n !       " + good + "\n !       expected SHA-256 " + wrong + "\n !       got      SHA-256 " + sum},
		{"download fails", manifestFor(srv.URL+"/v1.2.3/missing", sum), nil,
			"Failed to download the dynoscope agent from:\n !       " + srv.URL + "/v1.2.3/missing\n !     curl said: curl: (22)"},
		{"override with a wrong checksum", manifestFor(good, sum),
			map[string]string{"DYNOSCOPE_BINARY_URL": good, "DYNOSCOPE_BINARY_SHA256": wrong}, "Checksum mismatch"},
		{"override URL without checksum", manifestFor(good, sum),
			map[string]string{"DYNOSCOPE_BINARY_URL": good}, "DYNOSCOPE_BINARY_URL and DYNOSCOPE_BINARY_SHA256 must be set together."},
		{"no binary at all", "version 1.2.3\n", nil, "No dynoscope agent for linux/" + goArch() + " in this buildpack."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bp := checkoutBuildpack(t, tc.manifest)
			d := newBuild(t, tc.vars, nil)
			res := runner{}.run(t, d.Tmp, bp, "compile", d.Build, d.Cache, d.Env)
			requireFailedCleanly(t, res, d, tc.message)
		})
	}
}

func TestBuildOverrideWinsOverManifestAndArchive(t *testing.T) {
	binary := agentBinary(t)
	srv := newReleaseServer(t, binary)
	url := srv.URL + "/v1.2.3/dynoscope-linux-" + goArch()
	bp := archiveBuildpack(t, filepath.Join(testsupport.ModuleRoot(t), "buildpack-test", "testdata", "fake-dynoscope"))
	d := newBuild(t, map[string]string{"DYNOSCOPE_BINARY_URL": url, "DYNOSCOPE_BINARY_SHA256": strings.ToUpper(sha256File(t, binary))}, nil)
	res := runner{}.compile(t, bp, d)
	require.Contains(t, res.Stdout, "Downloading "+url)
	requireInstalled(t, d.Build, testVersion) // the real agent, not the archive's fake one
	require.Equal(t, int64(1), srv.requests.Load())
}

func TestBuildFromSourceWithGo(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on the PATH")
	}
	// A git checkout of the whole repository, with no release pinned for this architecture.
	bp := checkoutBuildpack(t, "version 1.2.3\n")
	for _, name := range []string{"go.mod", "go.sum", "agent"} {
		require.NoError(t, os.Symlink(filepath.Join(testsupport.ModuleRoot(t), name), filepath.Join(bp, name)))
	}
	goEnv := func(name string) string {
		out, err := exec.Command(goBin, "env", name).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	d := newBuild(t, nil, nil)
	r := runner{Env: []string{
		"PATH=" + filepath.Dir(goBin) + ":" + platformPath, "HOME=/nonexistent", "TMPDIR=" + d.Tmp,
		"GOCACHE=" + goEnv("GOCACHE"), "GOMODCACHE=" + goEnv("GOMODCACHE"), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local",
	}}
	res := r.compile(t, bp, d)
	require.Contains(t, res.Stdout, "Building from source with go version")
	requireInstalled(t, d.Build, "1.2.3-src")
}

func TestBuildDownloadsThroughTheAppsProxy(t *testing.T) {
	binary := agentBinary(t)
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy gets the absolute URL; this one serves the release itself.
		if r.URL.Host != "releases.invalid" {
			http.Error(w, "not via the proxy", http.StatusBadGateway)
			return
		}
		proxied.Add(1)
		http.ServeFile(w, r, binary)
	}))
	t.Cleanup(proxy.Close)
	bp := checkoutBuildpack(t, manifestFor("http://releases.invalid/v1.2.3/dynoscope-linux-"+goArch(), sha256File(t, binary)))
	d := newBuild(t, map[string]string{"HTTP_PROXY": proxy.URL}, nil)
	runner{}.compile(t, bp, d)
	require.Equal(t, int64(1), proxied.Load())
	requireInstalled(t, d.Build, testVersion)
}
