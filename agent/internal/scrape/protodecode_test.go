package scrape

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// viaDTO reads a protobuf page the reference way: protodelim into dto
// structs, then into a page.
func viaDTO(t testing.TB, body []byte) *page {
	t.Helper()
	var p parser
	mfs, err := p.parse(body, ctProto)
	require.NoError(t, err)
	pg := &page{}
	pg.addFamilies(mfs)
	return pg
}

// tree renders a page one metric a line (floats by their bits, so NaN
// equals NaN), for comparing pages whose arrays were filled in different
// orders.
func tree(pg *page) []string {
	var out []string
	for _, f := range pg.fams {
		out = append(out, fmt.Sprintf("family %q %v", f.name, f.typ))
		for i := range pg.metrics[f.first:f.end] {
			m := &pg.metrics[int(f.first)+i]
			line := fmt.Sprintf("  %v value=%x count=%x", pg.metricLabels(m), math.Float64bits(m.value), math.Float64bits(m.count))
			for _, pt := range pg.points[m.p0:m.p1] {
				line += fmt.Sprintf(" %x:%x", math.Float64bits(pt.key), math.Float64bits(pt.value))
			}
			out = append(out, line)
		}
	}
	return out
}

func delimited(t testing.TB, mfs ...*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, mf := range mfs {
		_, err := protodelim.MarshalTo(&b, mf)
		require.NoError(t, err)
	}
	return b.Bytes()
}

// The hand decoder reads every page exactly as protobuf-go's dto structs do.
func TestDecodeProtoSameAsDTO(t *testing.T) {
	f := proto.Float64
	u := proto.Uint64
	s := proto.String
	typ := func(t dto.MetricType) *dto.MetricType { return &t }
	lp := func(kv ...string) []*dto.LabelPair {
		var out []*dto.LabelPair
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &dto.LabelPair{Name: s(kv[i]), Value: s(kv[i+1])})
		}
		return out
	}
	features := delimited(t,
		&dto.MetricFamily{Name: s("c_total"), Help: s("help"), Type: typ(dto.MetricType_COUNTER), Metric: []*dto.Metric{
			{Label: lp("a", "1", "b", ""), Counter: &dto.Counter{Value: f(1.5), Exemplar: &dto.Exemplar{Label: lp("trace_id", "x"), Value: f(1)}}, TimestampMs: proto.Int64(5)},
			{Label: lp("a", "2"), Counter: &dto.Counter{}},
		}},
		&dto.MetricFamily{Name: s("g"), Type: typ(dto.MetricType_GAUGE), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: f(-2)}}}},
		&dto.MetricFamily{Name: s("u"), Type: typ(dto.MetricType_UNTYPED), Metric: []*dto.Metric{{Untyped: &dto.Untyped{Value: f(math.Inf(-1))}}}},
		&dto.MetricFamily{Name: s("no_type"), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: f(3)}, Gauge: &dto.Gauge{Value: f(4)}}}},
		&dto.MetricFamily{Name: s("s"), Type: typ(dto.MetricType_SUMMARY), Metric: []*dto.Metric{{Label: lp("q", "x"), Summary: &dto.Summary{
			SampleCount: u(7), SampleSum: f(8.5), Quantile: []*dto.Quantile{{Quantile: f(0.5), Value: f(1)}, {Quantile: f(0.99), Value: f(2)}},
		}}}},
		&dto.MetricFamily{Name: s("h"), Type: typ(dto.MetricType_HISTOGRAM), Metric: []*dto.Metric{
			{Histogram: &dto.Histogram{SampleCount: u(3), SampleSum: f(4.5), Bucket: []*dto.Bucket{{UpperBound: f(0.25), CumulativeCount: u(1)}, {UpperBound: f(1), CumulativeCount: u(2)}}}},
			{Label: lp("float", "yes"), Histogram: &dto.Histogram{SampleCountFloat: f(3.5), SampleSum: f(1), Schema: proto.Int32(3),
				PositiveSpan: []*dto.BucketSpan{{Offset: proto.Int32(1), Length: proto.Uint32(2)}}, PositiveDelta: []int64{1, -1},
				Bucket: []*dto.Bucket{{UpperBound: f(math.Inf(1)), CumulativeCountFloat: f(3.5)}}}},
		}},
		&dto.MetricFamily{Name: s("gh"), Type: typ(dto.MetricType_GAUGE_HISTOGRAM), Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: u(1), Bucket: []*dto.Bucket{{UpperBound: f(1), CumulativeCount: u(1)}}}}}},
		&dto.MetricFamily{Name: s("a_first"), Type: typ(dto.MetricType_GAUGE)},
	)
	// The type after the metrics, and a metric's value message twice (merged).
	var odd []byte
	{
		gauge := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
		gauge = protowire.AppendFixed64(gauge, math.Float64bits(9))
		var metric []byte
		metric = protowire.AppendTag(metric, 2, protowire.BytesType)
		metric = protowire.AppendBytes(metric, gauge)
		metric = protowire.AppendTag(metric, 2, protowire.BytesType)
		metric = protowire.AppendBytes(metric, protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), math.Float64bits(10)))
		var fam []byte
		fam = protowire.AppendTag(fam, 1, protowire.BytesType)
		fam = protowire.AppendString(fam, "late_type")
		fam = protowire.AppendTag(fam, 4, protowire.BytesType)
		fam = protowire.AppendBytes(fam, metric)
		fam = protowire.AppendTag(fam, 3, protowire.VarintType)
		fam = protowire.AppendVarint(fam, uint64(dto.MetricType_GAUGE))
		odd = protowire.AppendBytes(nil, fam)
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"prometheus fixture", readFixture(t, "prometheus-2.42.0.pb")},
		{"features", features},
		{"field order and merges", odd},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := viaDTO(t, tc.body)
			got := &page{}
			require.NoError(t, decodeProto(got, tc.body))
			got.sortFamilies()
			require.Equal(t, tree(want), tree(got))
		})
	}
}

func TestDecodeProtoInvalid(t *testing.T) {
	s := proto.String
	valid := delimited(t, &dto.MetricFamily{Name: s("g"), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: s("a"), Value: s("b")}}}}})
	for _, tc := range []struct {
		name, err string
		body      []byte
	}{
		{"truncated", "invalid exposition: protobuf: message of 13 bytes: unexpected EOF", valid[:len(valid)-1]},
		{"bad length", "invalid exposition: protobuf: message length: unexpected EOF", []byte{0x80}},
		{"bad field", "invalid exposition: protobuf: unexpected EOF", []byte{2, 0x0a, 0x05}},
		{"empty name", `invalid exposition: invalid metric name ""`, []byte{0}},
		{"invalid utf8 value", `invalid exposition: invalid label value "\xff"`,
			delimited(t, &dto.MetricFamily{Name: s("g"), Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: s("a"), Value: s("\xff")}}}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p parser
			pg := &page{}
			err := p.parsePage(tc.body, ctProto, pg)
			require.ErrorIs(t, err, ErrParse)
			require.EqualError(t, err, tc.err)
			require.Empty(t, pg.fams)
			// protobuf-go rejects it too.
			_, err = p.parse(tc.body, ctProto)
			require.Error(t, err)
		})
	}
}
