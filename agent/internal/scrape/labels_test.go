package scrape

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

func regexpMust(t testing.TB, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	require.NoError(t, err)
	return re
}

func pairs(kv ...string) []*dto.LabelPair {
	var out []*dto.LabelPair
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &dto.LabelPair{Name: &kv[i], Value: &kv[i+1]})
	}
	return out
}

func TestLabelHygiene(t *testing.T) {
	constant := map[string]string{"app": "demo", "environment": "production", "platform": "heroku", "dyno_type": "web", "team": "", "bad-name": "x"}
	for _, tc := range []struct {
		name  string
		pairs []*dto.LabelPair
		want  string
		fixes [4]int
	}{
		{
			name:  "target and constant labels added",
			pairs: pairs("method", "GET"),
			want:  `m{app="demo",bad_name="x",dyno_type="web",environment="production",instance="web.1",job="app",method="GET",platform="heroku"}`,
		},
		{
			name:  "conflicts kept as exported_",
			pairs: pairs("job", "worker", "instance", "10.0.0.1:80", "app", "other", "bad_name", "y"),
			want: `m{app="demo",bad_name="x",dyno_type="web",environment="production",exported_app="other",exported_bad_name="y",` +
				`exported_instance="10.0.0.1:80",exported_job="worker",instance="web.1",job="app",platform="heroku"}`,
		},
		{
			name:  "empty values dropped, names sanitised",
			pairs: pairs("empty", "", "status-code", "200", "0day", "x"),
			want:  `m{_0day="x",app="demo",bad_name="x",dyno_type="web",environment="production",instance="web.1",job="app",platform="heroku",status_code="200"}`,
			fixes: [4]int{iInvalidName: 2},
		},
		{
			name:  "values capped and repaired",
			pairs: pairs("long", strings.Repeat("v", 3000), "utf", "a\xffb"),
			want: `m{app="demo",bad_name="x",dyno_type="web",environment="production",instance="web.1",job="app",long="` +
				strings.Repeat("v", series.MaxLabelValueBytes) + `",platform="heroku",utf="a` + "\uFFFD" + `b"}`,
			fixes: [4]int{iValueLength: 1, iInvalidUTF8: 1},
		},
		{
			name:  "a label twice: the first wins",
			pairs: pairs("a", "1", "a", "2"),
			want:  `m{a="1",app="demo",bad_name="x",dyno_type="web",environment="production",instance="web.1",job="app",platform="heroku"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := newLabeler("app", "web.1", constant, nil, nil)
			got := lb.build("m", tc.pairs, "", "")
			require.Equal(t, tc.want, got.String())
			require.Equal(t, tc.fixes, lb.takeFixes())
			require.IsIncreasing(t, names(got))
		})
	}
}

func names(ls series.Labels) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

// Over 30 labels: the page labels with the greatest names go, the target
// labels and __name__ stay, and every dropped label is counted.
func TestLabelCap(t *testing.T) {
	lb := newLabeler("app", "web.1", testLabels, nil, nil) // 6 target labels
	var kv []string
	for i := 0; i < 40; i++ {
		kv = append(kv, fmt.Sprintf("l%02d", i), "v")
	}
	got := lb.build("m", pairs(kv...), "", "")
	require.Len(t, got, series.MaxLabelsPerSeries)
	// __name__ + 6 target labels + 23 page labels: l00..l22.
	require.Equal(t, "v", got.Get("l22"))
	require.Equal(t, "", got.Get("l23"))
	for _, n := range []string{"app", "dyno_type", "environment", "instance", "job", "platform", series.MetricName} {
		require.NotEmpty(t, got.Get(n), n)
	}
	require.Equal(t, [4]int{iLabelLimit: 17}, lb.takeFixes())
	again := lb.build("m", pairs(kv...), "", "")
	require.Equal(t, got.String(), again.String(), "deterministic")
}

func TestKeepDrop(t *testing.T) {
	lb := newLabeler("app", "web.1", nil, regexpMust(t, "^(http_.*|up)$"), regexpMust(t, "_bucket$"))
	fn := lb.names("http_request_duration_seconds")
	require.Equal(t, "http_request_duration_seconds", fn.plain)
	require.Equal(t, "", fn.bucket)
	require.Equal(t, "http_request_duration_seconds_sum", fn.sum)
	require.Equal(t, "", lb.names("go_goroutines").plain)
	require.Equal(t, "my_metric", newLabeler("a", "i", nil, nil, nil).names("my.metric").plain)
}
