package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestRoutesMetricsAndLogs(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	a := newApp("staging", slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	srv := httptest.NewServer(a.routes(reg))
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/health")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"healthy","environment":"staging"}`, body)
	code, _ = get("/boom")
	require.Equal(t, 500, code)
	code, _ = get("/api/ask")
	require.Equal(t, 200, code)

	require.Equal(t, 3, testutil.CollectAndCount(a.duration))
	_, page := get("/metrics")
	require.Contains(t, page, `http_request_duration_seconds_count{method="GET",path="/boom",status_code="500"} 1`)

	var levels []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry struct{ Level string }
		require.NoError(t, json.Unmarshal([]byte(line), &entry), line)
		levels = append(levels, entry.Level)
	}
	require.Equal(t, []string{"DEBUG", "ERROR", "INFO"}, levels, "a level per request, /metrics not logged")
}

func TestLoadSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerLoadSeries(reg, 250)
	n, err := testutil.GatherAndCount(reg, "demo_load_series")
	require.NoError(t, err)
	require.Equal(t, 250, n)
}
