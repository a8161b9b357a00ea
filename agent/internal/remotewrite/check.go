package remotewrite

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// CheckMetric is the name of the sample `dynoscope check` sends.
const CheckMetric = "dynoscope_check"

// CheckResult is the outcome of one test request.
type CheckResult struct {
	Endpoint   string        // redacted URL
	StatusCode int           // 0 when there was no HTTP answer
	Latency    time.Duration // of the request
	Body       string        // start of an error response body, truncated
	Err        error         // nil when the remote accepted the sample
}

// Check sends one sample, CheckMetric{labels...} = 1 at the current time,
// synchronously and without retries, for `dynoscope check`; labels are the
// identity labels (without __name__). It does not touch the queue or the
// metrics. In dry run it prints the sample and sends nothing. Safe to call
// at any time.
func (w *Writer) Check(ctx context.Context, labels series.Labels) CheckResult {
	ls := append(series.Labels{{Name: series.MetricName, Value: CheckMetric}}, labels...)
	ls.Sort()
	res := CheckResult{Endpoint: w.endpoint}
	ls, ok := validLabels(ls)
	if !ok {
		res.Err = errors.New("remote write check: invalid labels")
		return res
	}
	s := []series.Sample{{Labels: ls, T: w.opts.Now().UnixMilli(), V: 1}}
	enc := newEncoder() // the Writer's encoder belongs to Append
	if w.opts.DryRun != nil {
		start := time.Now()
		_, res.Err = w.opts.DryRun.Write(enc.encodeText(s))
		res.Latency = time.Since(start)
		return res
	}
	r, err := w.client.send(ctx, enc.encodeCompressed(s))
	res.StatusCode, res.Latency, res.Body, res.Err = r.statusCode, r.duration, r.body, err
	return res
}

// Hint turns a failed check into advice for the operator ("" when there is
// none to give).
func Hint(r CheckResult) string {
	switch r.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "check GRAFANA_CLOUD_PROMETHEUS_USER (the instance ID, a number) and GRAFANA_CLOUD_PROMETHEUS_PASSWORD (an access policy token with metrics:write)"
	case http.StatusNotFound:
		return "check GRAFANA_CLOUD_PROMETHEUS_URL: it must end in " + DefaultPath + " (copy it from the Prometheus details page of your Grafana Cloud stack)"
	case http.StatusTooManyRequests:
		return "rate limited: the stack is over its ingestion limit; reduce series with DYNOSCOPE_METRICS_DROP or DYNOSCOPE_MAX_SERIES"
	}
	if r.StatusCode >= 500 {
		return "the endpoint has a problem of its own; the agent retries these, try again later"
	}
	if r.Err == nil {
		return ""
	}
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
		netErr  net.Error
	)
	switch {
	case errors.Is(r.Err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens at that host and port; check GRAFANA_CLOUD_PROMETHEUS_URL"
	case errors.As(r.Err, &dnsErr):
		return "the host name does not resolve; check GRAFANA_CLOUD_PROMETHEUS_URL"
	case errors.As(r.Err, &certErr), errors.As(r.Err, &unkAuth), errors.As(r.Err, &hostErr):
		return "TLS certificate not trusted for that host; check the URL's host name (TLS is always verified)"
	case errors.As(r.Err, &recErr), strings.Contains(r.Err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS handshake failed: the endpoint does not speak https there; check the URL's scheme and port"
	case errors.Is(r.Err, context.DeadlineExceeded), errors.As(r.Err, &netErr) && netErr.Timeout():
		return "timed out: the endpoint accepted no request in time; check the URL and the network"
	}
	return ""
}
