package scrape

import (
	"fmt"
	"io"
	"math"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// decodeProto reads a delimited protobuf page (io.prometheus.client.MetricFamily
// messages, each after its varint length) into p, appending to it.
//
// It decodes the wire format by hand with protowire instead of unmarshalling
// dto structs: protobuf-go allocates every message, label pair, bucket and
// optional scalar of a page separately (about 9 MB and 300k allocations for
// a 10k-series page, all garbage after the scrape), where this allocates
// nothing once p's arrays have grown. Strings are not copied: they point
// into body, which must stay unchanged while p is used. It reads only what
// the scrape forwards (names, types, labels, values, buckets, quantiles);
// help, units, timestamps, exemplars and native histogram fields are skipped.
// The merge rules are protobuf's: the last of a scalar wins, repeated fields
// and repeated sub-messages add up.
//
//	message MetricFamily { string name = 1; string help = 2; MetricType type = 3; repeated Metric metric = 4; }
//	message Metric    { repeated LabelPair label = 1; Gauge gauge = 2; Counter counter = 3; Summary summary = 4;
//	                    Untyped untyped = 5; Histogram histogram = 7; int64 timestamp_ms = 6; }
//	message LabelPair { string name = 1; string value = 2; }
//	message Gauge, Counter, Untyped { double value = 1; }
//	message Summary   { uint64 sample_count = 1; double sample_sum = 2; repeated Quantile quantile = 3; }
//	message Quantile  { double quantile = 1; double value = 2; }
//	message Histogram { uint64 sample_count = 1; double sample_count_float = 4; double sample_sum = 2; repeated Bucket bucket = 3; }
//	message Bucket    { uint64 cumulative_count = 1; double cumulative_count_float = 4; double upper_bound = 2; }
func decodeProto(p *page, body []byte) error {
	if len(body) > math.MaxInt32 {
		return fmt.Errorf("protobuf: page of %d bytes", len(body))
	}
	p.body = body
	for len(body) > 0 {
		size, n := protowire.ConsumeVarint(body)
		if n < 0 {
			return fmt.Errorf("protobuf: message length: %w", protowire.ParseError(n))
		}
		body = body[n:]
		if size > uint64(len(body)) {
			return fmt.Errorf("protobuf: message of %d bytes: %w", size, io.ErrUnexpectedEOF)
		}
		if err := p.decodeFamily(body[:size]); err != nil {
			return err
		}
		body = body[size:]
	}
	return nil
}

// Field numbers of io.prometheus.client's messages (see decodeProto).
const (
	fieldFamilyName   protowire.Number = 1
	fieldFamilyType   protowire.Number = 3
	fieldFamilyMetric protowire.Number = 4

	fieldMetricLabel     protowire.Number = 1
	fieldMetricGauge     protowire.Number = 2
	fieldMetricCounter   protowire.Number = 3
	fieldMetricSummary   protowire.Number = 4
	fieldMetricUntyped   protowire.Number = 5
	fieldMetricHistogram protowire.Number = 7

	fieldLabelName  protowire.Number = 1
	fieldLabelValue protowire.Number = 2

	fieldValue protowire.Number = 1 // of Gauge, Counter and Untyped

	fieldSampleCount      protowire.Number = 1 // of Summary and Histogram
	fieldSampleSum        protowire.Number = 2
	fieldQuantileOrBucket protowire.Number = 3
	fieldSampleCountFloat protowire.Number = 4 // of Histogram

	fieldQuantileQuantile protowire.Number = 1
	fieldQuantileValue    protowire.Number = 2

	fieldBucketCount      protowire.Number = 1
	fieldBucketUpperBound protowire.Number = 2
	fieldBucketCountFloat protowire.Number = 4
)

// field is one field of a message: its number, wire type and value (the
// bytes of a length-delimited field, v of the others).
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte
	v   uint64
}

// next reads the field at the start of b and returns it and the rest of b.
func next(b []byte) (field, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, nil, fmt.Errorf("protobuf: %w", protowire.ParseError(n))
	}
	b = b[n:]
	f := field{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.v = uint64(v)
	default: // groups: not in these messages, but skipped as protobuf does
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return field{}, nil, fmt.Errorf("protobuf: %w", protowire.ParseError(n))
	}
	return f, b[n:], nil
}

func (f field) float() float64 { return math.Float64frombits(f.v) }

// decodeFamily reads one MetricFamily. The type comes before the metrics
// in every encoder's output, but the wire format allows any order, so the
// name and type are read first and the metrics in a second pass.
func (p *page) decodeFamily(b []byte) error {
	fam := pageFamily{first: int32(len(p.metrics))}
	for rest := b; len(rest) > 0; {
		f, r, err := next(rest)
		if err != nil {
			return err
		}
		rest = r
		switch {
		case f.num == fieldFamilyName && f.typ == protowire.BytesType:
			fam.name = unsafeString(f.b)
		case f.num == fieldFamilyType && f.typ == protowire.VarintType:
			// A closed proto2 enum: protobuf keeps an unknown value out of the field.
			if _, ok := dto.MetricType_name[int32(f.v)]; ok && f.v <= 0x7fffffff {
				fam.typ = dto.MetricType(f.v)
			}
		}
	}
	if !model.UTF8Validation.IsValidMetricName(fam.name) {
		return fmt.Errorf("invalid metric name %q", fam.name)
	}
	for rest := b; len(rest) > 0; {
		f, r, err := next(rest)
		if err != nil {
			return err
		}
		rest = r
		if f.num == fieldFamilyMetric && f.typ == protowire.BytesType {
			if err := p.decodeMetric(f.b, fam.typ); err != nil {
				return err
			}
		}
	}
	fam.end = int32(len(p.metrics))
	p.fams = append(p.fams, fam)
	return nil
}

