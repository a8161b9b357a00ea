package remotewrite

import (
	"math"
	"strconv"
	"strings"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// encodeText renders a batch the way dry run prints it: exposition format,
// one line per sample, every label (identity labels included), the
// timestamp in milliseconds, grouped by series and in time order as the
// WriteRequest would carry them:
//
//	http_requests_total{app="shop",instance="web.1",job="app"} 42 1700000000000
//
// A staleness marker prints as NaN, like any NaN. The returned slice is
// newly allocated and owned by the caller.
func (e *encoder) encodeText(samples []series.Sample) []byte {
	e.group(samples)
	b := e.raw[:0]
	for _, g := range e.groups {
		ls := samples[g.first].Labels
		for _, i := range e.order[g.start : g.start+g.count] {
			b = appendSeriesText(b, ls)
			b = append(b, ' ')
			b = appendFloatText(b, samples[i].V)
			b = append(b, ' ')
			b = strconv.AppendInt(b, samples[i].T, 10)
			b = append(b, '\n')
		}
	}
	e.raw = b
	return append([]byte(nil), b...)
}

var labelValueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func appendSeriesText(b []byte, ls series.Labels) []byte {
	b = append(b, ls.Get(series.MetricName)...)
	b = append(b, '{')
	first := true
	for _, l := range ls {
		if l.Name == series.MetricName || l.Value == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, l.Name...)
		b = append(b, '=', '"')
		if strings.ContainsAny(l.Value, "\\\"\n") {
			b = append(b, labelValueEscaper.Replace(l.Value)...)
		} else {
			b = append(b, l.Value...)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

func appendFloatText(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
