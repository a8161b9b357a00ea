package dyno

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*/metrics.prom")

// TestCollectorTrees collects from fake /proc and /sys/fs/cgroup trees and
// compares with testdata/<case>/metrics.prom.
func TestCollectorTrees(t *testing.T) {
	env := envFunc(map[string]string{"HEROKU_RELEASE_VERSION": "v42", "HEROKU_SLUG_COMMIT": "2c3a0b24069af49b3de35b8e8c26765c1dba9ff0"})
	for _, tc := range []string{"v2", "v2-nested", "v2-unlimited", "v1", "v1-unlimited", "none", "empty"} {
		t.Run(tc, func(t *testing.T) {
			dir := filepath.Join("testdata", tc)
			c := NewCollector(Options{ProcRoot: filepath.Join(dir, "proc"), CgroupRoot: filepath.Join(dir, "cgroup"), Getenv: env})
			golden := filepath.Join(dir, "metrics.prom")
			if *update {
				reg := prometheus.NewPedanticRegistry()
				reg.MustRegister(c)
				mfs, err := reg.Gather()
				require.NoError(t, err)
				var b strings.Builder
				for _, mf := range mfs {
					_, err := expfmtWrite(&b, mf)
					require.NoError(t, err)
				}
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
			}
			f, err := os.Open(golden)
			require.NoError(t, err)
			defer f.Close()
			require.NoError(t, testutil.CollectAndCompare(c, f))
		})
	}
}

// TestCollectorThisMachine reads the real /proc and /sys/fs/cgroup: whatever
// is there, it must not panic and must report processes and dyno_info.
func TestCollectorThisMachine(t *testing.T) {
	c := NewCollector(Options{})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = metricValue(mf.GetMetric()[0])
		t.Logf("%s %v", mf.GetName(), got[mf.GetName()])
	}
	require.Equal(t, 1.0, got["dyno_info"])
	require.Greater(t, got["dyno_processes"], 0.0)
	require.Greater(t, got["dyno_cpu_seconds_total"], 0.0)
	require.Greater(t, got["dyno_start_time_seconds"], 1e9)
	require.Less(t, got["dyno_start_time_seconds"], float64(time.Now().Unix())+1)
}

func TestCollectorHealth(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/health")
	require.NoError(t, err)
	c := NewCollector(Options{ProcRoot: "testdata/empty/proc", CgroupRoot: "testdata/empty/cgroup", HealthURL: u, HealthTimeout: time.Second})

	const want = `
# HELP dyno_health_status_code HTTP status of the last health probe; 0 when there was no answer.
# TYPE dyno_health_status_code gauge
dyno_health_status_code %d
# HELP dyno_health_up 1 when the app's health URL answered 2xx or 3xx, else 0.
# TYPE dyno_health_up gauge
dyno_health_up %d
`
	for _, tc := range []struct{ status, up int }{{200, 1}, {302, 1}, {503, 0}} {
		status = tc.status
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(sprintf(want, tc.status, tc.up)),
			"dyno_health_up", "dyno_health_status_code"))
	}
	srv.Close()
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(sprintf(want, 0, 0)),
		"dyno_health_up", "dyno_health_status_code"))
	require.Equal(t, 4, testutil.CollectAndCount(c, "dyno_info", "dyno_health_up", "dyno_health_status_code", "dyno_health_duration_seconds"))
}

func BenchmarkCollect(b *testing.B) {
	for _, tc := range []struct{ name, proc, cgroup string }{
		{"testdata-v2", "testdata/v2/proc", "testdata/v2/cgroup"},
		{"this-machine", "/proc", "/sys/fs/cgroup"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := NewCollector(Options{ProcRoot: tc.proc, CgroupRoot: tc.cgroup})
			ch := make(chan prometheus.Metric, 16)
			b.ReportAllocs()
			for b.Loop() {
				c.Collect(ch)
				for len(ch) > 0 {
					<-ch
				}
			}
		})
	}
}
