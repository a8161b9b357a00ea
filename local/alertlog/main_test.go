package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHandlerLogsEachAlert(t *testing.T) {
	var out bytes.Buffer
	srv := httptest.NewServer(handler(slog.New(slog.NewJSONHandler(&out, nil))))
	defer srv.Close()

	body := `{"receiver":"pager","status":"firing","alerts":[
		{"status":"firing","labels":{"alertname":"AppDown","environment":"production","severity":"critical"},
		 "annotations":{"summary":"demo is down","dashboard":"/d/dynoscope-app?viewPanel=11"},"startsAt":"2026-01-01T00:00:00Z"},
		{"status":"firing","labels":{"alertname":"AppDown","environment":"production","instance":"web.2"},"annotations":{}}]}`
	resp, err := http.Post(srv.URL+"/pager", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, "alert", first["msg"])
	require.Equal(t, "pager", first["route"])
	require.Equal(t, "demo is down", first["summary"])
	require.Equal(t, "critical", first["labels"].(map[string]any)["severity"])
}

func TestHandlerRejectsInvalid(t *testing.T) {
	srv := httptest.NewServer(handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/chat", "application/json", strings.NewReader("{"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp, err = http.Get(srv.URL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
