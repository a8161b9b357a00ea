package scrape

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/brainbytesai/dynoscope/agent/internal/remotewrite"
)

// generatedPage is a 10k-series page: counters and gauges with three labels,
// and a histogram with 150 label sets.
func generatedPage() []byte {
	var b strings.Builder
	for f := 0; f < 8; f++ {
		typ := "counter"
		if f >= 5 {
			typ = "gauge"
		}
		fmt.Fprintf(&b, "# HELP family_%d_total A generated family.\n# TYPE family_%d_total %s\n", f, f, typ)
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&b, "family_%d_total{method=\"GET\",path=\"/api/v1/items/%d\",status_code=\"%d\"} %d\n", f, i/10, 200+i%10, i*17)
		}
	}
	b.WriteString("# HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n")
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}
	for i := 0; i < 150; i++ {
		for j, le := range les {
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{method=\"GET\",path=\"/p/%d\",status_code=\"200\",le=\"%s\"} %d\n", i, le, j*10)
		}
		fmt.Fprintf(&b, "http_request_duration_seconds_sum{method=\"GET\",path=\"/p/%d\",status_code=\"200\"} 12.5\n", i)
		fmt.Fprintf(&b, "http_request_duration_seconds_count{method=\"GET\",path=\"/p/%d\",status_code=\"200\"} 100\n", i)
	}
	return []byte(b.String())
}

// demoPage is what the demo app serves with DEMO_SERIES=n (the load of
// scripts/bench-agent.sh): n gauges with two labels.
func demoPage(n int) []byte {
	var b strings.Builder
	b.WriteString("# HELP demo_load_series Synthetic series for load tests (DEMO_SERIES).\n# TYPE demo_load_series gauge\n")
	for i := range n {
		fmt.Fprintf(&b, "demo_load_series{series=\"%d\",shard=\"%d\"} %d\n", i, i%100, i)
	}
	return []byte(b.String())
}

func benchPages(b *testing.B) []struct {
	name string
	body []byte
} {
	return []struct {
		name string
		body []byte
	}{
		{"node_exporter", readFixture(b, "node_exporter-1.5.0.txt")},
		{"generated10k", generatedPage()},
		{"demo10k", demoPage(10000)},
	}
}

