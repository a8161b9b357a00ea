package scrape

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	ctText        = "text/plain; version=0.0.4; charset=utf-8"
	ctOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
	ctProto       = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

var testLabels = map[string]string{"app": "demo", "environment": "production", "platform": "heroku", "dyno_type": "web"}

// bodySource serves a fixed page through the real parser.
type bodySource struct {
	body        []byte
	contentType string
	p           parser
}

func (s *bodySource) families(context.Context) ([]*dto.MetricFamily, error) {
	return s.p.parse(s.body, s.contentType)
}

func testLoop(t testing.TB, src source) *loop {
	t.Helper()
	lb := newLabeler("app", "web.1", testLabels, nil, nil)
	l := newLoop("app", "http://127.0.0.1/metrics", "k", src, lb, time.Minute)
	l.now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	l.timeout = time.Second
	return l
}

// pageSamples parses and labels a page as a scrape does.
func pageSamples(t testing.TB, body []byte, contentType string) []series.Sample {
	t.Helper()
	res, err := testLoop(t, &bodySource{body: body, contentType: contentType}).scrape(context.Background())
	require.NoError(t, err)
	return res.Samples
}

// render prints samples one a line, sorted, the synthetic duration zeroed.
func render(samples []series.Sample) string {
	lines := make([]string, 0, len(samples))
	for _, s := range samples {
		v := s.V
		if s.Labels.Get(series.MetricName) == "scrape_duration_seconds" {
			v = 0
		}
		val := strconv.FormatFloat(v, 'g', -1, 64)
		if s.IsStale() {
			val = "stale"
		}
		lines = append(lines, s.Labels.String()+" "+val+" "+strconv.FormatInt(s.T, 10))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// seriesOf returns the sorted label sets of samples.
func seriesOf(samples []series.Sample) []string {
	out := make([]string, 0, len(samples))
	for _, s := range samples {
		out = append(out, s.Labels.String())
	}
	slices.Sort(out)
	return out
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestParseLabelGolden(t *testing.T) {
	for _, tc := range []struct{ fixture, contentType string }{
		{"prometheus-2.42.0.txt", ctText},
		{"node_exporter-1.5.0.txt", ctText},
		{"node-prom-client-express.txt", ctText},
		{"openmetrics-features.openmetrics.txt", ctOpenMetrics},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := render(pageSamples(t, readFixture(t, tc.fixture), tc.contentType))
			golden := filepath.Join("testdata", strings.TrimSuffix(tc.fixture, ".txt")+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got)
		})
	}
}

// Every format of a page yields the same series.
func TestFormatsSameSeries(t *testing.T) {
	for _, tc := range []struct{ name, text, other, contentType string }{
		{"prometheus openmetrics", "prometheus-2.42.0.txt", "prometheus-2.42.0.openmetrics.txt", ctOpenMetrics},
		{"prometheus protobuf", "prometheus-2.42.0.txt", "prometheus-2.42.0.pb", ctProto},
		{"node_exporter openmetrics", "node_exporter-1.5.0.txt", "node_exporter-1.5.0.openmetrics.txt", ctOpenMetrics},
		{"prom-client openmetrics", "node-prom-client-express.txt", "node-prom-client-express.openmetrics.txt", ctOpenMetrics},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := seriesOf(pageSamples(t, readFixture(t, tc.text), ctText))
			got := seriesOf(pageSamples(t, readFixture(t, tc.other), tc.contentType))
			require.Greater(t, len(want), 90)
			require.Equal(t, want, got)
		})
	}
}

