package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// hostilePage is what a careless app may expose: a very long label value,
// a series twice, too many labels, special values. Prometheus's
// remote-write receiver answers 400 to a whole request with one bad series
// in it, so the agent must repair or drop such series, or every good series
// in the same batch is lost.
func hostilePage() string {
	var b strings.Builder
	b.WriteString("# TYPE e2e_hostile gauge\n")
	b.WriteString("e2e_hostile{v=\"ok\"} 1\n")
	b.WriteString("e2e_hostile{v=\"dup\"} 3\n")
	b.WriteString("e2e_hostile{v=\"dup\"} 4\n")
	fmt.Fprintf(&b, "e2e_hostile{v=%q} 5\n", strings.Repeat("x", 10_000))
	b.WriteString("e2e_hostile{v=\"many\"")
	for i := range 40 {
		fmt.Fprintf(&b, ",l%02d=\"%d\"", i, i)
	}
	b.WriteString("} 6\n")
	b.WriteString("# TYPE e2e_special gauge\n")
	b.WriteString("e2e_special{v=\"inf\"} +Inf\ne2e_special{v=\"-inf\"} -Inf\ne2e_special{v=\"nan\"} NaN\n")
	return b.String()
}

// invalidUTF8 is a label value that is not UTF-8.
const invalidUTF8 = "bad\xff\xfeutf8"

// protoPage is a protobuf page with a label value that is not UTF-8
// (proto2 strings are not checked on the wire).
func protoPage(t testing.TB) []byte {
	t.Helper()
	mf := &dto.MetricFamily{
		Name: proto.String("e2e_proto_utf8"),
		Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{{Name: proto.String("v"), Value: proto.String("ok")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}},
			{Label: []*dto.LabelPair{{Name: proto.String("v"), Value: proto.String(invalidUTF8)}}, Gauge: &dto.Gauge{Value: proto.Float64(2)}},
		},
	}
	var b bytes.Buffer
	_, err := protodelim.MarshalTo(&b, mf)
	require.NoError(t, err)
	return b.Bytes()
}

// TestHostilePageDoesNotCostGoodSeries sends hostile pages beside a good
// one through the binary to the real receiver: nothing is rejected, the
// good series arrive, and the repaired series arrive as documented. A page
// with a label value that is not UTF-8 fails as a whole (up=0), as
// Prometheus 2.42's own scrape does ("invalid UTF-8 label value").
func TestHostilePageDoesNotCostGoodSeries(t *testing.T) {
	t.Parallel()
	prom := testsupport.StartPrometheus(t)
	page, pb := hostilePage(), protoPage(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/hostile", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("/utf8-text", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentText)
		_, _ = io.WriteString(w, "# TYPE e2e_text_utf8 gauge\ne2e_text_utf8{v=\"ok\"} 1\ne2e_text_utf8{v=\""+invalidUTF8+"\"} 2\n")
	})
	mux.HandleFunc("/utf8-proto", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentProto)
		_, _ = w.Write(pb)
	})
	hostile := httptest.NewServer(mux)
	t.Cleanup(hostile.Close)
	good := newSeqTarget(t, 0)
	statusAddr := testsupport.FreeAddr(t)
	p := start(t, baseEnv(t).with(
		"GRAFANA_CLOUD_PROMETHEUS_URL="+remoteWriteURL(prom),
		"DYNOSCOPE_SCRAPE_TARGETS="+strings.Join([]string{
			"hostile=" + hostile.URL + "/hostile",
			"utf8_text=" + hostile.URL + "/utf8-text",
			"utf8_proto=" + hostile.URL + "/utf8-proto",
			"good=" + good.url(),
		}, ","),
		"DYNOSCOPE_HEALTH_PATH=",
		"DYNOSCOPE_STATUS_ADDR="+statusAddr,
	), dynoscope(t), "agent")

	waitValue(t, prom, `e2e_scrape_seq{job="good"}`, atLeast(1))
	waitValue(t, prom, `up{job="hostile"}`, equals(1))
	waitValue(t, prom, `e2e_hostile{job="hostile",v="ok"}`, equals(1))
	waitValue(t, prom, `e2e_hostile{job="hostile",v="dup"}`, func(v float64) bool { return v == 3 || v == 4 })
	waitValue(t, prom, `e2e_special{job="hostile",v="inf"}`, func(v float64) bool { return math.IsInf(v, 1) })
	waitValue(t, prom, `e2e_special{job="hostile",v="-inf"}`, func(v float64) bool { return math.IsInf(v, -1) })
	waitValue(t, prom, `e2e_special{job="hostile",v="nan"}`, math.IsNaN)

	// The long value arrives cut to 2048 bytes, the series with 41 labels
	// capped to 30 with the contract labels kept.
	byValue := map[float64]map[string]string{}
	for _, s := range query(t, prom, `e2e_hostile{job="hostile"}`) {
		byValue[s.Value] = s.Metric
	}
	require.Contains(t, byValue, 5.0, "the long value arrived, cut")
	require.LessOrEqual(t, len(byValue[5]["v"]), 2048)
	require.Contains(t, byValue, 6.0, "the series with too many labels arrived, capped")
	require.LessOrEqual(t, len(byValue[6]), 30)
	for _, name := range []string{"app", "environment", "platform", "instance", "dyno_type", "job"} {
		require.NotEmpty(t, byValue[6][name], "label %s kept", name)
	}

	// Not UTF-8: the page fails as a whole, in either format, as in
	// Prometheus; the operator sees why.
	for _, job := range []string{"utf8_text", "utf8_proto"} {
		waitValue(t, prom, sel("up", map[string]string{"job": job}), equals(0))
	}
	require.Empty(t, query(t, prom, `{__name__=~"e2e_(text|proto)_utf8"}`))
	_, st := httpGet(t, "http://"+statusAddr+"/status")
	require.Equal(t, 2, strings.Count(st, `invalid label value \"bad\\xff\\xfeutf8\"`), st)

	rejected, _ := selfMetric(t, statusAddr, `dynoscope_remote_write_samples_dropped_total{reason="rejected"}`)
	require.Zero(t, rejected, "the receiver accepted every batch")
	require.NotContains(t, p.stderr.String(), "batch rejected")
	p.stop(t)
}
