package scrape

import (
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// page is one scrape's exposition before labelling, in flat arrays that are
// reused from scrape to scrape: a family is a run of metrics, a metric a run
// of labels and a run of points. Its strings may point into the fetched body
// (protobuf pages, see decodeProto): it is valid until the next scrape, and
// what outlives the scrape (the labels of a new series, cache keys) is cloned.
//
// Compared with a []*dto.MetricFamily it costs no allocation per metric,
// label or bucket, and holds a 10k-series page in well under a megabyte.
//
// The labels of a protobuf page are not stored: they are checked when the
// page is read, and read again from the body, one metric at a time, when the
// metric is labelled (metricLabels). That saves 32 bytes per label pair (a
// third of a megabyte per 10k series, more with the array's growth) for a
// second pass over a few bytes.
type page struct {
	fams    []pageFamily
	metrics []pageMetric
	labels  []series.Label // of dto families; protobuf pages leave it empty
	points  []pagePoint
	body    []byte         // the protobuf page: metrics' l0:l1 are byte offsets of the Metric message in it
	scratch []series.Label // metricLabels' result
}

// pageFamily is a metric family: its name, type and metrics[first:end].
type pageFamily struct {
	name       string
	typ        dto.MetricType
	first, end int32
}

// pageMetric is one metric of a family: labels[l0:l1] (body[l0:l1], its
// Metric message, when the page has a body) and points[p0:p1]
// (the buckets of a histogram, the quantiles of a summary). value is the
// value of a counter, gauge or untyped metric, and the sum of a summary or
// histogram; count is the sample count of a summary or histogram.
type pageMetric struct {
	l0, l1, p0, p1 int32
	value, count   float64
}

// pagePoint is a bucket (upper bound, cumulative count) or a quantile
// (quantile, value).
type pagePoint struct {
	key, value float64
}

// maxKeptPage is how many metrics a page keeps room for between scrapes;
// above it, the arrays go back to the heap after a big page.
const maxKeptPage = 64 << 10

func (p *page) reset() {
	if cap(p.metrics) > maxKeptPage && len(p.metrics) < cap(p.metrics)/4 {
		*p = page{}
		return
	}
	clear(p.fams) // drop the strings of the last page
	clear(p.labels)
	clear(p.scratch)
	p.fams, p.metrics, p.labels, p.points, p.scratch = p.fams[:0], p.metrics[:0], p.labels[:0], p.points[:0], p.scratch[:0]
	p.body = nil
}

// metricLabels returns the labels of m, as on the page. The result is
// valid until the next call.
func (p *page) metricLabels(m *pageMetric) []series.Label {
	if p.body == nil {
		return p.labels[m.l0:m.l1]
	}
	p.scratch = appendMetricLabels(p.scratch[:0], p.body[m.l0:m.l1])
	return p.scratch
}

// sortFamilies orders the families by name, as the text parser's map does
// not and a protobuf page need not.
func (p *page) sortFamilies() {
	if !slices.IsSortedFunc(p.fams, cmpFamily) {
		slices.SortStableFunc(p.fams, cmpFamily)
	}
}

func cmpFamily(a, b pageFamily) int { return strings.Compare(a.name, b.name) }

// addFamilies appends dto families (the text parser's, a gatherer's) to the
// page. The page keeps pointers to their strings, not to the structs.
func (p *page) addFamilies(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		p.addFamily(mf)
	}
}

func (p *page) addFamily(mf *dto.MetricFamily) {
	f := pageFamily{name: mf.GetName(), typ: mf.GetType(), first: int32(len(p.metrics))}
	for _, m := range mf.GetMetric() {
		pm := pageMetric{l0: int32(len(p.labels))}
		for _, lp := range m.GetLabel() {
			p.labels = append(p.labels, series.Label{Name: lp.GetName(), Value: lp.GetValue()})
		}
		pm.l1 = int32(len(p.labels))
		pm.p0 = int32(len(p.points))
		switch f.typ {
		case dto.MetricType_COUNTER:
			pm.value = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			pm.value = m.GetGauge().GetValue()
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				p.points = append(p.points, pagePoint{key: q.GetQuantile(), value: q.GetValue()})
			}
			pm.value = s.GetSampleSum()
			pm.count = float64(s.GetSampleCount())
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			pm.count = float64(h.GetSampleCount())
			if h.SampleCountFloat != nil {
				pm.count = h.GetSampleCountFloat()
			}
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					c = b.GetCumulativeCountFloat()
				}
				p.points = append(p.points, pagePoint{key: b.GetUpperBound(), value: c})
			}
			pm.value = h.GetSampleSum()
		default: // untyped
			pm.value = m.GetUntyped().GetValue()
		}
		pm.p1 = int32(len(p.points))
		p.metrics = append(p.metrics, pm)
	}
	f.end = int32(len(p.metrics))
	p.fams = append(p.fams, f)
}
