package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeHeroku writes a heroku executable that records its arguments, one invocation per line,
// and fails when an argument equals failOn. It returns the PATH to use and the record file.
func fakeHeroku(t testing.TB, failOn string) (path, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "calls")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'" + record + "'\n"
	if failOn != "" {
		script += "for a in \"$@\"; do [ \"$a\" = '" + failOn + "' ] && { echo 'heroku: boom' >&2; exit 1; }; done\n"
	}
	script += "echo ok\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "heroku"), []byte(script), 0o755))
	return dir, record
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var fullCredentials = map[string]string{
	"GRAFANA_CLOUD_PROMETHEUS_URL":      "https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push",
	"GRAFANA_CLOUD_PROMETHEUS_USER":     "123456",
	"GRAFANA_CLOUD_PROMETHEUS_PASSWORD": "glc_secret-metrics-token",
	"GRAFANA_CLOUD_LOKI_URL":            "https://logs-prod-012.grafana.net",
	"GRAFANA_CLOUD_LOKI_USER":           "654321",
	"GRAFANA_CLOUD_LOKI_PASSWORD":       "glc_secret-logs-token",
}

func TestSetupPrintsCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	code := cmdSetup(context.Background(), []string{"--app", "shop-staging", "--app", "api-staging", "--environment", "Staging", "--buildpack", setupBuildpackURL + "#v0.1.0"},
		envOf(map[string]string{"GRAFANA_CLOUD_PROMETHEUS_PASSWORD": "glc_never-printed"}), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Empty(t, errOut.String())
	want := []string{
		"heroku buildpacks:add --index 1 https://github.com/brainbytesai/dynoscope#v0.1.0 -a shop-staging",
		"heroku labs:enable runtime-dyno-metadata -a shop-staging",
		"heroku config:set ENVIRONMENT=staging GRAFANA_CLOUD_PROMETHEUS_URL='<https://prometheus-prod-NN-prod-REGION.grafana.net/api/prom/push>' " +
			"GRAFANA_CLOUD_PROMETHEUS_USER='<prometheus-instance-id>' GRAFANA_CLOUD_PROMETHEUS_PASSWORD='<grafana-cloud-access-policy-token>' " +
			"GRAFANA_CLOUD_LOKI_URL='<https://logs-prod-NNN.grafana.net/loki/api/v1/push>' GRAFANA_CLOUD_LOKI_USER='<loki-user-id>' " +
			"GRAFANA_CLOUD_LOKI_PASSWORD='<grafana-cloud-access-policy-token>' -a shop-staging",
		"heroku buildpacks:add --index 1 https://github.com/brainbytesai/dynoscope#v0.1.0 -a api-staging",
		"heroku labs:enable runtime-dyno-metadata -a api-staging",
	}
	var commands []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "#") {
			commands = append(commands, line)
		}
	}
	require.Len(t, commands, 6)
	require.Equal(t, want, commands[:5])
	require.True(t, strings.HasSuffix(commands[5], "-a api-staging"))
	require.NotContains(t, out.String(), "glc_never-printed")
}

func TestSetupPrintsKnownNonSecretValues(t *testing.T) {
	var out, errOut bytes.Buffer
	code := cmdSetup(context.Background(), []string{"--app", "shop"}, envOf(fullCredentials), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), "ENVIRONMENT=production ")
	require.Contains(t, out.String(), "GRAFANA_CLOUD_PROMETHEUS_USER=123456 ")
	require.Contains(t, out.String(), "GRAFANA_CLOUD_LOKI_URL=https://logs-prod-012.grafana.net ")
	require.NotContains(t, out.String(), "glc_secret")
}

