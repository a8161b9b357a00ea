package local

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
	"github.com/brainbytesai/dynoscope/dashboards"
)

// Timing of the native end-to-end test, short so it runs in well under a
// minute; the compose and native stacks keep the configured values.
const (
	scrapeInterval  = "1s"
	evalInterval    = "1s"
	groupWait       = "1s"
	dataDeadline    = 60 * time.Second
	alertDeadline   = 45 * time.Second
	processStopWait = 10 * time.Second
)

// environments are the demo app's deployments in the native stack.
var environments = []string{"staging", "production"}

// TestNativeStack runs the native local stack (the configurations of
// scripts/local-native.sh render) with the real agent: two demo apps under
// `dynoscope run`, as staging and production, remote-writing to Debian's
// Prometheus, which evaluates the rules of ../alerts and sends to Debian's
// Alertmanager, which notifies a loopback webhook; logs go to a loopback
// Loki receiver. Then every dashboard query must return data and use only
// labels that arrived, and an alert must reach the webhook with its labels.
func TestNativeStack(t *testing.T) {
	tool(t, "prometheus", "apt-get install prometheus (Prometheus 2.42)")
	amBin := tool(t, "prometheus-alertmanager", "apt-get install prometheus-alertmanager (Alertmanager 0.25)")
	dynoscope := testsupport.Binary(t, "agent/cmd/dynoscope")
	demoapp := testsupport.Binary(t, "local/demoapp")

	hooks := newWebhook(t)
	loki := newLokiReceiver(t)
	amAddr := testsupport.FreeAddr(t)
	dir := renderNative(t, map[string]string{
		"ALERTMANAGER_ADDR": amAddr,
		"ALERTLOG_ADDR":     strings.TrimPrefix(hooks.URL, "http://"),
	})
	speedUp(t, filepath.Join(dir, "local", "alertmanager.yml"), "group_wait: 30s", "group_wait: "+groupWait)
	speedUp(t, filepath.Join(dir, "local", "prometheus.yml"), "evaluation_interval: 15s", "evaluation_interval: "+evalInterval)
	e2eRules, err := filepath.Abs("testdata/e2e.rules.yml")
	require.NoError(t, err)
	speedUp(t, filepath.Join(dir, "local", "prometheus.yml"), "rule_files:\n", "rule_files:\n  - "+e2eRules+"\n")

	startProcess(t, "alertmanager", nil, amBin,
		"--config.file="+filepath.Join(dir, "local", "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=")
	waitReady(t, "http://"+amAddr+"/-/ready")
	prom := testsupport.StartPrometheus(t, "--config.file="+filepath.Join(dir, "local", "prometheus.yml"))

	// Like a dyno, the apps get a memory limit (a cgroup), where the test may
	// create one; elsewhere dyno_memory_limit_bytes is absent, as the agent
	// promises for unlimited processes.
	procs, limited := dynoCgroup(t)
	for _, env := range environments {
		bin, args := dynoscope, []string{"run", "--", demoapp}
		if limited {
			bin, args = "/bin/sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, procs, dynoscope}, args...)
		}
		startProcess(t, "demo "+env, []string{
			"PORT=" + strconv.Itoa(testsupport.FreePort(t)),
			"ENVIRONMENT=" + env,
			"DYNOSCOPE_APP=demo",
			"DEMO_TRAFFIC=true",
			"GRAFANA_CLOUD_PROMETHEUS_URL=" + prom + testsupport.RemoteWritePath,
			"GRAFANA_CLOUD_LOKI_URL=" + loki.URL + "/loki/api/v1/push",
			"DYNOSCOPE_SCRAPE_INTERVAL=" + scrapeInterval,
			"DYNOSCOPE_SCRAPE_TIMEOUT=" + scrapeInterval,
			"DYNOSCOPE_STATUS_ADDR=" + testsupport.FreeAddr(t),
			"DYNOSCOPE_SOCKET=" + filepath.Join(dir, "dynoscope-"+env+".sock"),
			// What Heroku sets, for the deploy markers (dyno_info).
			"HEROKU_RELEASE_VERSION=v42",
			"HEROKU_SLUG_COMMIT=2f1e0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
		}, bin, args...)
	}

	// Wait until both environments' app, dyno and agent metrics arrived and a
	// rate over them can be computed.
	require.Eventually(t, func() bool {
		for _, expr := range []string{
			`count by (environment) (rate(http_request_duration_seconds_count{job="app", app="demo"}[1m]) > 0)`,
			`count by (environment) (dyno_memory_usage_bytes{app="demo"})`,
			`count by (environment) (rate(dynoscope_remote_write_samples_sent_total{app="demo"}[1m]) > 0)`,
		} {
			if len(queryQuiet(prom, expr)) < len(environments) {
				return false
			}
		}
		return true
	}, dataDeadline, 250*time.Millisecond, "the demo apps' metrics did not arrive in Prometheus")

	t.Run("every dashboard query returns data", func(t *testing.T) { testDashboardQueries(t, prom, limited) })
	t.Run("queries use only labels that arrived", func(t *testing.T) { testQueryLabels(t, prom, loki) })
	t.Run("alert reaches the webhook through each route", func(t *testing.T) { testAlertDelivery(t, hooks) })
}

// testDashboardQueries runs every PromQL query of every dashboard, variables
// substituted, and waits (with a deadline) until each returns data.
// Without a memory limit (no cgroup could be made), the queries of
// dyno_memory_limit_bytes must return nothing instead.
func testDashboardQueries(t *testing.T, prom string, limited bool) {
	boards, err := dashboards.LoadDir("../dashboards")
	require.NoError(t, err)
	type pending struct {
		q      dashboards.Query
		expr   string
		label  string
		reason string
	}
	var todo []*pending
	for _, d := range boards {
		for _, q := range d.Queries() {
			if q.Kind != dashboards.KindPrometheus {
				continue
			}
			expr, label := dashboards.PromQL(dashboards.Substitute(q.Expr, dashboards.TestValues))
			if !limited && strings.Contains(expr, "dyno_memory_limit_bytes") {
				result, err := query(prom, expr)
				require.NoError(t, err, q.Where)
				require.Empty(t, result, "%s: the apps have no memory limit here", q.Where)
				t.Logf("%s: no memory limit on this host, no data as expected", q.Where)
				continue
			}
			todo = append(todo, &pending{q: q, expr: expr, label: label})
		}
	}
	require.NotEmpty(t, todo)
	total := len(todo)
	deadline := time.Now().Add(dataDeadline)
	for len(todo) > 0 && time.Now().Before(deadline) {
		var left []*pending
		for _, p := range todo {
			result, err := query(prom, p.expr)
			switch {
			case err != nil:
				p.reason = err.Error()
			case len(result) == 0:
				p.reason = "no data"
			case p.label != "" && slices.ContainsFunc(result, func(s sample) bool { return s.Metric[p.label] == "" }):
				p.reason = "variable label " + p.label + " missing on a series"
			default:
				continue
			}
			left = append(left, p)
		}
		todo = left
		if len(todo) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	for _, p := range todo {
		t.Errorf("%s: %s\n  %s", p.q.Where, p.reason, p.expr)
	}
	t.Logf("%d PromQL queries, %d without data", total, len(todo))
}

// testQueryLabels: every label a PromQL query or variable uses is a label of
// some series in Prometheus (so the agent or the app sent it), and every
// label a LogQL query uses is a label of a stream the agent pushed.
func testQueryLabels(t *testing.T, prom string, loki *lokiReceiver) {
	arrived := map[string]bool{}
	for _, l := range labelNames(t, prom) {
		arrived[l] = true
	}
	boards, err := dashboards.LoadDir("../dashboards")
	require.NoError(t, err)
	var logql []string
	var logqlWhere []string
	for _, d := range boards {
		for _, q := range d.Queries() {
			expr := dashboards.Substitute(q.Expr, dashboards.TestValues)
			if q.Kind == dashboards.KindLoki {
				logql = append(logql, expr)
				logqlWhere = append(logqlWhere, q.Where)
				continue
			}
			promql, label := dashboards.PromQL(expr)
			_, labels, err := dashboards.PromQLNames(promql)
			require.NoError(t, err, q.Where)
			if label != "" {
				labels = append(labels, label)
			}
			for _, l := range labels {
				require.True(t, arrived[l], "%s uses label %q, which no series in Prometheus has", q.Where, l)
			}
		}
	}

	require.Eventually(t, func() bool { return len(loki.labelNames()) > 0 }, dataDeadline, 250*time.Millisecond, "no log stream reached the Loki receiver")
	streamLabels := loki.labelNames()
	t.Logf("log stream labels: %v", keys(streamLabels))
	results, err := dashboards.CheckLogQL(logql)
	require.NoError(t, err)
	for i, r := range results {
		require.Empty(t, r.Errors, logqlWhere[i])
		for _, l := range r.Labels {
			require.True(t, streamLabels[l], "%s uses label %q, which no pushed stream has", logqlWhere[i], l)
		}
	}
}

// testAlertDelivery waits for the e2e alert of each environment at the
// receivers its route names: production critical at pager and chat,
// staging at chat-staging.
func testAlertDelivery(t *testing.T, hooks *webhook) {
	want := map[string]string{"pager": "production", "chat": "production", "chat-staging": "staging"}
	require.Eventually(t, func() bool {
		for receiver, env := range want {
			if hooks.find(receiver, "DynoscopeE2EAppScraped", env) == nil {
				return false
			}
		}
		return true
	}, alertDeadline, 250*time.Millisecond, "alerts at the webhook: %v", hooks.summary())
	for receiver, env := range want {
		a := hooks.find(receiver, "DynoscopeE2EAppScraped", env)
		require.Equal(t, "firing", a.Status)
		require.Equal(t, "demo", a.Labels["app"], receiver)
		require.Equal(t, env, a.Labels["environment"], receiver)
		require.NotEmpty(t, a.Labels["instance"], receiver)
		wantSeverity := "warning"
		if env == "production" {
			wantSeverity = "critical"
		}
		require.Equal(t, wantSeverity, a.Labels["severity"], receiver)
		require.Equal(t, "demo ("+env+") is scraped", a.Annotations["summary"])
		require.Contains(t, a.Annotations["dashboard"], "/d/dynoscope-app/")
	}
}

// dynoMemoryLimit is the memory limit the test gives the demo apps: a
// Standard-1X dyno's.
const dynoMemoryLimit = 512 << 20

// dynoCgroup creates a memory cgroup limited to dynoMemoryLimit (cgroup v1
// or v2, where the test may: usually as root) and returns its cgroup.procs
// file, removing the cgroup when the test ends. ok is false where no cgroup
// can be made.
func dynoCgroup(t testing.TB) (procs string, ok bool) {
	t.Helper()
	name := fmt.Sprintf("dynoscope-test-%d", os.Getpid())
	try := func(parent, limitFile string) (string, bool) {
		if _, err := os.Stat(filepath.Join(parent, limitFile)); err != nil {
			return "", false
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", false
		}
		if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(dynoMemoryLimit)), 0o644); err != nil {
			_ = os.Remove(dir)
			return "", false
		}
		// Registered before the processes start: runs after they stopped.
		t.Cleanup(func() {
			require.Eventually(t, func() bool { return os.Remove(dir) == nil || os.IsNotExist(os.Remove(dir)) },
				processStopWait, 100*time.Millisecond, "remove cgroup %s", dir)
		})
		return filepath.Join(dir, "cgroup.procs"), true
	}
	if p, ok := try("/sys/fs/cgroup/memory", "memory.limit_in_bytes"); ok { // cgroup v1
		return p, true
	}
	if p, ok := try("/sys/fs/cgroup", "memory.max"); ok { // cgroup v2, memory controller enabled
		return p, true
	}
	t.Logf("no memory cgroup could be created: the demo apps run without a memory limit")
	return "", false
}

