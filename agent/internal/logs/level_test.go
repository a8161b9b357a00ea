package logs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       fields
	}{
		{"pino info with request id", `{"level":30,"time":1,"request_id":"b1c2d3","msg":"answered"}`, fields{level: LevelInfo, requestID: "b1c2d3"}},
		{"pino fatal", `{"level":60,"msg":"x"}`, fields{level: LevelFatal}},
		{"pino warn", `{"level":40}`, fields{level: LevelWarn}},
		{"pino debug", `{"level":20}`, fields{level: LevelDebug}},
		{"pino trace", `{"level":10}`, fields{level: LevelTrace}},
		{"winston with trace id", `{"level":"info","message":"m","trace_id":"4bf9"}`, fields{level: LevelInfo, traceID: "4bf9"}},
		{"json severity", `{"severity":"WARNING","span_id":"ab","nested":{"level":"debug"}}`, fields{level: LevelWarn, spanID: "ab"}},
		{"json lvl after nested", `{"err":{"level":"debug","x":[1,2]},"lvl":"error"}`, fields{level: LevelError}},
		{"json without level", `{"msg":"hi"}`, fields{level: LevelUnknown}},
		{"logfmt", `ts=1 level=error msg="boom now" request_id=r1 trace_id=t1 span_id=s1`, fields{level: LevelError, requestID: "r1", traceID: "t1", spanID: "s1"}},
		{"logfmt quoted level", `level="warn" msg=x`, fields{level: LevelWarn}},
		{"python critical", `CRITICAL:root:disk full`, fields{level: LevelFatal}},
		{"python warning", `WARNING:ai_service:token budget at 85%`, fields{level: LevelWarn}},
		{"python error", `ERROR:ai_service:lookup failed`, fields{level: LevelError}},
		{"python info", `INFO:ai_service:model loaded in 1.2s`, fields{level: LevelInfo}},
		{"bracketed after timestamp", `2026-12-03 15:42:09,683 [ERROR] gunicorn.error: Worker timeout`, fields{level: LevelError}},
		{"bracketed lower", `[warn] slow`, fields{level: LevelWarn}},
		{"rails", `E, [2026-12-03T15:42:09.683 #42] ERROR -- : boom`, fields{level: LevelError}},
		{"rails info", `I, [2026-12-03T15:42:09.683 #42]  INFO -- : Started GET`, fields{level: LevelInfo}},
		{"node error", `Error: unhandled thing`, fields{level: LevelError}},
		{"plain", `plain console.log line`, fields{level: LevelUnknown}},
		{"lower word mid-line is not a level", `could not get info about x`, fields{level: LevelUnknown}},
		{"upper DEBUG", `2026-01-01 DEBUG cache warm`, fields{level: LevelDebug}},
		{"metadata value with space ignored", `{"request_id":"a b"}`, fields{level: LevelUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fields
			parseLine([]byte(tt.line), &f)
			require.Equal(t, tt.want, f)
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"fixture line", `password=hunter2 postgres://app:s3cret@db.example.com:5432/app Authorization: Bearer glc_eyJrIjoiZmFrZSJ9`,
			`password=[REDACTED] postgres://[REDACTED]@db.example.com:5432/app Authorization: [REDACTED]`},
		{"json password", `{"user":"a","password":"hunter2"}`, `{"user":"a","password":"[REDACTED]"}`},
		{"bearer alone", `sent Bearer abc.def-ghi to upstream`, `sent Bearer [REDACTED] to upstream`},
		{"grafana token", `token glc_abcdefghijklmnop used`, `token [REDACTED] used`},
		{"aws key", `key AKIAIOSFODNN7EXAMPLE here`, `key [REDACTED] here`},
		{"aws secret", `aws_secret_access_key=wJalrXUtnFEMI/K7MDENG`, `aws_secret_access_key=[REDACTED]`},
		{"db password env", `DB_PASSWORD: s3cr3t`, `DB_PASSWORD: [REDACTED]`},
		{"nothing", `GET /api/ask 200 12ms`, `GET /api/ask 200 12ms`},
		{"url without credentials", `fetch https://example.com/a@b`, `fetch https://example.com/a@b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r redactor
			got, changed := r.redact([]byte(tt.in))
			require.Equal(t, tt.want, string(got))
			require.Equal(t, tt.in != tt.want, changed)
		})
	}
}

func TestSplitter(t *testing.T) {
	b := &batch{}
	s := newSplitter(8)
	s.feed([]byte("ab\r\ncd"), b)
	s.feed([]byte("ef\n0123456789abcdefXY"), b)
	s.feed([]byte("Z\n"), b)
	s.feed([]byte("tail"), b)
	s.flush(b)
	var got []string
	var flags []string
	for i, l := range b.lines {
		got = append(got, string(b.line(i)))
		switch {
		case l.cut:
			flags = append(flags, "cut")
		case l.cont:
			flags = append(flags, "cont")
		default:
			flags = append(flags, "")
		}
	}
	require.Equal(t, []string{"ab\r", "cdef", "01234567", "89abcdef", "XYZ", "tail"}, got)
	require.Equal(t, []string{"", "", "cut", "cont", "cont", ""}, flags)
}

func TestSplitterKeepsRunes(t *testing.T) {
	b := &batch{}
	s := newSplitter(4)
	s.feed([]byte("aaé€\n"), b) // é is 2 bytes, € 3
	var got []string
	for i := range b.lines {
		got = append(got, string(b.line(i)))
	}
	require.Equal(t, []string{"aaé", "€"}, got)
}