// decodeMetric reads one Metric of a family of type typ: its labels and the
// one value message its type uses.
func (p *page) decodeMetric(b []byte, typ dto.MetricType) error {
	// b is p.body[l0:l0+len(b)], so their capacities tell l0.
	l0 := cap(p.body) - cap(b)
	m := pageMetric{l0: int32(l0), l1: int32(l0 + len(b)), p0: int32(len(p.points))}
	var valueField protowire.Number
	switch typ {
	case dto.MetricType_COUNTER:
		valueField = fieldMetricCounter
	case dto.MetricType_GAUGE:
		valueField = fieldMetricGauge
	case dto.MetricType_SUMMARY:
		valueField = fieldMetricSummary
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		valueField = fieldMetricHistogram
	default:
		valueField = fieldMetricUntyped
	}
	var count uint64
	var countFloat float64
	hasCountFloat := false
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fieldMetricLabel:
			if err := checkLabel(f.b); err != nil {
				return err
			}
		case valueField:
			err = p.decodeValue(f.b, typ, &m, &count, &countFloat, &hasCountFloat)
			if err != nil {
				return err
			}
		}
	}
	m.p1 = int32(len(p.points))
	m.count = float64(count)
	if hasCountFloat {
		m.count = countFloat
	}
	p.metrics = append(p.metrics, m)
	return nil
}

// checkLabel reads a LabelPair and checks its value, as the text parser does.
func checkLabel(b []byte) error {
	l, err := decodeLabel(b)
	if err != nil {
		return err
	}
	if !model.LabelValue(l.Value).IsValid() {
		return fmt.Errorf("invalid label value %q", l.Value)
	}
	return nil
}

func decodeLabel(b []byte) (series.Label, error) {
	var l series.Label
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return l, err
		}
		b = rest
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fieldLabelName:
			l.Name = unsafeString(f.b)
		case fieldLabelValue:
			l.Value = unsafeString(f.b)
		}
	}
	return l, nil
}

// appendMetricLabels appends the labels of a Metric message that
// decodeMetric has already read without error.
func appendMetricLabels(dst []series.Label, b []byte) []series.Label {
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return dst // not after decodeMetric
		}
		b = rest
		if f.num == fieldMetricLabel && f.typ == protowire.BytesType {
			l, _ := decodeLabel(f.b)
			dst = append(dst, l)
		}
	}
	return dst
}

// decodeValue reads a Gauge, Counter, Untyped, Summary or Histogram into m
// (and the sample count, kept apart until the metric ends because a float
// count wins over an integer one wherever it appears).
func (p *page) decodeValue(b []byte, typ dto.MetricType, m *pageMetric, count *uint64, countFloat *float64, hasCountFloat *bool) error {
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		switch typ {
		case dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			switch {
			case f.num == fieldSampleCount && f.typ == protowire.VarintType:
				*count = f.v
			case f.num == fieldSampleSum && f.typ == protowire.Fixed64Type:
				m.value = f.float()
			case f.num == fieldSampleCountFloat && f.typ == protowire.Fixed64Type && typ != dto.MetricType_SUMMARY:
				*countFloat, *hasCountFloat = f.float(), true
			case f.num == fieldQuantileOrBucket && f.typ == protowire.BytesType:
				var pt pagePoint
				if typ == dto.MetricType_SUMMARY {
					pt, err = decodeQuantile(f.b)
				} else {
					pt, err = decodeBucket(f.b)
				}
				if err != nil {
					return err
				}
				p.points = append(p.points, pt)
			}
		default: // Gauge, Counter, Untyped
			if f.num == fieldValue && f.typ == protowire.Fixed64Type {
				m.value = f.float()
			}
		}
	}
	return nil
}

func decodeQuantile(b []byte) (pagePoint, error) {
	var pt pagePoint
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return pt, err
		}
		b = rest
		if f.typ != protowire.Fixed64Type {
			continue
		}
		switch f.num {
		case fieldQuantileQuantile:
			pt.key = f.float()
		case fieldQuantileValue:
			pt.value = f.float()
		}
	}
	return pt, nil
}

func decodeBucket(b []byte) (pagePoint, error) {
	var pt pagePoint
	var count uint64
	var countFloat float64
	hasFloat := false
	for len(b) > 0 {
		f, rest, err := next(b)
		if err != nil {
			return pt, err
		}
		b = rest
		switch {
		case f.num == fieldBucketCount && f.typ == protowire.VarintType:
			count = f.v
		case f.num == fieldBucketUpperBound && f.typ == protowire.Fixed64Type:
			pt.key = f.float()
		case f.num == fieldBucketCountFloat && f.typ == protowire.Fixed64Type:
			countFloat, hasFloat = f.float(), true
		}
	}
	pt.value = float64(count)
	if hasFloat {
		pt.value = countFloat
	}
	return pt, nil
}

// unsafeString returns b as a string without copying: valid while b is.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
