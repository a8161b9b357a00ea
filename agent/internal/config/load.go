package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// VarError is one invalid variable: its name, its value as it may be shown
// (masked when secret, URL passwords redacted) and what is accepted.
type VarError struct {
	Name  string
	Value string // already masked
	Msg   string // e.g. "is not a duration: use Go syntax such as 60s or 1m30s"
}

func (e *VarError) Error() string { return fmt.Sprintf("%s=%q %s", e.Name, e.Value, e.Msg) }

// fieldInfo describes one tagged field of Config.
type fieldInfo struct {
	name     string
	index    int
	secret   bool
	empty    bool // an empty value is meaningful (not replaced by the default)
	derived  bool // default computed by Load
	anchored bool
	size     bool
	oneof    []string
	desc     string
}

var fields = gatherFields()

func gatherFields() []fieldInfo {
	t := reflect.TypeFor[Config]()
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		fi := fieldInfo{
			name: name, index: i,
			secret:   f.Tag.Get("secret") == "true",
			empty:    f.Tag.Get("empty") == "true",
			derived:  f.Tag.Get("derived") == "true",
			anchored: f.Tag.Get("anchored") == "true",
			size:     f.Tag.Get("size") == "true",
			desc:     f.Tag.Get("desc"),
		}
		if o := f.Tag.Get("oneof"); o != "" {
			fi.oneof = strings.Split(o, ",")
		}
		out = append(out, fi)
	}
	return out
}

// KnownNames returns every config var name the agent, the .profile.d
// launcher and bin/compile read, sorted. Names starting with an underscore
// (e.g. _DYNOSCOPE_TEE) are internal and never checked.
func KnownNames() []string {
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		names = append(names, f.name)
	}
	slices.Sort(names)
	return names
}

// Load reads the configuration from environ (as os.Environ returns it; the
// last of duplicate names wins), applies defaults, normalises URLs and
// validates. It returns warnings to print (unknown DYNOSCOPE_* names with
// the closest valid name, a forwarder turned off by a missing URL, an app
// name that could not be found) and, when any variable is invalid, a
// *multierror.Error with one *VarError per invalid variable. The Config is
// returned even with errors, filled as far as possible.
func Load(environ []string) (*Config, []string, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c := &Config{raw: map[string]string{}, source: map[string]string{}}
	var errs *multierror.Error
	var warnings []string
	rv := reflect.ValueOf(c).Elem()

	for _, f := range fields {
		v, ok := env[f.name]
		src := "set"
		if !ok || (v == "" && !f.empty) {
			v, src = defaults[f.name], "default"
			if v == "" {
				src = "not set"
			}
			if f.derived {
				var w string
				v, src, w = derive(f.name, env)
				if w != "" {
					warnings = append(warnings, w)
				}
			}
		}
		c.raw[f.name], c.source[f.name] = v, src
		if err := decode(f, rv.Field(f.index), v); err != nil {
			errs = multierror.Append(errs, &VarError{Name: f.name, Value: mask(f, v), Msg: err.Error()})
		}
	}
	if err := c.Validate(); err != nil {
		if me, ok := err.(*multierror.Error); ok {
			errs = multierror.Append(errs, me.Errors...)
		}
	}
	warnings = append(warnings, unknownNames(env)...)
	warnings = append(warnings, c.forwardingWarnings()...)
	warnings = append(warnings, c.herokuWarnings(env)...)
	if errs != nil {
		errs.ErrorFormat = formatErrors
	}
	return c, warnings, errs.ErrorOrNil()
}

