package dyno

import (
	"errors"
	"testing"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
	"github.com/stretchr/testify/require"
)

func envFunc(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestIdentify(t *testing.T) {
	host := func() (string, error) { return "laptop", nil }
	tests := []struct {
		name     string
		env      map[string]string
		instance string // config DYNOSCOPE_INSTANCE
		labels   map[string]string
		platform string // config DYNOSCOPE_PLATFORM
		want     Identity
	}{
		{"web dyno", map[string]string{"DYNO": "web.1"}, "dyno", nil, "",
			Identity{"shop", "production", "heroku", "web.1", "web"}},
		{"worker dyno", map[string]string{"DYNO": "worker.3"}, "dyno", nil, "",
			Identity{"shop", "production", "heroku", "worker.3", "worker"}},
		{"one-off run", map[string]string{"DYNO": "run.4711"}, "dyno", nil, "",
			Identity{"shop", "production", "heroku", "run", "run"}},
		{"scheduler", map[string]string{"DYNO": "scheduler.1234"}, "dyno_id", nil, "",
			Identity{"shop", "production", "heroku", "scheduler", "scheduler"}},
		{"release", map[string]string{"DYNO": "release.99"}, "dyno", nil, "",
			Identity{"shop", "production", "heroku", "release", "release"}},
		{"preboot dyno_id", map[string]string{"DYNO": "web.1", "HEROKU_DYNO_ID": "1vac4117-c29f-4312-521e-ba4d8638c1ac"}, "dyno_id", nil, "",
			Identity{"shop", "production", "heroku", "1vac4117-c29f-4312-521e-ba4d8638c1ac", "web"}},
		{"dyno_id missing falls back to name", map[string]string{"DYNO": "web.2"}, "dyno_id", nil, "",
			Identity{"shop", "production", "heroku", "web.2", "web"}},
		{"labels set dyno_type", map[string]string{"DYNO": "web.1"}, "dyno", map[string]string{"dyno_type": "api"}, "",
			Identity{"shop", "production", "heroku", "web.1", "api"}},
		{"off heroku", nil, "dyno", nil, "",
			Identity{"shop", "production", "local", "laptop", "web"}},
		{"off heroku with dyno_type", nil, "dyno", map[string]string{"dyno_type": "worker"}, "docker",
			Identity{"shop", "production", "docker", "laptop", "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{App: "shop", Environment: "production", Instance: tt.instance, Labels: tt.labels, Platform: tt.platform}
			got := identify(cfg, envFunc(tt.env), "testdata/root-local", host)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestIdentifyNoHostname(t *testing.T) {
	cfg := &config.Config{App: "a", Environment: "development", Instance: "dyno"}
	got := identify(cfg, envFunc(nil), "testdata/root-local", func() (string, error) { return "", errors.New("no") })
	require.Equal(t, "unknown", got.Instance)
}

func TestLabels(t *testing.T) {
	id := Identity{"shop", "staging", "heroku", "web.1", "web"}
	require.Equal(t, map[string]string{
		"app": "shop", "environment": "staging", "platform": "heroku", "instance": "web.1", "dyno_type": "web",
	}, id.Labels())
}

func TestDetectPlatform(t *testing.T) {
	tests := []struct {
		root string
		env  map[string]string
		want string
	}{
		{"testdata/root-local", map[string]string{"DYNO": "web.1"}, "heroku"},
		{"testdata/root-docker", nil, "docker"},
		{"testdata/root-podman", nil, "docker"},
		{"testdata/root-k8s", nil, "docker"},
		{"testdata/root-local", nil, "local"},
		{"testdata/does-not-exist", nil, "local"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			require.Equal(t, tt.want, DetectPlatform(envFunc(tt.env), tt.root))
		})
	}
}
