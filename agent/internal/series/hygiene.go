package series

import (
	"strings"
	"unicode/utf8"
)

// Limits on what one series may carry. Grafana Cloud (Mimir) rejects a whole
// remote write request over one series that breaks its limits, so scrape
// enforces them before a sample leaves the dyno.
const (
	// MaxLabelValueBytes caps a label value; longer values are cut at a rune
	// boundary.
	MaxLabelValueBytes = 2048
	// MaxLabelsPerSeries caps the labels of a series, __name__ included.
	MaxLabelsPerSeries = 30
)

// ValueFix says what SanitizeLabelValue changed.
type ValueFix uint8

// The changes SanitizeLabelValue may make.
const (
	FixInvalidUTF8 ValueFix = 1 << iota // invalid UTF-8 replaced by U+FFFD
	FixTruncated                        // cut to MaxLabelValueBytes
)

// SanitizeLabelName maps name onto [a-zA-Z_][a-zA-Z0-9_]*: every other byte
// becomes '_', and a leading digit gets a '_' prefix. It returns name itself
// (no allocation) when it is already valid, and "_" for an empty name.
func SanitizeLabelName(name string) string { return sanitizeName(name, false) }

// SanitizeMetricName is SanitizeLabelName that also allows ':' (recording
// rule names use it).
func SanitizeMetricName(name string) string { return sanitizeName(name, true) }

func sanitizeName(name string, colon bool) string {
	if name == "" {
		return "_"
	}
	ok := true
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i], i == 0, colon) {
			ok = false
			break
		}
	}
	if ok {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 1)
	if name[0] >= '0' && name[0] <= '9' {
		b.WriteByte('_')
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if nameByte(c, false, colon) {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func nameByte(c byte, first, colon bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9':
		return !first
	case c == ':':
		return colon
	}
	return false
}

// SanitizeLabelValue replaces invalid UTF-8 with U+FFFD and cuts the value to
// at most MaxLabelValueBytes at a rune boundary. It returns v itself (no
// allocation) when nothing had to change, and what it changed.
func SanitizeLabelValue(v string) (string, ValueFix) {
	var fix ValueFix
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
		fix |= FixInvalidUTF8
	}
	if len(v) > MaxLabelValueBytes {
		cut := MaxLabelValueBytes
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
		fix |= FixTruncated
	}
	return v, fix
}
