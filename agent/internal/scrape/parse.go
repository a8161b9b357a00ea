package scrape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
)

// format is the exposition format of a page.
type format int

const (
	formatText format = iota
	formatProto
	formatOpenMetrics
)

// formatOf reads the Content-Type of a response; anything it does not know
// is read as the text format, as Prometheus does.
func formatOf(contentType string) format {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return formatText
	}
	switch mt {
	case expfmt.ProtoType:
		if params["proto"] == expfmt.ProtoProtocol && params["encoding"] == "delimited" {
			return formatProto
		}
	case expfmt.OpenMetricsType:
		return formatOpenMetrics
	}
	return formatText
}

// parser turns a page into metric families, sorted by name. It reuses its
// buffers: not safe for concurrent use.
//
// OpenMetrics pages are normalised into the text format and read by expfmt's
// text parser (see normalizeOpenMetrics), not by expfmt's OpenMetrics decoder:
// that one runs an ABNF parse per line whose cost grows faster than the line
// length, and its own documentation says it is not meant for untrusted input
// or speed.
type parser struct {
	om   []byte
	fams []*dto.MetricFamily
}

func (p *parser) parse(body []byte, contentType string) ([]*dto.MetricFamily, error) {
	clear(p.fams)
	p.fams = p.fams[:0]
	var err error
	switch formatOf(contentType) {
	case formatProto:
		err = p.parseProto(body)
	case formatOpenMetrics:
		p.om, err = normalizeOpenMetrics(p.om[:0], body)
		if err == nil {
			err = p.parseText(p.om)
		}
	default:
		err = p.parseText(body)
	}
	if err != nil {
		clear(p.fams)
		p.fams = p.fams[:0]
		return nil, fmt.Errorf("%w: %w", ErrParse, err)
	}
	slices.SortFunc(p.fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return p.fams, nil
}

// parsePage reads a page into pg (reset first). Protobuf pages are decoded
// straight into pg (see decodeProto), without dto structs; pg's strings then
// point into body. Text and OpenMetrics pages go through expfmt's parser,
// and its families are released once copied into pg.
func (p *parser) parsePage(body []byte, contentType string, pg *page) error {
	pg.reset()
	if formatOf(contentType) != formatProto {
		mfs, err := p.parse(body, contentType)
		if err != nil {
			return err
		}
		pg.addFamilies(mfs)
		p.release()
		return nil
	}
	if err := decodeProto(pg, body); err != nil {
		pg.reset()
		return fmt.Errorf("%w: %w", ErrParse, err)
	}
	pg.sortFamilies()
	return nil
}

// maxKeptOpenMetrics is the largest normalised OpenMetrics buffer kept
// between scrapes.
const maxKeptOpenMetrics = 1 << 20

// release drops the references to the last parse's families (and a big
// OpenMetrics buffer), so that they are garbage before the next scrape.
func (p *parser) release() {
	clear(p.fams)
	p.fams = p.fams[:0]
	if cap(p.om) > maxKeptOpenMetrics {
		p.om = nil
	}
}

func (p *parser) parseText(body []byte) error {
	// UTF-8 names are accepted here; labelling sanitises them.
	tp := expfmt.NewTextParser(model.UTF8Validation)
	m, err := tp.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, mf := range m {
		p.fams = append(p.fams, mf)
	}
	return nil
}

func (p *parser) parseProto(body []byte) error {
	r := bytes.NewReader(body)
	opts := protodelim.UnmarshalOptions{MaxSize: -1} // the body is already bounded
	for {
		mf := &dto.MetricFamily{}
		err := opts.UnmarshalFrom(r, mf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := validateProto(mf); err != nil {
			return err
		}
		p.fams = append(p.fams, mf)
	}
}

// validateProto applies the checks of the text parser to a protobuf family.
func validateProto(mf *dto.MetricFamily) error {
	if !model.UTF8Validation.IsValidMetricName(mf.GetName()) {
		return fmt.Errorf("invalid metric name %q", mf.GetName())
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !model.LabelValue(l.GetValue()).IsValid() {
				return fmt.Errorf("invalid label value %q", l.GetValue())
			}
		}
	}
	return nil
}
