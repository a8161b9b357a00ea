package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/common/model"
)

// CheckResult is the outcome of one test push, for `dynoscope check`.
type CheckResult struct {
	URL     string        `json:"url"` // redacted
	OK      bool          `json:"ok"`
	Status  int           `json:"status,omitempty"` // HTTP status, 0 if none
	Latency time.Duration `json:"latency"`
	Err     string        `json:"error,omitempty"`
	Hint    string        `json:"hint,omitempty"`
}

// String is one line for the check report.
func (r CheckResult) String() string {
	if r.OK {
		return fmt.Sprintf("loki %s: ok (%d in %s)", r.URL, r.Status, r.Latency.Round(time.Millisecond))
	}
	s := fmt.Sprintf("loki %s: %s", r.URL, r.Err)
	if r.Hint != "" {
		s += " (" + r.Hint + ")"
	}
	return s
}

// Check pushes one test line (stream="dynoscope_check", level="info") to
// Loki directly, in the same wire format as the client, and reports the
// status, latency and a hint on failure. In dry run it pushes nothing.
func (p *Pipeline) Check(ctx context.Context) CheckResult {
	o := p.opts
	if o.DryRun != nil {
		return CheckResult{OK: true, Hint: "dry run: nothing pushed"}
	}
	if o.URL == nil {
		return CheckResult{OK: o.DryRun != nil, Err: "no GRAFANA_CLOUD_LOKI_URL", Hint: "set GRAFANA_CLOUD_LOKI_URL, _USER and _PASSWORD, or DYNOSCOPE_DRY_RUN=true"}
	}
	res := CheckResult{URL: o.URL.Redacted()}
	if err := checkURL(o); err != nil {
		res.Err, res.Hint = err.Error(), "use the https URL Grafana Cloud shows"
		return res
	}
	ls := p.base.Clone()
	ls["stream"], ls["level"] = "dynoscope_check", LevelInfo
	req := push.PushRequest{Streams: []push.Stream{{
		Labels:  ls.String(),
		Entries: []push.Entry{{Timestamp: o.Now(), Line: "dynoscope check: test line from " + string(ls[model.LabelName("instance")])}},
	}}}
	raw, err := req.Marshal()
	if err != nil {
		res.Err = fmt.Sprintf("encode: %v", err)
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, o.SendTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL.String(), bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("User-Agent", "dynoscope-check")
	if o.User != "" || o.Password != "" {
		hr.SetBasicAuth(o.User, o.Password)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(hr)
	res.Latency = time.Since(start)
	if err != nil {
		res.Err = strings.ReplaceAll(err.Error(), o.URL.String(), res.URL)
		res.Hint = netHint(err)
		return res
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	res.Status = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		res.OK = true
		return res
	}
	res.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	res.Hint = statusHint(resp.StatusCode)
	return res
}

func statusHint(code int) string {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "check GRAFANA_CLOUD_LOKI_USER (the numeric Loki user ID) and GRAFANA_CLOUD_LOKI_PASSWORD (an access policy token with logs:write)"
	case code == http.StatusNotFound:
		return "check GRAFANA_CLOUD_LOKI_URL: the push path is /loki/api/v1/push (added when the URL has no path)"
	case code == http.StatusTooManyRequests:
		return "Loki is rate limiting: the log budget (DYNOSCOPE_LOG_RATE_LIMIT, _LOG_MIN_LEVEL, _LOG_DROP) can lower the volume"
	case code == http.StatusBadRequest:
		return "Loki refused the entry: see the message"
	case code >= 500:
		return "Loki is failing; the agent retries, nothing to change"
	}
	return ""
}

func netHint(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: check the host and port of GRAFANA_CLOUD_LOKI_URL"
	case errors.As(err, &dnsErr):
		return "unknown host: check GRAFANA_CLOUD_LOKI_URL"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time: check the URL and the network"
	}
	return "check GRAFANA_CLOUD_LOKI_URL and the network"
}
