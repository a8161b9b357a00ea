package testsupport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/stretchr/testify/require"
)

func pushBody(t *testing.T, labels string, lines ...string) []byte {
	t.Helper()
	s := push.Stream{Labels: labels}
	for i, l := range lines {
		s.Entries = append(s.Entries, push.Entry{Timestamp: time.Unix(100, int64(i)), Line: l,
			StructuredMetadata: push.LabelsAdapter{{Name: "trace_id", Value: "t1"}}})
	}
	req := push.PushRequest{Streams: []push.Stream{s}}
	raw, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

func post(t *testing.T, url string, body []byte, timeout time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.SetBasicAuth("u", "p")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLokiReceiver(t *testing.T) {
	r := NewLokiReceiver(t)
	r.RequireBasicAuth("u", "p")
	body := pushBody(t, `{app="demo", level="info"}`, "one", "two")

	r.FailNext(1, 429)
	r.FailNext(1, 400)
	r.HangNext(1)
	require.Equal(t, 429, post(t, r.URL, body, time.Second))
	require.Equal(t, 400, post(t, r.URL, body, time.Second))
	require.Equal(t, -1, post(t, r.URL, body, 100*time.Millisecond), "hangs until the client gives up")
	require.Empty(t, r.Entries())

	require.Equal(t, 204, post(t, r.URL, body, time.Second))
	es := r.WaitForEntries(t, 2, time.Second)
	require.Equal(t, LokiEntry{Labels: map[string]string{"app": "demo", "level": "info"}, Time: time.Unix(100, 0).UTC(), Line: "one",
		Metadata: map[string]string{"trace_id": "t1"}, Request: 4}, es[0])
	require.Equal(t, "two", r.WaitForLine(t, "tw", time.Second).Line)
	require.Equal(t, 4, r.Requests())

	resp, err := http.Get(r.srv.URL + "/entries")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got []LokiEntry
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Len(t, got, 2)
}

func TestLokiReceiverAuth(t *testing.T) {
	r := NewLokiReceiver(t)
	r.RequireBasicAuth("u", "other")
	require.Equal(t, 401, post(t, r.URL, pushBody(t, `{a="b"}`, "x"), time.Second))
}

func TestParseLokiLabels(t *testing.T) {
	got, err := ParseLokiLabels(`{a="1", b="with \"quote\", comma"}`)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "1", "b": `with "quote", comma`}, got)
	_, err = ParseLokiLabels(`a="1"`)
	require.Error(t, err)
}
