package dyno

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20))) // body larger than read
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			<-release
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	defer close(release)
	base, err := url.Parse(srv.URL)
	require.NoError(t, err)
	at := func(path string) *url.URL {
		u := *base
		u.Path = path
		u.User = url.UserPassword("u", "S3cr3t-Pr0be")
		return &u
	}

	p := NewProber(200 * time.Millisecond)
	tests := []struct {
		path   string
		up     bool
		status int
		errHas string
	}{
		{"/ok", true, 200, ""},
		{"/redirect", true, 302, ""},
		{"/boom", false, 500, "status 500"},
		{"/slow", false, 0, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := p.Probe(context.Background(), at(tt.path))
			require.Equal(t, tt.up, r.Up)
			require.Equal(t, tt.status, r.StatusCode)
			require.Greater(t, r.Duration, time.Duration(0))
			require.Less(t, r.Duration, 2*time.Second)
			require.NotContains(t, r.URL, "S3cr3t-Pr0be")
			if tt.errHas == "" {
				require.NoError(t, r.Err)
				return
			}
			require.ErrorContains(t, r.Err, tt.errHas)
			require.NotContains(t, r.Err.Error(), "S3cr3t-Pr0be")
		})
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, err := url.Parse(srv.URL + "/health")
	require.NoError(t, err)
	srv.Close()
	r := Probe(context.Background(), u)
	require.False(t, r.Up)
	require.Zero(t, r.StatusCode)
	require.ErrorContains(t, r.Err, "connection refused")
}
