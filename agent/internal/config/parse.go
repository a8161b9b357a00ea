package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// The parsed types also decode as envconfig.Decoder, so they can be used in
// other envconfig structs.
var (
	_ envconfig.Decoder = (*Size)(nil)
	_ envconfig.Decoder = (*RateLimit)(nil)
)

// Size is a byte count written as plain bytes or with a KiB, MiB or GiB
// suffix (also B, KB/MB/GB as powers of 1024, as GOMEMLIMIT reads them).
type Size int64

// Decode implements envconfig.Decoder.
func (s *Size) Decode(v string) error {
	n, err := ParseSize(v)
	*s = Size(n)
	return err
}

// Decode implements envconfig.Decoder.
func (r *RateLimit) Decode(v string) error {
	rl, err := ParseRateLimit(v)
	*r = rl
	return err
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1},
}

// ParseSize parses "16MiB", "256KiB", "1GiB" or "1048576" into bytes.
func ParseSize(s string) (int64, error) {
	errSize := errors.New("is not a size: use bytes or KiB/MiB such as 16MiB or 262144")
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) || n*float64(mult) > math.MaxInt64/2 {
		return 0, errSize
	}
	if mult == 1 && n != math.Trunc(n) {
		return 0, errSize
	}
	return int64(n * float64(mult)), nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("is not a boolean: use true or false")
}

// parseURL parses a Grafana Cloud endpoint: http or https with a host; no
// path gets pushPath appended.
func parseURL(s, pushPath string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("is not an http(s) URL: use https://host%s", pushPath)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = pushPath
		u.RawPath = ""
	}
	return u, nil
}

var jobRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.-]*$`)

// ParseTargets parses DYNOSCOPE_SCRAPE_TARGETS: comma-separated "URL" or
// "job=URL". The first bare URL gets job "app" (unless a target already
// names it); later bare URLs get their host:port. A URL with no path gets
// /metrics. Jobs must be distinct. Empty means no target.
func ParseTargets(s string) ([]Target, error) {
	var out []Target
	seen := map[string]bool{}
	type entry struct{ job, raw string }
	var entries []entry
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var e entry
		if job, rest, ok := strings.Cut(item, "="); ok && jobRe.MatchString(job) {
			e = entry{job, rest}
			seen[job] = true
		} else {
			e = entry{"", item}
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		u, err := url.Parse(e.raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("has %q, not an http(s) URL: use comma-separated URL or job=URL such as app=http://127.0.0.1:5000/metrics", redactURLs(e.raw))
		}
		if u.Path == "" {
			u.Path = DefaultMetricsPath
		}
		job := e.job
		if job == "" {
			job = u.Host
			if !seen[DefaultJob] {
				job = DefaultJob
			}
			if seen[job] {
				return nil, fmt.Errorf("has job %q twice: give each target a distinct job=URL", job)
			}
			seen[job] = true
		}
		for _, t := range out {
			if t.Job == job {
				return nil, fmt.Errorf("has job %q twice: give each target a distinct job=URL", job)
			}
		}
		out = append(out, Target{Job: job, URL: u})
	}
	return out, nil
}

var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are set by the agent; the value says what to use instead.
var reservedLabels = map[string]string{
	"app":         "DYNOSCOPE_APP",
	"environment": "ENVIRONMENT",
	"platform":    "DYNOSCOPE_PLATFORM",
	"instance":    "DYNOSCOPE_INSTANCE",
	"job":         "DYNOSCOPE_SCRAPE_TARGETS (job=URL)",
}

// ParseLabels parses "k=v,k=v" extra labels. Names follow Prometheus
// ([a-zA-Z_][a-zA-Z0-9_]*, no leading __); values are non-empty. dyno_type
// may be set (it replaces the derived one); app, environment, platform,
// instance and job have their own variables.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || v == "":
			return nil, fmt.Errorf("has %q, not name=value: use k=v,k=v such as team=payments,region=eu", item)
		case !labelNameRe.MatchString(k) || strings.HasPrefix(k, "__"):
			return nil, fmt.Errorf("has label name %q: use letters, digits and _ (not starting with a digit or __)", k)
		case reservedLabels[k] != "":
			return nil, fmt.Errorf("sets %s, which the agent sets: use %s", k, reservedLabels[k])
		case out[k] != "":
			return nil, fmt.Errorf("sets %s twice: give each label once", k)
		}
		out[k] = v
	}
	return out, nil
}

func parseGlobs(s string) ([]string, error) {
	var out []string
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("has %q, not a glob: use comma-separated globs such as log/*.log,/tmp/app.log", g)
		}
		out = append(out, g)
	}
	return out, nil
}

// ParseRateLimit parses DYNOSCOPE_LOG_RATE_LIMIT: "N", "N/s" or "N/m"
// (lines per second or minute), optionally followed by ",burst=B". The
// burst defaults to N (one second's, or one minute's, worth). Empty or
// "none" means no limit.
func ParseRateLimit(s string) (RateLimit, error) {
	errRate := errors.New("is not a rate: use lines per second or minute such as 100/s, 100/s,burst=500 or 600/m; empty for no limit")
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return RateLimit{}, nil
	}
	rate, burstPart, hasBurst := strings.Cut(s, ",")
	per := 1.0
	if n, unit, ok := strings.Cut(rate, "/"); ok {
		switch strings.TrimSpace(unit) {
		case "s":
		case "m":
			per = 60
		default:
			return RateLimit{}, errRate
		}
		rate = n
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return RateLimit{}, errRate
	}
	r := RateLimit{PerSecond: n / per, Burst: max(1, int(math.Ceil(n)))}
	if hasBurst {
		k, v, ok := strings.Cut(strings.TrimSpace(burstPart), "=")
		b, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || strings.TrimSpace(k) != "burst" || err != nil || b < 1 {
			return RateLimit{}, errRate
		}
		r.Burst = b
	}
	return r, nil
}

// insecureCredentials reports whether a request to u would carry
// credentials (in the URL or, with auth, as basic auth) over plain http to a
// host other than loopback.
func insecureCredentials(u *url.URL, auth bool) bool {
	if u.Scheme != "http" || (!auth && u.User == nil) {
		return false
	}
	return !IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether host is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// CheckLoopbackAddr returns an error unless addr is host:port with a
// loopback host (127.0.0.1, ::1 or localhost).
func CheckLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("status address %q: %w", addr, err)
	}
	if !IsLoopbackHost(host) {
		return fmt.Errorf("status address %q is not on loopback", addr)
	}
	return nil
}

// redactURLs replaces the password of every URL in a comma-separated value
// with "xxxxx", as url.URL.Redacted does, without requiring it to parse.
func redactURLs(v string) string {
	if !strings.Contains(v, "://") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		_, after, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		start := len(p) - len(after)
		end := strings.IndexAny(after, "/?#")
		if end < 0 {
			end = len(after)
		}
		auth := after[:end]
		at := strings.LastIndex(auth, "@")
		if at < 0 {
			continue
		}
		user, _, hasPass := strings.Cut(auth[:at], ":")
		if !hasPass {
			continue
		}
		parts[i] = p[:start] + user + ":xxxxx" + after[at:]
	}
	return strings.Join(parts, ",")
}
