package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody is how much of an error response's body is kept for logs,
// status and `dynoscope check`.
const maxErrorBody = 512

// RecoverableError is a failed request that may succeed if sent again: a
// network error (refused, reset, timeout), a 5xx or a 429. Any other failure
// (a 4xx, a 3xx) is final and the batch is dropped. Like Prometheus'
// storage/remote RecoverableError.
type RecoverableError struct {
	Err error
	// RetryAfter is the server's Retry-After (seconds or HTTP date) converted
	// to a wait; 0 when absent, in which case the backoff decides.
	RetryAfter time.Duration
}

func (e *RecoverableError) Error() string { return e.Err.Error() }
func (e *RecoverableError) Unwrap() error { return e.Err }

// StatusError is a non-2xx answer; Body is the start of the response body,
// truncated, with the password (if any) masked. Headers are never kept.
type StatusError struct {
	Endpoint   string // redacted URL
	StatusCode int
	Body       string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("remote write %s: HTTP %d: %s", e.Endpoint, e.StatusCode, e.Body)
}

// sender is the Writer's seam to the wire: it takes an already encoded
// and compressed WriteRequest (so a retry resends identical bytes), like
// Prometheus' storage/remote WriteClient.
type sender interface {
	send(ctx context.Context, body []byte) (response, error)
}

var _ sender = (*client)(nil)

// client sends already-encoded WriteRequests over HTTP. Safe for
// concurrent use.
type client struct {
	url       *url.URL // without user info
	endpoint  string   // url.Redacted(), for errors and logs
	user      string
	password  string
	userAgent string
	timeout   time.Duration
	http      *http.Client
	now       func() time.Time
}

// response is what one request produced, for metrics and `check`.
type response struct {
	statusCode int // 0: no response
	body       string
	duration   time.Duration
}

// send POSTs one compressed WriteRequest. The error is a *RecoverableError
// when retrying may help; it never contains credentials or headers.
func (c *client) send(ctx context.Context, body []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url.String(), bytes.NewReader(body))
	if err != nil {
		return response{}, fmt.Errorf("remote write %s: %w", c.endpoint, err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", c.userAgent)
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		res := response{duration: time.Since(start)}
		return res, &RecoverableError{Err: fmt.Errorf("remote write %s: %w", c.endpoint, c.scrub(err))}
	}
	defer resp.Body.Close()
	res := response{statusCode: resp.StatusCode}
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
		res.duration = time.Since(start)
		return res, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.duration = time.Since(start)
	res.body = c.truncate(raw)
	serr := &StatusError{Endpoint: c.endpoint, StatusCode: resp.StatusCode, Body: res.body}
	if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
		return res, &RecoverableError{Err: serr, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now())}
	}
	return res, serr
}

// truncate makes a response body safe to log: at most maxErrorBody bytes,
// trimmed, the password masked should the server echo it.
func (c *client) truncate(raw []byte) string {
	s := string(raw)
	cut := len(s) > maxErrorBody
	if cut {
		s = s[:maxErrorBody]
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if c.password != "" {
		s = strings.ReplaceAll(s, c.password, "xxxxx")
	}
	if cut {
		s += "…"
	}
	return s
}

// scrub masks the password in a transport error (net/http already strips
// it from URLs; this covers anything else that might quote it).
func (c *client) scrub(err error) error {
	if c.password == "" || !strings.Contains(err.Error(), c.password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.password, "xxxxx"))
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 (let the backoff decide) when absent, invalid or past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// isLoopback reports whether host (no port) is localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
