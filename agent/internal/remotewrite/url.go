package remotewrite

import (
	"errors"
	"fmt"
	"net/url"
)

// DefaultPath is appended to a remote write URL that has no path: Grafana
// Cloud's (and Mimir's) push endpoint.
const DefaultPath = "/api/prom/push"

// ErrInsecureCredentials is returned by New when credentials would be sent
// over plain http to a host other than loopback.
var ErrInsecureCredentials = errors.New("credentials over plain http to a non-loopback host: use https")

// NormalizeURL returns a copy of u with DefaultPath as its path when it has
// none ("" or "/"); any other path is kept as given.
func NormalizeURL(u *url.URL) *url.URL {
	c := *u
	if c.Path == "" || c.Path == "/" {
		c.Path, c.RawPath = DefaultPath, ""
	}
	return &c
}

// checkURL validates the endpoint and the credentials that will go to it.
func checkURL(u *url.URL, withCredentials bool) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("remote write URL %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("remote write URL %s: no host", u.Redacted())
	}
	if withCredentials && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("remote write URL %s: %w", u.Redacted(), ErrInsecureCredentials)
	}
	return nil
}
