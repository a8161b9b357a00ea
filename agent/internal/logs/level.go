package logs

import (
	"bytes"
	"strconv"
)

// Levels, most severe first: the values of the level label.
const (
	LevelFatal   = "fatal"
	LevelError   = "error"
	LevelWarn    = "warn"
	LevelInfo    = "info"
	LevelDebug   = "debug"
	LevelTrace   = "trace"
	LevelUnknown = "unknown"
)

// levelRank orders levels for DYNOSCOPE_LOG_MIN_LEVEL; unknown lines are
// always shipped (their level can't be judged).
func levelRank(l string) int {
	switch l {
	case LevelFatal:
		return 6
	case LevelError:
		return 5
	case LevelWarn:
		return 4
	case LevelInfo:
		return 3
	case LevelDebug:
		return 2
	case LevelTrace:
		return 1
	}
	return 7
}

// fields is what line handling learns from a line's content.
type fields struct {
	level                      string
	requestID, traceID, spanID string
}

// parseLine detects the level and the metadata of one line: JSON object
// keys, logfmt pairs, then common prefixes. It does not allocate unless the
// line carries metadata.
func parseLine(line []byte, f *fields) {
	*f = fields{}
	trimmed := bytes.TrimLeft(line, " \t")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		scanJSON(trimmed, f)
	} else if bytes.IndexByte(line, '=') >= 0 {
		scanLogfmt(line, f)
	}
	if f.level == "" {
		f.level = prefixLevel(line)
	}
}

// normLevel maps a level word or number to a level label value.
func normLevel(v []byte) string {
	if len(v) == 0 || len(v) > 16 {
		return ""
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return ""
		}
		switch { // pino: 60 fatal, 50 error, 40 warn, 30 info, 20 debug, 10 trace
		case n >= 60:
			return LevelFatal
		case n >= 50:
			return LevelError
		case n >= 40:
			return LevelWarn
		case n >= 30:
			return LevelInfo
		case n >= 20:
			return LevelDebug
		default:
			return LevelTrace
		}
	}
	var low [16]byte
	for i, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(low[:len(v)]) {
	case "fatal", "critical", "crit", "panic", "emerg", "emergency", "alert", "f":
		return LevelFatal
	case "error", "err", "severe", "e", "eror":
		return LevelError
	case "warn", "warning", "w":
		return LevelWarn
	case "info", "information", "informational", "notice", "i":
		return LevelInfo
	case "debug", "dbg", "d", "fine":
		return LevelDebug
	case "trace", "trc", "finest", "finer", "verbose":
		return LevelTrace
	}
	return ""
}

func isLevelKey(k []byte) bool {
	switch len(k) {
	case 3, 5, 8, 9:
	default:
		return false
	}
	switch string(k) {
	case "level", "lvl", "severity", "levelname", "log.level", "LEVEL", "Level", "Severity":
		return true
	}
	return false
}

// metaKey maps a key to the structured metadata it fills, or nil.
func metaKey(k []byte, f *fields) *string {
	switch string(k) {
	case "request_id", "requestId", "requestID", "req_id", "reqId", "x_request_id":
		return &f.requestID
	case "trace_id", "traceId", "traceID", "trace.id", "dd.trace_id":
		return &f.traceID
	case "span_id", "spanId", "spanID", "span.id", "dd.span_id":
		return &f.spanID
	}
	return nil
}

const maxMetaValue = 128

func setMeta(dst *string, v []byte) {
	if *dst == "" && len(v) > 0 && len(v) <= maxMetaValue && printableASCII(v) {
		*dst = string(v)
	}
}

func printableASCII(v []byte) bool {
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// scanJSON reads the top-level keys of a JSON object. Nested values are
// skipped; a malformed line just ends the scan.
func scanJSON(s []byte, f *fields) {
	i := 1
	for {
		i = skipSpace(s, i)
		if i >= len(s) || s[i] != '"' {
			return
		}
		key, n, ok := jsonString(s, i)
		if !ok {
			return
		}
		i = skipSpace(s, n)
		if i >= len(s) || s[i] != ':' {
			return
		}
		i = skipSpace(s, i+1)
		if i >= len(s) {
			return
		}
		var val []byte
		switch c := s[i]; {
		case c == '"':
			v, n, ok := jsonString(s, i)
			if !ok {
				return
			}
			val, i = v, n
		case c == '{' || c == '[':
			n, ok := skipNested(s, i)
			if !ok {
				return
			}
			i = n
		default:
			start := i
			for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ' ' {
				i++
			}
			val = s[start:i]
		}
		if val != nil {
			if f.level == "" && isLevelKey(key) {
				f.level = normLevel(val)
			} else if dst := metaKey(key, f); dst != nil {
				setMeta(dst, val)
			}
		}
		i = skipSpace(s, i)
		if i >= len(s) || s[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// jsonString returns the raw content of the string starting at s[i] == '"'
// (escapes kept: level and id values don't need them) and the index after it.
func jsonString(s []byte, i int) ([]byte, int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return s[i+1 : j], j + 1, true
		}
	}
	return nil, 0, false
}

func skipNested(s []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"':
			_, n, ok := jsonString(s, j)
			if !ok {
				return 0, false
			}
			j = n - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// scanLogfmt reads key=value pairs separated by spaces.
func scanLogfmt(s []byte, f *fields) {
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		if i >= len(s) || s[i] == ' ' {
			continue
		}
		key := s[start:i]
		i++
		var val []byte
		if i < len(s) && s[i] == '"' {
			v, n, ok := jsonString(s, i)
			if !ok {
				return
			}
			val, i = v, n
		} else {
			vs := i
			for i < len(s) && s[i] != ' ' {
				i++
			}
			val = s[vs:i]
		}
		if f.level == "" && isLevelKey(key) {
			f.level = normLevel(val)
		} else if dst := metaKey(key, f); dst != nil {
			setMeta(dst, val)
		}
	}
}

// prefixLevel finds a level word near the start of a plain-text line:
// Rails' "E, [", an upper-case word (ERROR, WARNING:), a word in brackets
// ([error], <warn>), or a word opening the line followed by ':' (Error: ...).
func prefixLevel(s []byte) string {
	if len(s) >= 4 && s[1] == ',' && s[2] == ' ' && s[3] == '[' {
		if l := normLevel(s[:1]); l != "" {
			return l
		}
	}
	if len(s) > 80 {
		s = s[:80]
	}
	i := 0
	for i < len(s) {
		c := s[i]
		if !isLetter(c) {
			i++
			continue
		}
		start := i
		upper := true
		for i < len(s) && isLetter(s[i]) {
			if s[i] >= 'a' {
				upper = false
			}
			i++
		}
		word := s[start:i]
		if len(word) < 3 || len(word) > 8 {
			continue
		}
		var before, after byte
		if start > 0 {
			before = s[start-1]
		}
		if i < len(s) {
			after = s[i]
		}
		bracketed := (before == '[' && after == ']') || (before == '<' && after == '>')
		opening := (start == 0 || (start == 1 && (before == '[' || before == '<'))) && (after == ':' || after == ']' || after == '>' || after == '|')
		if !upper && !bracketed && !opening {
			continue
		}
		if upper && isLetterOrDigit(after) {
			continue
		}
		if l := normLevel(word); l != "" {
			return l
		}
	}
	return LevelUnknown
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

func isLetterOrDigit(c byte) bool { return isLetter(c) || (c >= '0' && c <= '9') }
