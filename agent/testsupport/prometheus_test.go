package testsupport

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithDefaultsLetsExtraFlagsReplaceDefaults(t *testing.T) {
	tests := []struct {
		name            string
		defaults, extra []string
		want            []string
	}{
		{"no extra", []string{"--a=1", "--b"}, nil, []string{"--a=1", "--b"}},
		{"added", []string{"--a=1"}, []string{"--c=3"}, []string{"--a=1", "--c=3"}},
		{"replaced", []string{"--a=1", "--config.file=x"}, []string{"--config.file=y"}, []string{"--a=1", "--config.file=y"}},
		{"boolean replaced", []string{"--b", "--a=1"}, []string{"--b"}, []string{"--a=1", "--b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, withDefaults(tc.defaults, tc.extra))
		})
	}
}

func TestStartPrometheusIsReadyAndQueryable(t *testing.T) {
	base := StartPrometheus(t)
	got := QueryPrometheus(t, base, "vector(42)")
	require.Len(t, got, 1)
	require.EqualValues(t, 42, got[0].Value)
}