// BenchmarkBareParse is the reference: expfmt's text parser alone.
func BenchmarkBareParse(b *testing.B) {
	for _, p := range benchPages(b) {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			for b.Loop() {
				tp := expfmt.NewTextParser(model.UTF8Validation)
				if _, err := tp.TextToMetricFamilies(bytes.NewReader(p.body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseLabel is this package's work on a page already fetched:
// parse, expand, label, hash, budget and staleness, in steady state (the
// same series each scrape, as in production).
func BenchmarkParseLabel(b *testing.B) {
	for _, p := range benchPages(b) {
		b.Run(p.name, func(b *testing.B) {
			l := testLoop(b, &bodySource{body: p.body, contentType: ctText})
			res, err := l.scrape(context.Background())
			require.NoError(b, err)
			b.ReportMetric(float64(res.Series), "series")
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			for b.Loop() {
				if _, err := l.scrape(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScrape adds the HTTP round trip over loopback (gzip off).
func BenchmarkScrape(b *testing.B) {
	for _, p := range benchPages(b) {
		b.Run(p.name, func(b *testing.B) {
			_, u := startTarget(b, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", ctText)
				_, _ = w.Write(p.body)
			})
			env := newTestManager(b, Options{Targets: []Target{{Job: "app", URL: u}}})
			l := env.m.loops[0]
			_, err := l.scrape(context.Background())
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			for b.Loop() {
				if _, err := l.scrape(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenMetricsDecoder measures expfmt's own OpenMetrics decoder,
// which this package does not use (see parser), against BenchmarkParseLabel.
func BenchmarkOpenMetricsDecoder(b *testing.B) {
	body := readFixture(b, "node_exporter-1.5.0.openmetrics.txt")
	b.Run("expfmt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.FmtOpenMetrics_1_0_0)
			mf := &dto.MetricFamily{}
			for {
				if err := dec.Decode(mf); err != nil {
					break
				}
			}
		}
	})
	b.Run("normalised", func(b *testing.B) {
		var p parser
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.parse(body, ctOpenMetrics); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fixedSource returns the same parsed families each time: it isolates the
// labelling work from the parse.
type fixedSource struct{ fams []*dto.MetricFamily }

func (s fixedSource) families(context.Context) ([]*dto.MetricFamily, error) { return s.fams, nil }

// BenchmarkLabelOnly is BenchmarkParseLabel without the parse: expand,
// label, hash, budget, staleness and the synthetic samples.
func BenchmarkLabelOnly(b *testing.B) {
	for _, p := range benchPages(b) {
		b.Run(p.name, func(b *testing.B) {
			var ps parser
			fams, err := ps.parse(p.body, ctText)
			require.NoError(b, err)
			l := testLoop(b, fixedSource{fams: fams})
			_, err = l.scrape(context.Background())
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.scrape(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// protoPage is page in the delimited protobuf format, as client_golang
// serves it when asked.
func protoPage(b *testing.B, page []byte) []byte {
	b.Helper()
	var p parser
	fams, err := p.parse(page, ctText)
	require.NoError(b, err)
	var out bytes.Buffer
	for _, mf := range fams {
		_, err := protodelim.MarshalTo(&out, mf)
		require.NoError(b, err)
	}
	return out.Bytes()
}

// BenchmarkProto compares the protobuf paths on the same pages: protodelim
// into dto structs (what expfmt's decoder does), the hand decoder alone, and
// the whole parse-and-label of a scrape.
func BenchmarkProto(b *testing.B) {
	for _, p := range benchPages(b) {
		body := protoPage(b, p.body)
		b.Run(p.name+"/protodelim", func(b *testing.B) {
			var ps parser
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ps.parse(body, ctProto); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/decode", func(b *testing.B) {
			var pg page
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				pg.reset()
				if err := decodeProto(&pg, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/parse_label", func(b *testing.B) {
			l := testLoop(b, &bodySource{body: body, contentType: ctProto})
			l.src = pageBodySource{body: body, contentType: ctProto}
			_, err := l.scrape(context.Background())
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := l.scrape(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pageBodySource serves a fixed page through the page path of the HTTP
// source (parsePage).
type pageBodySource struct {
	body        []byte
	contentType string
	p           *parser
}

func (s pageBodySource) families(context.Context) ([]*dto.MetricFamily, error) {
	return (&parser{}).parse(s.body, s.contentType)
}

func (s pageBodySource) page(_ context.Context, pg *page) error {
	p := s.p
	if p == nil {
		p = &parser{}
	}
	return p.parsePage(s.body, s.contentType, pg)
}

// BenchmarkCycle is the whole metrics path of one scrape, in steady state:
// HTTP GET over loopback, parse, label, budget and staleness, then remote
// write's Append (validate, batch of 2000, encode, snappy, queue; the send
// is left out). Compare with BenchmarkBareParse on the same page.
func BenchmarkCycle(b *testing.B) {
	for _, p := range benchPages(b) {
		for _, f := range []struct {
			name, contentType string
			body              []byte
		}{
			{"text", ctText, p.body},
			{"protobuf", ctProto, protoPage(b, p.body)},
		} {
			b.Run(p.name+"/"+f.name, func(b *testing.B) {
				_, u := startTarget(b, func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", f.contentType)
					_, _ = w.Write(f.body)
				})
				env := newTestManager(b, Options{Targets: []Target{{Job: "app", URL: u}}})
				rw, err := remotewrite.New(remotewrite.Options{URL: u, QueueMaxBytes: 1 << 20}, slog.New(slog.DiscardHandler), nil)
				require.NoError(b, err)
				l := env.m.loops[0]
				l.sink = rw // as run does
				cycle := func() {
					res, err := l.scrape(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					rw.Append(res.Samples)
				}
				cycle()
				b.ReportAllocs()
				b.SetBytes(int64(len(p.body)))
				for b.Loop() {
					cycle()
				}
			})
		}
	}
}