func TestSetupApply(t *testing.T) {
	path, record := fakeHeroku(t, "")
	env := map[string]string{"PATH": path}
	for k, v := range fullCredentials {
		env[k] = v
	}
	var out, errOut bytes.Buffer
	code := cmdSetup(context.Background(), []string{"--app", "shop", "--app", "api", "--environment", "staging", "--apply", "--buildpack", "https://example.com/bp.tgz"},
		envOf(env), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())

	calls, err := os.ReadFile(record)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	require.Equal(t, []string{
		"buildpacks:add --index 1 https://example.com/bp.tgz -a shop",
		"labs:enable runtime-dyno-metadata -a shop",
		"config:set ENVIRONMENT=staging GRAFANA_CLOUD_PROMETHEUS_URL=https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push " +
			"GRAFANA_CLOUD_PROMETHEUS_USER=123456 GRAFANA_CLOUD_PROMETHEUS_PASSWORD=glc_secret-metrics-token " +
			"GRAFANA_CLOUD_LOKI_URL=https://logs-prod-012.grafana.net GRAFANA_CLOUD_LOKI_USER=654321 " +
			"GRAFANA_CLOUD_LOKI_PASSWORD=glc_secret-logs-token -a shop",
		"buildpacks:add --index 1 https://example.com/bp.tgz -a api",
		"labs:enable runtime-dyno-metadata -a api",
	}, lines[:5])
	require.True(t, strings.HasSuffix(lines[5], "-a api"))
	require.Contains(t, out.String(), "$ heroku config:set ENVIRONMENT=staging")
	require.Contains(t, out.String(), "GRAFANA_CLOUD_LOKI_PASSWORD=****")
	require.NotContains(t, out.String()+errOut.String(), "glc_secret")
}

func TestSetupApplyErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		herokuOK  bool
		failOn    string
		code      int
		errSubstr string
		calls     int
	}{
		{"no app", []string{"--apply"}, fullCredentials, true, "", 2, "--app NAME is required", 0},
		{"bad app name", []string{"--app", "Shop_1"}, nil, true, "", 2, "is not a Heroku app name", 0},
		{"stray argument", []string{"--app", "shop", "now"}, nil, true, "", 2, `unexpected argument "now"`, 0},
		{"unknown flag", []string{"--ap", "shop"}, nil, true, "", 2, "flag provided but not defined", 0},
		{"no credentials", []string{"--app", "shop", "--apply"}, map[string]string{}, true, "", 2, "found no GRAFANA_CLOUD_* variables", 0},
		{"partial group", []string{"--app", "shop", "--apply"}, map[string]string{"GRAFANA_CLOUD_LOKI_URL": "https://l.example"}, true, "", 2,
			"GRAFANA_CLOUD_LOKI_USER, GRAFANA_CLOUD_LOKI_PASSWORD are not set", 0},
		{"no heroku cli", []string{"--app", "shop", "--apply"}, fullCredentials, false, "", 1, "needs the heroku CLI on the PATH", 0},
		{"heroku fails", []string{"--app", "shop", "--apply"}, fullCredentials, true, "labs:enable", 1, "labs:enable: exit status 1; 2 of 3 commands not run", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, record := fakeHeroku(t, tc.failOn)
			env := map[string]string{"PATH": t.TempDir()}
			if tc.herokuOK {
				env["PATH"] = path
			}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			code := cmdSetup(context.Background(), tc.args, envOf(env), &out, &errOut)
			require.Equal(t, tc.code, code, errOut.String())
			require.Contains(t, errOut.String(), tc.errSubstr)
			calls, _ := os.ReadFile(record)
			require.Equal(t, tc.calls, strings.Count(string(calls), "\n"))
			require.NotContains(t, out.String()+errOut.String(), "glc_secret")
		})
	}
}

func TestSetupApplySkipsAbsentForwarder(t *testing.T) {
	path, record := fakeHeroku(t, "")
	env := map[string]string{"PATH": path}
	for k, v := range fullCredentials {
		if strings.Contains(k, "PROMETHEUS") {
			env[k] = v
		}
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 0, cmdSetup(context.Background(), []string{"--app", "shop", "--apply"}, envOf(env), &out, &errOut), errOut.String())
	require.Contains(t, errOut.String(), "the logs forwarder in the environment: leaving it off")
	calls, err := os.ReadFile(record)
	require.NoError(t, err)
	require.NotContains(t, string(calls), "LOKI")
}

func TestDefaultBuildpackPinsReleases(t *testing.T) {
	require.Equal(t, setupBuildpackURL+"#v1.2.3", defaultBuildpack("1.2.3"))
	require.Equal(t, setupBuildpackURL, defaultBuildpack("dev"))
	require.Equal(t, setupBuildpackURL, defaultBuildpack("0.1.0-dev+abc"))
}

func TestShellQuote(t *testing.T) {
	require.Equal(t, "abc-1.2", shellQuote("abc-1.2"))
	require.Equal(t, "''", shellQuote(""))
	require.Equal(t, `'it'\''s <x>'`, shellQuote("it's <x>"))
}
