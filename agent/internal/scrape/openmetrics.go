package scrape

import (
	"bytes"
	"errors"
	"fmt"
)

// normalizeOpenMetrics rewrites an OpenMetrics 1.0 page into the text format
// 0.0.4 that expfmt's text parser reads, appending to dst. It yields the same
// series Prometheus ingests from the page:
//
//   - "# EOF" ends the page; "# HELP", "# UNIT" and other comments go (HELP
//     escaping differs between the formats, and help is not forwarded);
//   - "# TYPE" lines stay for gauge, histogram and summary; for counter, info,
//     stateset, gaugehistogram and unknown they go, so their samples
//     (foo_total, foo_info, foo_bucket/_gcount/_gsum, ...) are read as
//     untyped samples under their own names, which carry the same value;
//   - foo_created of a counter, histogram, summary or gaugehistogram family
//     goes (the text format has no such series);
//   - timestamps (float seconds in OpenMetrics) and exemplars are cut: page
//     timestamps are not used.
//
// It runs in one pass, linear in the page size.
func normalizeOpenMetrics(dst, src []byte) ([]byte, error) {
	types := map[string]string{}
	for lineNo := 1; len(src) > 0; lineNo++ {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			if string(line) == "# EOF" {
				break
			}
			rest, ok := bytes.CutPrefix(line, []byte("# TYPE "))
			if !ok {
				continue
			}
			name, typ, ok := bytes.Cut(rest, []byte(" "))
			if !ok {
				return nil, fmt.Errorf("line %d: TYPE without a type", lineNo)
			}
			types[string(name)] = string(typ)
			switch string(typ) {
			case "gauge", "histogram", "summary":
				dst = append(dst, line...)
				dst = append(dst, '\n')
			}
			continue
		}
		end, err := seriesEnd(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if isCreated(line[:end], types) {
			continue
		}
		if end >= len(line) || line[end] != ' ' {
			return nil, fmt.Errorf("line %d: no value", lineNo)
		}
		value := line[end+1:]
		if i := bytes.IndexByte(value, ' '); i >= 0 {
			value = value[:i] // timestamp and exemplar go
		}
		dst = append(dst, line[:end+1]...)
		dst = append(dst, value...)
		dst = append(dst, '\n')
	}
	return dst, nil
}

// seriesEnd returns the index just past the metric name and its label set.
func seriesEnd(line []byte) (int, error) {
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	if i == len(line) || line[i] != '{' {
		return i, nil
	}
	inQuote := false
	for i++; i < len(line); i++ {
		switch c := line[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated label set")
}

// isCreated reports whether the sample is the _created series of a family
// that has one.
func isCreated(series []byte, types map[string]string) bool {
	name := series
	if i := bytes.IndexByte(name, '{'); i >= 0 {
		name = name[:i]
	}
	base, ok := bytes.CutSuffix(name, []byte("_created"))
	if !ok {
		return false
	}
	switch types[string(base)] {
	case "counter", "histogram", "summary", "gaugehistogram":
		return true
	}
	return false
}
