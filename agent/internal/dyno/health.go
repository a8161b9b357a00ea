package dyno

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultProbeTimeout bounds one health probe.
const DefaultProbeTimeout = 5 * time.Second

// maxProbeBody is how much of a health response is read (then discarded),
// so the connection can be reused without reading an unbounded body.
const maxProbeBody = 64 << 10

// ProbeResult is the outcome of one health probe.
type ProbeResult struct {
	URL        string        // redacted
	Up         bool          // a 2xx or 3xx answer
	StatusCode int           // 0 when no answer
	Duration   time.Duration // until the headers arrived or the error
	Err        error         // transport error or non-2xx/3xx status; nil when Up
}

// Prober GETs the app's health URL. Safe for concurrent use.
type Prober struct {
	client  *http.Client
	timeout time.Duration
}

// NewProber returns a prober that gives each probe timeout (0 =
// DefaultProbeTimeout) and does not follow redirects: a 3xx is an answer,
// and up.
func NewProber(timeout time.Duration) *Prober {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	return &Prober{
		timeout: timeout,
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Probe GETs u once, within ctx and the prober's timeout.
func (p *Prober) Probe(ctx context.Context, u *url.URL) ProbeResult {
	res := ProbeResult{URL: u.Redacted()}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Err = fmt.Errorf("health %s: %w", res.URL, err)
		return res
	}
	req.Header.Set("User-Agent", "dynoscope-health")
	resp, err := p.client.Do(req)
	res.Duration = time.Since(start)
	if err != nil {
		// *url.Error repeats the URL unredacted; keep only its cause.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		res.Err = fmt.Errorf("health %s: %w", res.URL, err)
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	_ = resp.Body.Close()
	res.StatusCode = resp.StatusCode
	res.Up = resp.StatusCode >= 200 && resp.StatusCode < 400
	if !res.Up {
		res.Err = fmt.Errorf("health %s: status %d", res.URL, resp.StatusCode)
	}
	return res
}

// Probe GETs u once with DefaultProbeTimeout (for `dynoscope check`).
func Probe(ctx context.Context, u *url.URL) ProbeResult {
	return NewProber(0).Probe(ctx, u)
}
