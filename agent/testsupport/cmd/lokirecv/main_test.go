package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

func TestLokirecvProcess(t *testing.T) {
	bin := testsupport.Binary(t, "agent/testsupport/cmd/lokirecv")
	out := filepath.Join(t.TempDir(), "entries.jsonl")
	cmd := exec.Command(bin, "-out", out)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	url = strings.TrimSpace(url)
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)

	req := push.PushRequest{Streams: []push.Stream{{Labels: `{app="demo"}`, Entries: []push.Entry{{Timestamp: time.Now(), Line: "hello"}}}}}
	raw, err := req.Marshal()
	require.NoError(t, err)
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)

	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), `"line":"hello"`)
	}, 5*time.Second, 10*time.Millisecond)
	resp, err = http.Get(strings.TrimSuffix(url, testsupport.LokiPushPath) + "/entries")
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	require.Contains(t, buf.String(), `"labels":{"app":"demo"}`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}
