package selfmon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// syncBuffer collects output that is written and read at once.
type syncBuffer = testsupport.Buffer

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	reg := NewRegistry("1.2.3")
	status := func() any { return map[string]any{"metrics": map[string]int{"queue_bytes": 42}, "ok": true} }
	addr := testsupport.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, reg, status, slog.New(slog.DiscardHandler)) }()

	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)

	code, body := get(t, base+"/")
	require.Equal(t, 200, code)
	require.Contains(t, body, "/metrics")

	code, body = get(t, base+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, `dynoscope_build_info{version="1.2.3"} 1`)
	require.Contains(t, body, "process_resident_memory_bytes")

	code, body = get(t, base+"/status")
	require.Equal(t, 200, code)
	require.Equal(t, "{\n  \"metrics\": {\n    \"queue_bytes\": 42\n  },\n  \"ok\": true\n}\n", body)

	code, _ = get(t, base+"/nope")
	require.Equal(t, 404, code)
	resp, err := http.Post(base+"/status", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	_, err = http.Get(base + "/")
	require.Error(t, err, "listener closed")
}

func TestServeRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9358", ":9358", "192.0.2.1:9358", "example.com:9358", "9358"} {
		t.Run(addr, func(t *testing.T) {
			err := Serve(context.Background(), addr, NewRegistry("x"), func() any { return nil }, nil)
			require.ErrorIs(t, err, ErrNotLoopback)
			require.ErrorContains(t, err, "DYNOSCOPE_STATUS_ADDR=\""+addr+"\" must be a 127.0.0.1 address")
		})
	}
}

func TestServeOff(t *testing.T) {
	require.NoError(t, Serve(context.Background(), "", NewRegistry("x"), func() any { return nil }, nil))
}

func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, Serve(ctx, ln.Addr().String(), NewRegistry("x"), func() any { return nil }, logger))
	require.NoError(t, ctx.Err(), "returned at once, not at the deadline")
	require.Contains(t, logs.String(), "status server off")
	require.Contains(t, logs.String(), "component=selfmon")
	require.Contains(t, logs.String(), "address already in use")
}

func TestStatusError(t *testing.T) {
	h := Handler(NewRegistry("x"), func() any { return map[string]any{"bad": func() {}} })
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	code, body := get(t, "http://"+ln.Addr().String()+"/status")
	require.Equal(t, 500, code)
	require.Contains(t, body, "status: json: unsupported type")
}

func TestBuildInfo(t *testing.T) {
	require.NoError(t, testutil.CollectAndCompare(BuildInfo("v0.1.0"), strings.NewReader(`
# HELP dynoscope_build_info `+buildInfoHelp()+`
# TYPE dynoscope_build_info gauge
dynoscope_build_info{version="v0.1.0"} 1
`)))
	_, err := NewRegistry("v").Gather()
	require.NoError(t, err)
}
