// Package testsupport starts the real parts the tests need: the dynoscope
// and demo app binaries, a Debian Prometheus with its remote-write receiver,
// and a loopback Loki receiver. Everything listens on 127.0.0.1 only and is
// stopped when the test ends.
package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// Binary builds the main package at pkg (a path relative to the module root,
// such as "agent/cmd/dynoscope") once per test process and returns the path
// of the executable.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := buildCache[pkg]; ok {
		return path
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "dynoscope-test-bin-")
		if err != nil {
			t.Fatalf("build dir: %v", err)
		}
		buildDir = dir // left for the OS to clean: shared by every test of the process
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	buildCache[pkg] = out
	return out
}

// ModuleRoot is the repository's root directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testsupport: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