// speedUp replaces old by new in the file, failing if old is not there.
func speedUp(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old, path)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600))
}

// startProcess starts a command with env added to the environment in its
// own process group, stops the group with SIGTERM (then SIGKILL) when the
// test ends, as Heroku signals every process of a dyno, and logs its output
// if the test failed.
func startProcess(t testing.TB, name string, env []string, bin string, args ...string) {
	t.Helper()
	out := &testsupport.Buffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second // a leftover child must not keep Wait on the output pipe
	require.NoError(t, cmd.Start(), name)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(processStopWait):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left of the group
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitReady polls url until it answers 200.
func waitReady(t testing.TB, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url) //nolint:noctx // a loopback poll
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "%s not ready", url)
}

// sample is one element of an instant query's vector.
type sample struct {
	Metric map[string]string
	Value  [2]any
}

// query runs an instant query at Prometheus's now; errors are returned, so
// a query can be retried until a deadline.
func query(prom, expr string) ([]sample, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(prom + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %q: HTTP %d: %w", expr, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: HTTP %d: %s", expr, resp.StatusCode, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want vector", expr, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

func queryQuiet(prom, expr string) []sample {
	r, _ := query(prom, expr)
	return r
}

// labelNames lists every label name in the Prometheus TSDB.
func labelNames(t testing.TB, prom string) []string {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/labels") //nolint:noctx // a loopback query
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status)
	return r.Data
}

// webhookAlert is one alert of an Alertmanager webhook notification.
type webhookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// webhook is the loopback receiver of Alertmanager's notifications; the
// request path names the receiver (/pager, /chat, /chat-staging), as
// alertlog does in the compose stack.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex // covers alerts
	alerts map[string][]webhookAlert
}