func formatErrors(errs []error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d):", len(errs))
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// derive computes the default of a derived variable: its value, where it
// came from (for Print) and an optional warning.
func derive(name string, env map[string]string) (value, source, warning string) {
	switch name {
	case "ENVIRONMENT":
		for _, k := range []string{"NODE_ENV", "RAILS_ENV", "APP_ENV"} {
			if v := env[k]; v != "" {
				return v, "from " + k, ""
			}
		}
		if env["DYNO"] != "" {
			return "production", "default (on Heroku)", ""
		}
		return "development", "default (off Heroku)", ""
	case "DYNOSCOPE_APP":
		if v := env["HEROKU_APP_NAME"]; v != "" {
			return v, "from HEROKU_APP_NAME", ""
		}
		return UnknownApp, "default", `DYNOSCOPE_APP and HEROKU_APP_NAME are not set: the app label is "unknown" (set DYNOSCOPE_APP, or run heroku labs:enable runtime-dyno-metadata)`
	case "DYNOSCOPE_PLATFORM":
		return "", "detect", ""
	case "DYNOSCOPE_SCRAPE_TARGETS":
		port := env["PORT"]
		if port == "" {
			return "", "default (PORT not set: none)", ""
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "default (PORT invalid: none)", fmt.Sprintf("PORT=%q is not a port number: no default scrape target", port)
		}
		return DefaultJob + "=http://127.0.0.1:" + port + DefaultMetricsPath, "default (from PORT)", ""
	}
	return "", "default", ""
}

// decode sets one field from its text. Errors say what is wrong and what is
// accepted; the caller prefixes NAME="value".
func decode(f fieldInfo, v reflect.Value, s string) error {
	if f.oneof != nil {
		if f.name == "DYNOSCOPE_LOG_MIN_LEVEL" && strings.EqualFold(s, "all") {
			s = ""
		}
		if s != "" && !slices.Contains(f.oneof, strings.ToLower(s)) {
			return fmt.Errorf("is not accepted: use one of %s", strings.Join(f.oneof, ", "))
		}
		s = strings.ToLower(s)
		if f.name == "DYNOSCOPE_INSTANCE" && s == "" {
			return fmt.Errorf("is empty: use one of %s", strings.Join(f.oneof, ", "))
		}
	}
	switch p := v.Addr().Interface().(type) {
	case *string:
		if f.name == "ENVIRONMENT" {
			s = strings.ToLower(s)
		}
		if f.name == "DYNOSCOPE_HEALTH_PATH" && s != "" && !strings.HasPrefix(s, "/") {
			return fmt.Errorf("is not a path: use a path starting with / such as /health, or empty to turn the probe off")
		}
		if f.name == "DYNOSCOPE_BINARY_SHA256" && s != "" && !sha256Re.MatchString(s) {
			return fmt.Errorf("is not a SHA-256: use 64 hexadecimal digits")
		}
		*p = s
	case *bool:
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("is not a positive integer: use a number such as %s", defaults[f.name])
		}
		*p = n
	case *int64:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("is not a positive size: use bytes or KiB/MiB such as %s", defaults[f.name])
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("is not a duration: use Go syntax such as 60s or 1m30s")
		}
		if d <= 0 {
			return fmt.Errorf("is not a positive duration: use Go syntax such as 60s or 1m30s")
		}
		*p = d
	case **url.URL:
		if s == "" {
			return nil
		}
		u, err := parseURL(s, pushPaths[f.name])
		if err != nil {
			return err
		}
		*p = u
	case **regexp.Regexp:
		if s == "" {
			return nil
		}
		expr := s
		if f.anchored {
			expr = "^(?:" + s + ")$"
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return fmt.Errorf("is not a regular expression (%s): use RE2 syntax such as %s", reErrText(err), reExample(f))
		}
		*p = re
	case *[]Target:
		ts, err := ParseTargets(s)
		if err != nil {
			return fmt.Errorf("is invalid: %w", err)
		}
		*p = ts
	case *map[string]string:
		ls, err := ParseLabels(s)
		if err != nil {
			return fmt.Errorf("is invalid: %w", err)
		}
		*p = ls
	case *[]string:
		gs, err := parseGlobs(s)
		if err != nil {
			return fmt.Errorf("is invalid: %w", err)
		}
		*p = gs
	case *RateLimit:
		r, err := ParseRateLimit(s)
		if err != nil {
			return err
		}
		*p = r
	case *slog.Level:
		switch strings.ToLower(s) {
		case "debug":
			*p = slog.LevelDebug
		case "info":
			*p = slog.LevelInfo
		case "warn", "warning":
			*p = slog.LevelWarn
		case "error":
			*p = slog.LevelError
		default:
			return fmt.Errorf("is not a log level: use debug, info, warn or error")
		}
	default:
		panic("config: no decoder for " + f.name)
	}
	return nil
}

