package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// acceptHeader prefers delimited protobuf, then OpenMetrics, then the text
// format 0.0.4, as Prometheus does.
const acceptHeader = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9,` +
	`application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,` +
	`text/plain;version=0.0.4;q=0.5,*/*;q=0.1`

// Errors of a scrape, checked with errors.Is.
var (
	ErrBodyLimit = errors.New("body over the size limit")
	ErrStatus    = errors.New("unexpected HTTP status")
	ErrParse     = errors.New("invalid exposition")
	ErrInsecure  = errors.New("credentials over plain HTTP to a host other than loopback")
)

// httpFetcher fetches one target. It reuses its buffers: not safe for
// concurrent use.
type httpFetcher struct {
	client    *http.Client
	url       *url.URL // without credentials
	user      *url.Userinfo
	redacted  string
	userAgent string
	timeout   string // X-Prometheus-Scrape-Timeout-Seconds
	limit     int64
	gz        *gzip.Reader
	buf       bytes.Buffer
}

func newHTTPFetcher(client *http.Client, u *url.URL, userAgent string, timeoutSeconds float64, limit int64) (*httpFetcher, error) {
	if err := checkURL(u); err != nil {
		return nil, err
	}
	plain := *u
	plain.User = nil
	return &httpFetcher{
		client:    client,
		url:       &plain,
		user:      u.User,
		redacted:  u.Redacted(),
		userAgent: userAgent,
		timeout:   strconv.FormatFloat(timeoutSeconds, 'f', -1, 64),
		limit:     limit,
	}, nil
}

// checkURL refuses what cannot be scraped safely.
func checkURL(u *url.URL) error {
	if u == nil {
		return errors.New("target: no URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("target %s: no host", u.Redacted())
	}
	if u.User != nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("target %s: %w (use https)", u.Redacted(), ErrInsecure)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fetch GETs the page and returns the body (valid until the next fetch) and
// its Content-Type.
func (f *httpFetcher) fetch(ctx context.Context) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url.String(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", f.userAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", f.timeout)
	if f.user != nil {
		pass, _ := f.user.Password()
		req.SetBasicAuth(f.user.Username(), pass)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return nil, "", err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%w: %s", ErrStatus, resp.Status)
	}

	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if f.gz == nil {
			f.gz, err = gzip.NewReader(resp.Body)
		} else {
			err = f.gz.Reset(resp.Body)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w: gzip: %w", ErrParse, err)
		}
		body = f.gz
	}
	f.buf.Reset()
	// The limit applies after decompression, so a gzip bomb stops here.
	n, err := f.buf.ReadFrom(io.LimitReader(body, f.limit+1))
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, "", fmt.Errorf("%w: %w", ErrParse, err)
		}
		return nil, "", err
	}
	if n > f.limit {
		return nil, "", fmt.Errorf("%w (%d bytes)", ErrBodyLimit, f.limit)
	}
	if f.buf.Cap() > 4*int(n)+(1<<20) {
		// Don't keep a huge buffer after one huge page.
		defer func() { f.buf = bytes.Buffer{} }()
	}
	return f.buf.Bytes(), resp.Header.Get("Content-Type"), nil
}
