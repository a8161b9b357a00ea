// Package local holds the tests of the local stack: the compose file and
// the configurations it mounts, checked with the tools CI has
// (docker-compose 1.29, promtool, amtool), and the native stack
// (scripts/local-native.sh) run end to end with the real agent.
package local

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/brainbytesai/dynoscope/dashboards"
)

// tool returns the path of a command the tests need, failing with an
// install hint when it is missing (never skipping).
func tool(t testing.TB, name, hint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	require.NoError(t, err, "%s is not installed: %s", name, hint)
	return path
}

// run runs a command in dir and returns its stdout, failing the test with
// its output when it fails.
func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %s:\n%s%s", name, strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

func TestDockerComposeConfig(t *testing.T) {
	dc := tool(t, "docker-compose", "apt-get install docker-compose (Compose 1.29)")
	run(t, ".", dc, "-f", "docker-compose.yml", "config", "--quiet")
}

func TestPromtoolCheckConfig(t *testing.T) {
	pt := tool(t, "promtool", "apt-get install prometheus (promtool)")
	out := run(t, ".", pt, "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS: 1 rule files found", "prometheus.yml must load ../alerts/*.rules.yml")
}

func TestAmtoolCheckConfig(t *testing.T) {
	am := tool(t, "amtool", "apt-get install prometheus-alertmanager (amtool)")
	require.Contains(t, run(t, ".", am, "check-config", "alertmanager.yml"), "SUCCESS")
}

type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Hostname    string                       `yaml:"hostname"`
		Environment map[string]string            `yaml:"environment"`
		Healthcheck map[string]any               `yaml:"healthcheck"`
		DependsOn   map[string]map[string]string `yaml:"depends_on"`
		Volumes     []string                     `yaml:"volumes"`
	} `yaml:"services"`
}

func loadCompose(t testing.TB) (composeFile, string) {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(b, &c))
	return c, string(b)
}

// TestComposeServices checks what docker-compose config does not: the
// services the issue names, pinned images, healthchecks, depends_on
// conditions and a comment on every service.
func TestComposeServices(t *testing.T) {
	c, raw := loadCompose(t)
	for _, name := range []string{"prometheus", "alertmanager", "loki", "grafana", "app"} {
		require.Contains(t, c.Services, name)
	}
	for name, s := range c.Services {
		t.Run(name, func(t *testing.T) {
			require.Regexp(t, `(?m)^  # .*\n(  #.*\n)*  `+regexp.QuoteMeta(name)+`:$`, raw, "a comment above the service")
			require.NotEmpty(t, s.Image)
			require.Regexp(t, `^[a-z0-9./_-]+:[A-Za-z0-9._-]+$`, s.Image, "a pinned image tag")
			require.NotContains(t, s.Image, ":latest")
			require.NotEmpty(t, s.Healthcheck["test"], "healthcheck")
			for dep, cond := range s.DependsOn {
				require.Contains(t, c.Services, dep)
				require.Contains(t, []string{"service_healthy", "service_started", "service_completed_successfully"}, cond["condition"])
			}
		})
	}

	app := c.Services["app"]
	require.NotNil(t, app.Build)
	require.Equal(t, "..", app.Build.Context, "build context is the repository root")
	require.Equal(t, "local/Dockerfile", app.Build.Dockerfile)
	require.Equal(t, "development", app.Environment["ENVIRONMENT"])
	require.NotContains(t, app.Environment, "DYNOSCOPE_PLATFORM", "the agent detects platform=docker")
	require.Equal(t, "http://prometheus:9090/api/v1/write", app.Environment["GRAFANA_CLOUD_PROMETHEUS_URL"])
	require.Equal(t, "http://loki:3100/loki/api/v1/push", app.Environment["GRAFANA_CLOUD_LOKI_URL"])
	require.Equal(t, "service_healthy", app.DependsOn["prometheus"]["condition"])
	require.Equal(t, "service_healthy", app.DependsOn["loki"]["condition"])

	// Grafana gets exactly the dashboards of ../dashboards.
	var mounted []string
	for _, v := range c.Services["grafana"].Volumes {
		if src, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(src, "../dashboards/") {
			mounted = append(mounted, filepath.Base(src))
		}
	}
	var want []string
	for file := range dashboards.Files {
		want = append(want, file)
	}
	slices.Sort(mounted)
	slices.Sort(want)
	require.Equal(t, want, mounted)
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	require.Len(t, froms, 2, "multi-stage: a golang builder and a small runtime")
	require.True(t, strings.HasPrefix(froms[0][1], "golang:"), froms[0][1])
	for _, f := range froms {
		require.NotContains(t, f[1], ":latest")
		require.Contains(t, f[1], ":", "pinned tag")
	}
	require.Contains(t, df, "/usr/local/bin/")
	require.Contains(t, df, `ENTRYPOINT ["dynoscope", "run", "--"]`)
	require.Contains(t, df, `CMD ["demoapp"]`)
	for _, pkg := range []string{"./agent/cmd/dynoscope", "./local/demoapp"} {
		require.Contains(t, df, pkg)
	}
}