var sha256Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func reExample(f fieldInfo) string {
	switch f.name {
	case "DYNOSCOPE_METRICS_KEEP":
		return "http_.*|process_.*"
	case "DYNOSCOPE_METRICS_DROP":
		return "go_gc_.*"
	case "DYNOSCOPE_LOG_REDACT":
		return `token=\S+`
	}
	return "healthcheck|GET /health"
}

// reErrText keeps the reason of a regexp error without repeating the expression.
func reErrText(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error parsing regexp: ")
	if i := strings.Index(msg, ": `"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// Validate checks what no single variable can (Load has already reported
// each variable that does not parse): limits that must be
// consistent, credentials that must not go over plain http, a status
// address that must stay on loopback. It returns a *multierror.Error of
// *VarError, or nil.
func (c *Config) Validate() error {
	var errs *multierror.Error
	add := func(name, msg string) {
		errs = multierror.Append(errs, &VarError{Name: name, Value: c.shown(name), Msg: msg})
	}
	if c.ScrapeInterval > 0 && c.ScrapeTimeout > c.ScrapeInterval {
		add("DYNOSCOPE_SCRAPE_TIMEOUT", fmt.Sprintf("is longer than DYNOSCOPE_SCRAPE_INTERVAL (%s): use a timeout no longer than the interval", c.ScrapeInterval))
	}
	if c.LogMaxLineBytes > 0 && c.LogQueueMaxBytes > 0 && c.LogMaxLineBytes > c.LogQueueMaxBytes {
		add("DYNOSCOPE_LOG_MAX_LINE_BYTES", fmt.Sprintf("is larger than DYNOSCOPE_LOG_QUEUE_MAX_BYTES (%d bytes): use a smaller line limit", c.LogQueueMaxBytes))
	}
	if c.PrometheusURL != nil && insecureCredentials(c.PrometheusURL, c.PrometheusUser != "" || c.PrometheusPassword != "") {
		add("GRAFANA_CLOUD_PROMETHEUS_URL", insecureMsg)
	}
	if c.LokiURL != nil && insecureCredentials(c.LokiURL, c.LokiUser != "" || c.LokiPassword != "") {
		add("GRAFANA_CLOUD_LOKI_URL", insecureMsg)
	}
	for _, t := range c.ScrapeTargets {
		if insecureCredentials(t.URL, false) {
			add("DYNOSCOPE_SCRAPE_TARGETS", fmt.Sprintf("target %s %s", t.Job, insecureMsg))
			break
		}
	}
	if c.StatusAddr != "" {
		if err := CheckLoopbackAddr(c.StatusAddr); err != nil {
			add("DYNOSCOPE_STATUS_ADDR", "must be a 127.0.0.1 address: use host:port such as "+DefaultStatusAddr+", or empty to turn it off")
		}
	}
	// sun_path holds 108 bytes on Linux, the terminating NUL included.
	if len(c.Socket) > 107 {
		add("DYNOSCOPE_SOCKET", "is longer than 107 bytes, the limit of a unix socket path: use a shorter path such as "+DefaultSocket)
	} else if c.Socket == "" || !strings.HasPrefix(c.Socket, "/") {
		add("DYNOSCOPE_SOCKET", "is not an absolute path: use a path such as "+DefaultSocket)
	}
	if c.BinaryURL != "" {
		if u, err := url.Parse(c.BinaryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("DYNOSCOPE_BINARY_URL", "is not an https URL: use https://host/path/to/dynoscope")
		}
	}
	if errs != nil {
		errs.ErrorFormat = formatErrors
	}
	return errs.ErrorOrNil()
}

const insecureMsg = "would send credentials over plain http to a host other than loopback: use https"

// shown is a variable's text as it may appear in messages: secrets masked,
// URL passwords redacted.
func (c *Config) shown(name string) string {
	for _, f := range fields {
		if f.name == name {
			return mask(f, c.raw[name])
		}
	}
	return ""
}

// mask hides a secret value ("****") and the passwords of any URLs in a value.
func mask(f fieldInfo, v string) string {
	if f.secret {
		if v == "" {
			return ""
		}
		return "****"
	}
	return redactURLs(v)
}
