package remotewrite

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// batchForEncoding interleaves three series, one out of time order, with the
// values proto3 would omit (0, timestamp 0), a staleness marker and a label
// with an empty value (absent, so not encoded).
func batchForEncoding() []series.Sample {
	return []series.Sample{
		sample("http_requests_total", 2000, 5, "job", "app", "path", "/a"),
		sample("up", 1000, 1, "job", "app"),
		sample("http_requests_total", 1000, 3, "job", "app", "path", "/a"),
		sample("http_requests_total", 1000, 0, "job", "app", "path", `/"quoted"\`),
		sample("up", 2000, series.Stale(), "job", "app"),
		sample("zero_time", 0, -1.5, "empty", "", "job", "app"),
	}
}

func TestEncodeDecodesWithPrompb(t *testing.T) {
	enc := newEncoder()
	req := decode(t, enc.encodeCompressed(batchForEncoding()))

	lbl := func(kv ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(kv); i += 2 {
			out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	want := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("__name__", "http_requests_total", "job", "app", "path", "/a"),
			Samples: []prompb.Sample{{Value: 3, Timestamp: 1000}, {Value: 5, Timestamp: 2000}}}, // time order within the series
		{Labels: lbl("__name__", "up", "job", "app"),
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: series.Stale(), Timestamp: 2000}}},
		{Labels: lbl("__name__", "http_requests_total", "job", "app", "path", `/"quoted"\`),
			Samples: []prompb.Sample{{Value: 0, Timestamp: 1000}}},
		{Labels: lbl("__name__", "zero_time", "job", "app"),
			Samples: []prompb.Sample{{Value: -1.5, Timestamp: 0}}},
	}}
	require.Len(t, req.Timeseries, len(want.Timeseries))
	for i := range want.Timeseries {
		require.Equal(t, want.Timeseries[i].Labels, req.Timeseries[i].Labels, "series %d", i)
		require.Len(t, req.Timeseries[i].Samples, len(want.Timeseries[i].Samples))
		for j, s := range want.Timeseries[i].Samples {
			g := req.Timeseries[i].Samples[j]
			require.Equal(t, s.Timestamp, g.Timestamp)
			require.Equal(t, math.Float64bits(s.Value), math.Float64bits(g.Value), "series %d sample %d (stale NaN keeps its bits)", i, j)
		}
	}

	// Byte for byte what gogo's generated Marshal produces for the same request.
	wantBytes, err := want.Marshal()
	require.NoError(t, err)
	require.Equal(t, wantBytes, enc.encode(batchForEncoding()))
}

func TestEncodeReusesBuffersAcrossBatches(t *testing.T) {
	enc := newEncoder()
	first := enc.encodeCompressed(batchForEncoding())
	second := enc.encodeCompressed(batchForEncoding()[:2])
	// the first batch is owned by its caller: a later batch must not overwrite it
	require.Len(t, decode(t, first).Timeseries, 4)
	require.Len(t, decode(t, second).Timeseries, 2)
}

func TestDryRunTextGolden(t *testing.T) {
	got := newEncoder().encodeText(batchForEncoding())
	golden := filepath.Join("testdata", "dryrun.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// nodeExporterSamples parses the node_exporter fixture (~500 series with
// real label sets) and adds the identity labels every forwarded sample has.
func nodeExporterSamples(tb testing.TB) []series.Sample {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "node_exporter-1.5.0.txt"))
	require.NoError(tb, err)
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bufio.NewReader(f))
	require.NoError(tb, err)
	identity := []series.Label{{Name: "app", Value: "shop-production"}, {Name: "dyno_type", Value: "web"},
		{Name: "environment", Value: "production"}, {Name: "instance", Value: "web.1"}, {Name: "job", Value: "app"},
		{Name: "platform", Value: "heroku"}}
	identityNames := map[string]bool{}
	for _, l := range identity {
		identityNames[l.Name] = true
	}
	var out []series.Sample
	add := func(name string, m []model.LabelPair, extra *series.Label, v float64) {
		ls := series.Labels{{Name: series.MetricName, Value: name}}
		ls = append(ls, identity...)
		for _, l := range m {
			name := string(l.Name)
			if identityNames[name] {
				name = "exported_" + name // as the scrape stage does
			}
			ls = append(ls, series.Label{Name: name, Value: string(l.Value)})
		}
		if extra != nil {
			ls = append(ls, *extra)
		}
		ls.Sort()
		out = append(out, series.Sample{Labels: ls, T: 1764763200000, V: v})
	}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			var pairs []model.LabelPair
			for _, l := range m.Label {
				pairs = append(pairs, model.LabelPair{Name: model.LabelName(l.GetName()), Value: model.LabelValue(l.GetValue())})
			}
			switch {
			case m.Counter != nil:
				add(name, pairs, nil, m.Counter.GetValue())
			case m.Gauge != nil:
				add(name, pairs, nil, m.Gauge.GetValue())
			case m.Untyped != nil:
				add(name, pairs, nil, m.Untyped.GetValue())
			case m.Summary != nil:
				for _, q := range m.Summary.Quantile {
					add(name, pairs, &series.Label{Name: "quantile", Value: model.FloatString(q.GetQuantile()).String()}, q.GetValue())
				}
				add(name+"_sum", pairs, nil, m.Summary.GetSampleSum())
				add(name+"_count", pairs, nil, float64(m.Summary.GetSampleCount()))
			case m.Histogram != nil:
				for _, b := range m.Histogram.Bucket {
					add(name+"_bucket", pairs, &series.Label{Name: "le", Value: model.FloatString(b.GetUpperBound()).String()}, float64(b.GetCumulativeCount()))
				}
				add(name+"_sum", pairs, nil, m.Histogram.GetSampleSum())
				add(name+"_count", pairs, nil, float64(m.Histogram.GetSampleCount()))
			}
		}
	}
	return out
}

func TestNodeExporterBatchRoundTrips(t *testing.T) {
	in := nodeExporterSamples(t)
	require.Greater(t, len(in), 400)
	req := decode(t, newEncoder().encodeCompressed(in))
	require.Len(t, flatten([]*prompb.WriteRequest{req}), len(in))
}

func benchmarkEncode(b *testing.B, samples []series.Sample) {
	enc := newEncoder()
	enc.encodeCompressed(samples) // warm the reused buffers
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out = enc.encodeCompressed(samples)
	}
	b.ReportMetric(float64(len(out))/float64(len(samples)), "wire-B/sample")
	b.ReportMetric(float64(len(enc.raw))/float64(len(samples)), "raw-B/sample")
}

// BenchmarkEncodeNodeExporter: one scrape of node_exporter (~500 samples).
func BenchmarkEncodeNodeExporter(b *testing.B) { benchmarkEncode(b, nodeExporterSamples(b)) }

// BenchmarkEncode10k: 10,000 samples, node_exporter's series with 20 values
// each (a deep batch, many samples per series).
func BenchmarkEncode10k(b *testing.B) {
	base := nodeExporterSamples(b)
	var in []series.Sample
	for i := 0; len(in) < 10000; i++ {
		for _, s := range base {
			s.T += int64(i) * 1000
			in = append(in, s)
		}
	}
	benchmarkEncode(b, in[:10000])
}

// BenchmarkEncode10kDistinct: 10,000 samples of 10,000 distinct series.
func BenchmarkEncode10kDistinct(b *testing.B) {
	base := nodeExporterSamples(b)
	var in []series.Sample
	for i := 0; len(in) < 10000; i++ {
		for _, s := range base {
			ls := append(series.Labels{}, s.Labels...)
			ls = append(ls, series.Label{Name: "shard", Value: strings.Repeat("x", i%7) + string(rune('a'+i%26))})
			ls.Sort()
			in = append(in, series.Sample{Labels: ls, T: s.T, V: s.V})
		}
	}
	benchmarkEncode(b, in[:10000])
}

// BenchmarkExpfmtParseNodeExporter is the yardstick: expfmt's bare parse of
// the same page (the combined scrape+encode goal is <= 2x this).
func BenchmarkExpfmtParseNodeExporter(b *testing.B) {
	page, err := os.ReadFile(filepath.Join("testdata", "node_exporter-1.5.0.txt"))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		p := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := p.TextToMetricFamilies(bytes.NewReader(page)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncodeGroupsRandomBatches: whatever the arrival order, a request
// holds each series once, its samples in time order, and every sample.
func TestEncodeGroupsRandomBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	enc := newEncoder()
	for round := range 50 {
		n := 1 + rng.IntN(3000)
		in := make([]series.Sample, n)
		for i := range in {
			in[i] = sample("m", rng.Int64N(1e6), float64(i), "series", strconv.Itoa(rng.IntN(1+round*5)))
		}
		req := decode(t, enc.encodeCompressed(in))
		seen := map[string]bool{}
		var total int
		for _, ts := range req.Timeseries {
			key := ts.Labels[1].Value
			require.False(t, seen[key], "series %s twice in one request", key)
			seen[key] = true
			require.True(t, slices.IsSortedFunc(ts.Samples, func(a, b prompb.Sample) int { return cmpInt64(a.Timestamp, b.Timestamp) }))
			total += len(ts.Samples)
		}
		require.Equal(t, n, total)
		require.Equal(t, flattenSorted(in), flattenSorted(flatten([]*prompb.WriteRequest{req})))
	}
}

// flattenSorted is the multiset of (series, T, V) of a batch, in a fixed order.
func flattenSorted[S series.Sample | got](in []S) []got {
	out := make([]got, 0, len(in))
	for _, x := range in {
		switch v := any(x).(type) {
		case series.Sample:
			out = append(out, got{Series: v.Labels.String(), T: v.T, V: v.V})
		case got:
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b got) int {
		if c := strings.Compare(a.Series, b.Series); c != 0 {
			return c
		}
		if c := cmpInt64(a.T, b.T); c != 0 {
			return c
		}
		return cmp.Compare(a.V, b.V)
	})
	return out
}
