package testsupport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PrometheusReadyTimeout bounds how long StartPrometheus waits for /-/ready.
const PrometheusReadyTimeout = 30 * time.Second

// RemoteWritePath is where Prometheus' remote-write receiver listens.
const RemoteWritePath = "/api/v1/write"

// prometheusConfig is the smallest configuration: no scrape jobs, so the
// TSDB holds only what a test remote-writes.
const prometheusConfig = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"

// StartPrometheus starts Debian's Prometheus (2.42 here) with its
// remote-write receiver on a free 127.0.0.1 port and a TSDB in a temporary
// directory, waits for /-/ready, and stops it when the test ends. It returns
// the base URL ("http://127.0.0.1:PORT"); remote write goes to
// baseURL+RemoteWritePath. extraArgs are appended to the command line
// (e.g. "--enable-feature=...", or "--config.file=..." to replace the empty
// configuration: an extra flag replaces the default of the same name, as
// Prometheus refuses a repeated flag). A missing binary fails the test: it
// is never skipped.
func StartPrometheus(t testing.TB, extraArgs ...string) (baseURL string) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus binary not found in PATH: install it: apt-get install -y prometheus")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(prometheusConfig), 0o600); err != nil {
		t.Fatalf("prometheus config: %v", err)
	}
	var lastErr error
	for range 3 { // a free port can be taken between finding and binding it
		addr := FreeAddr(t)
		args := withDefaults([]string{
			"--web.enable-remote-write-receiver",
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--config.file=" + cfg,
			"--log.level=warn",
		}, extraArgs)
		baseURL, lastErr = startPrometheus(t, bin, addr, args)
		if lastErr == nil {
			return baseURL
		}
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return ""
}

// withDefaults returns the defaults not named in extra, then extra.
func withDefaults(defaults, extra []string) []string {
	name := func(arg string) string {
		if i := strings.IndexByte(arg, '='); i >= 0 {
			return arg[:i]
		}
		return arg
	}
	given := map[string]bool{}
	for _, a := range extra {
		given[name(a)] = true
	}
	var out []string
	for _, d := range defaults {
		if !given[name(d)] {
			out = append(out, d)
		}
	}
	return append(out, extra...)
}

func startPrometheus(t testing.TB, bin, addr string, args []string) (string, error) {
	t.Helper()
	out := &promOutput{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	baseURL := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), PrometheusReadyTimeout)
	defer cancel()
	for {
		if ready(ctx, baseURL) {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus output:\n%s", out.String())
				}
			})
			return baseURL, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("prometheus exited before ready: %s", out.String())
		case <-ctx.Done():
			stop()
			return "", fmt.Errorf("prometheus not ready at %s within %s: %s", baseURL, PrometheusReadyTimeout, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, baseURL string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/-/ready", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// VectorSample is one element of an instant query's result.
type VectorSample struct {
	Metric map[string]string // labels, __name__ included
	Time   time.Time
	Value  float64
}

// QueryPrometheus runs an instant query (at the server's now) against the
// Prometheus at baseURL and returns the vector it answers. A failed request
// or a non-vector result fails the test; an empty result is returned as
// such, so wrap it in require.Eventually to wait for data to arrive.
func QueryPrometheus(t testing.TB, baseURL, expr string) []VectorSample {
	t.Helper()
	v, err := queryPrometheus(baseURL, expr)
	if err != nil {
		t.Fatalf("query %q: %v", expr, err)
	}
	return v
}

func queryPrometheus(baseURL, expr string) ([]VectorSample, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(baseURL + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %w: %s", resp.StatusCode, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", r.Data.ResultType)
	}
	out := make([]VectorSample, 0, len(r.Data.Result))
	for _, e := range r.Data.Result {
		ts, ok := e.Value[0].(float64)
		s, ok2 := e.Value[1].(string)
		if !ok || !ok2 {
			return nil, errors.New("malformed sample in result")
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", s, err)
		}
		out = append(out, VectorSample{Metric: e.Metric, Time: time.UnixMilli(int64(ts * 1000)), Value: v})
	}
	return out, nil
}

type promOutput = Buffer
