package logs

import (
	"bytes"
	"regexp"
)

// Redacted replaces every secret found in a shipped line.
const Redacted = "[REDACTED]"

// redactRule is one built-in pattern. A rule runs only when the lower-cased
// line contains one of its triggers, so most lines cost a few IndexByte scans.
type redactRule struct {
	name     string
	triggers [][]byte
	re       *regexp.Regexp
	repl     []byte
}

// builtinRedactions are applied to every shipped line before it leaves the
// dyno. The passthrough to stdout/stderr is never altered.
var builtinRedactions = []redactRule{
	{
		name:     "authorization header",
		triggers: [][]byte{[]byte("authorization")},
		re:       regexp.MustCompile(`(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token|digest)\s+)?[^\s"',;]+`),
		repl:     []byte("${1}" + Redacted),
	},
	{
		name:     "bearer token",
		triggers: [][]byte{[]byte("bearer")},
		re:       regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+`),
		repl:     []byte("${1}" + Redacted),
	},
	{
		name:     "password",
		triggers: [][]byte{[]byte("pass"), []byte("pwd"), []byte("secret"), []byte("api_key"), []byte("apikey")},
		re:       regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|secret[_-]?access[_-]?key|api[_-]?key)["']?\s*[:=]\s*["']?)[^\s"'&,;}]+`),
		repl:     []byte("${1}" + Redacted),
	},
	{
		name:     "url credentials",
		triggers: [][]byte{[]byte("://")},
		re:       regexp.MustCompile(`(://)[^/\s@"']+@`),
		repl:     []byte("${1}" + Redacted + "@"),
	},
	{
		name:     "grafana token",
		triggers: [][]byte{[]byte("glc_"), []byte("glsa_")},
		re:       regexp.MustCompile(`\b(?:glc|glsa)_[A-Za-z0-9+/=_-]{8,}`),
		repl:     []byte(Redacted),
	},
	{
		name:     "aws access key",
		triggers: [][]byte{[]byte("akia"), []byte("asia")},
		re:       regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),
		repl:     []byte(Redacted),
	},
}

// redactor applies the built-in rules and the user's regex. Not safe for
// concurrent use (it reuses a buffer).
type redactor struct {
	extra *regexp.Regexp
	lower []byte
}

// redact returns line with every secret replaced, and whether it changed
// anything. The result may alias line when nothing changed.
func (r *redactor) redact(line []byte) ([]byte, bool) {
	r.lower = appendLower(r.lower[:0], line)
	changed := false
	for i := range builtinRedactions {
		rule := &builtinRedactions[i]
		hit := false
		for _, t := range rule.triggers {
			if bytes.Contains(r.lower, t) {
				hit = true
				break
			}
		}
		if !hit || !rule.re.Match(line) {
			continue
		}
		line = rule.re.ReplaceAll(line, rule.repl)
		changed = true
		r.lower = appendLower(r.lower[:0], line)
	}
	if r.extra != nil && r.extra.Match(line) {
		line = r.extra.ReplaceAllLiteral(line, []byte(Redacted))
		changed = true
	}
	return line, changed
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