func TestNormalizeOpenMetrics(t *testing.T) {
	for _, tc := range []struct{ name, in, want, err string }{
		{
			name: "counter with created, unit, help and eof",
			in: "# HELP foo_seconds Help with \\\"quotes\\\".\n# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\n" +
				"foo_seconds_total{a=\"b\"} 1.5 1700000000.123\nfoo_seconds_created{a=\"b\"} 1.7e9\n# EOF\nignored 1\n",
			want: "foo_seconds_total{a=\"b\"} 1.5\n",
		},
		{
			name: "histogram with exemplars",
			in: "# TYPE h histogram\nh_bucket{le=\"1.0\"} 2 # {trace_id=\"abc\"} 0.5 1700000000\n" +
				"h_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\nh_created 1.7e9\n# EOF\n",
			want: "# TYPE h histogram\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n",
		},
		{
			name: "quotes and braces in values",
			in:   "g{path=\"/a} # {b\",q=\"x\\\"y\"} 7 # {x=\"y\"} 1\n# EOF\n",
			want: "g{path=\"/a} # {b\",q=\"x\\\"y\"} 7\n",
		},
		{
			name: "info stateset unknown gaugehistogram",
			in: "# TYPE build info\nbuild_info{version=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\n" +
				"# TYPE u unknown\nu 3\n# TYPE gh gaugehistogram\ngh_bucket{le=\"+Inf\"} 1\ngh_gcount 1\ngh_gsum 2\ngh_created 5\n# EOF\n",
			want: "build_info{version=\"1\"} 1\nst{st=\"a\"} 1\nu 3\ngh_bucket{le=\"+Inf\"} 1\ngh_gcount 1\ngh_gsum 2\n",
		},
		{
			name: "a gauge named _created stays",
			in:   "# TYPE job_created gauge\njob_created 5\n# EOF\n",
			want: "# TYPE job_created gauge\njob_created 5\n",
		},
		{name: "unterminated labels", in: "g{a=\"b 1\n", err: "line 1: unterminated label set"},
		{name: "no value", in: "g{a=\"b\"}\n", err: "line 1: no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalizeOpenMetrics(nil, []byte(tc.in))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		want format
	}{
		{ctText, formatText},
		{"", formatText},
		{"text/html", formatText},
		{ctOpenMetrics, formatOpenMetrics},
		{"application/openmetrics-text; version=0.0.1; charset=utf-8", formatOpenMetrics},
		{ctProto, formatProto},
		{"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text", formatText},
	} {
		require.Equal(t, tc.want, formatOf(tc.ct), tc.ct)
	}
}

func TestExpandHistogramFromProto(t *testing.T) {
	// A protobuf histogram has no +Inf bucket: it comes from the count.
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	s := func(v string) *string { return &v }
	typ := dto.MetricType_HISTOGRAM
	mf := &dto.MetricFamily{Name: s("h"), Type: &typ, Metric: []*dto.Metric{{
		Histogram: &dto.Histogram{SampleCount: u(3), SampleSum: f(4.5), Bucket: []*dto.Bucket{
			{UpperBound: f(0.25), CumulativeCount: u(1)}, {UpperBound: f(1), CumulativeCount: u(2)},
		}},
	}}}
	l := testLoop(t, nil)
	got, scraped := l.expand(nil, 0, mf, 1)
	require.Equal(t, 5, scraped)
	lines := strings.Split(strings.TrimSpace(render(got)), "\n")
	require.Equal(t, []string{
		`h_bucket{app="demo",dyno_type="web",environment="production",instance="web.1",job="app",le="+Inf",platform="heroku"} 3 1`,
		`h_bucket{app="demo",dyno_type="web",environment="production",instance="web.1",job="app",le="0.25",platform="heroku"} 1 1`,
		`h_bucket{app="demo",dyno_type="web",environment="production",instance="web.1",job="app",le="1",platform="heroku"} 2 1`,
		`h_count{app="demo",dyno_type="web",environment="production",instance="web.1",job="app",platform="heroku"} 3 1`,
		`h_sum{app="demo",dyno_type="web",environment="production",instance="web.1",job="app",platform="heroku"} 4.5 1`,
	}, lines)
	require.False(t, math.IsNaN(got[0].V))
}

// One testdata/invalid-* page per rejected input, with the exact error.
func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct{ file, contentType, err string }{
		{"invalid-malformed.txt", ctText, `invalid exposition: text format parsing error in line 1: unexpected end of label value "c"`},
		{"invalid-utf8.txt", ctText, `invalid exposition: text format parsing error in line 1: invalid label value "\xff\xfe"`},
		{"invalid-second-type.txt", ctText, `invalid exposition: text format parsing error in line 3: second TYPE line for metric name "a", or TYPE reported after samples`},
		{"invalid-unterminated.openmetrics.txt", ctOpenMetrics, `invalid exposition: line 2: unterminated label set`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var p parser
			_, err := p.parse(readFixture(t, tc.file), tc.contentType)
			require.ErrorIs(t, err, ErrParse)
			require.EqualError(t, err, tc.err)
		})
	}
}
