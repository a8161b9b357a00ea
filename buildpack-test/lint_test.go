package buildpacktest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/stretchr/testify/require"
)

// shellFiles are the buildpack's shell sources, relative to the repository root.
var shellFiles = []string{
	"bin/detect", "bin/compile", "bin/release", "lib/output.sh", "lib/agent.sh", "lib/launcher.sh",
	"scripts/buildpack.sh", "scripts/release.sh", "scripts/bench-launcher.sh", "buildpack-test/testdata/fake-dynoscope",
}

// TestShellLint runs shellcheck with every optional check enabled, and shfmt, on the buildpack's
// scripts: the same commands as `make lint`.
func TestShellLint(t *testing.T) {
	root := testsupport.ModuleRoot(t)
	for _, tool := range [][]string{
		append([]string{"shellcheck", "--enable=all", "--external-sources"}, shellFiles...),
		append([]string{"shfmt", "--diff"}, shellFiles...),
	} {
		t.Run(tool[0], func(t *testing.T) {
			if _, err := exec.LookPath(tool[0]); err != nil {
				t.Fatalf("%s is not installed: apt-get install -y %s", tool[0], tool[0])
			}
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s:\n%s", filepath.Base(tool[0]), out)
		})
	}
}