func newWebhook(t testing.TB) *webhook {
	t.Helper()
	w := &webhook{alerts: map[string][]webhookAlert{}}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		receiver := strings.Trim(r.URL.Path, "/")
		w.alerts[receiver] = append(w.alerts[receiver], n.Alerts...)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) find(receiver, alertname, env string) *webhookAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts[receiver] {
		if a.Labels["alertname"] == alertname && a.Labels["environment"] == env {
			return &a
		}
	}
	return nil
}

func (w *webhook) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for receiver, alerts := range w.alerts {
		for _, a := range alerts {
			parts = append(parts, fmt.Sprintf("%s: %s %s", receiver, a.Labels["alertname"], a.Labels["environment"]))
		}
	}
	return strings.Join(parts, "; ")
}

// lokiReceiver is a loopback Loki push endpoint: it decodes the real wire
// format (snappy-compressed protobuf PushRequest) and records the label
// names of the streams that arrived.
type lokiReceiver struct {
	*httptest.Server
	mu     sync.Mutex // covers labels
	labels map[string]bool
}

func newLokiReceiver(t testing.TB) *lokiReceiver {
	t.Helper()
	l := &lokiReceiver{labels: map[string]bool{}}
	l.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/loki/api/v1/push" {
			http.NotFound(rw, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(rw, "snappy: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req push.PushRequest
		if err := req.Unmarshal(raw); err != nil {
			http.Error(rw, "protobuf: "+err.Error(), http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range req.Streams {
			ls, err := parser.ParseMetric(s.Labels)
			if err != nil {
				http.Error(rw, "labels: "+err.Error(), http.StatusBadRequest)
				return
			}
			for _, lb := range ls {
				l.labels[lb.Name] = true
			}
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *lokiReceiver) labelNames() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.labels))
	for k, v := range l.labels {
		out[k] = v
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