// TestGrafanaProvisioning: fixed datasource UIDs, dashboards from files.
func TestGrafanaProvisioning(t *testing.T) {
	b, err := os.ReadFile("grafana/provisioning/datasources/dynoscope.yml")
	require.NoError(t, err)
	var ds struct {
		Datasources []struct {
			Name, UID, Type, URL string
		} `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &ds))
	byType := map[string]string{}
	for _, d := range ds.Datasources {
		require.NotEmpty(t, d.UID, d.Name)
		byType[d.Type] = d.UID + " " + d.URL
	}
	require.Equal(t, "dynoscope-prometheus http://prometheus:9090", byType["prometheus"])
	require.Equal(t, "dynoscope-loki http://loki:3100", byType["loki"])
}

// TestNativeRenderOnlyAddresses: scripts/local-native.sh render writes the
// compose stack's configurations with nothing but addresses (and paths)
// changed.
func TestNativeRenderOnlyAddresses(t *testing.T) {
	dir := renderNative(t, map[string]string{
		"PROMETHEUS_ADDR":   "127.0.0.1:19090",
		"ALERTMANAGER_ADDR": "127.0.0.1:19093",
		"ALERTLOG_ADDR":     "127.0.0.1:18080",
		"LOKI_ADDR":         "127.0.0.1:13100",
	})
	for _, file := range []string{"prometheus.yml", "alertmanager.yml", "loki.yml", "grafana/provisioning/datasources/dynoscope.yml", "grafana/provisioning/dashboards/dynoscope.yml"} {
		t.Run(file, func(t *testing.T) {
			orig, err := os.ReadFile(file)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(dir, "local", file))
			require.NoError(t, err)
			origLines, gotLines := strings.Split(string(orig), "\n"), strings.Split(string(got), "\n")
			require.Len(t, gotLines, len(origLines))
			changed := 0
			for i := range origLines {
				if origLines[i] == gotLines[i] {
					continue
				}
				changed++
				require.Regexp(t, `127\.0\.0\.1:1\d{4}|`+regexp.QuoteMeta(dir)+`|listen_port: (13100|0)$`, gotLines[i], "only addresses and paths change: %q -> %q", origLines[i], gotLines[i])
			}
			if file != "grafana/provisioning/dashboards/dynoscope.yml" {
				require.NotZero(t, changed, "the compose addresses are replaced")
			}
		})
	}
	pt := tool(t, "promtool", "apt-get install prometheus (promtool)")
	require.Contains(t, run(t, dir, pt, "check", "config", "local/prometheus.yml"), "SUCCESS: 1 rule files found")
	am := tool(t, "amtool", "apt-get install prometheus-alertmanager (amtool)")
	require.Contains(t, run(t, dir, am, "check-config", "local/alertmanager.yml"), "SUCCESS")
}

// renderNative runs scripts/local-native.sh render into a temporary
// directory with the given addresses and returns the directory.
func renderNative(t testing.TB, addrs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("../scripts/local-native.sh", "render", dir)
	cmd.Env = os.Environ()
	for k, v := range addrs {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "local-native.sh render: %s", out)
	return dir
}
