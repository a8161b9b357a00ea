package remotewrite

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// TestRealPrometheus sends to Debian's Prometheus 2.42 remote-write
// receiver and reads back through its query API what arrived.
func TestRealPrometheus(t *testing.T) {
	base := testsupport.StartPrometheus(t)
	u, err := url.Parse(base + testsupport.RemoteWritePath)
	require.NoError(t, err)
	w, m, logs := testWriter(t, u, func(o *Options) { o.MaxSamplesPerSend = 100 })

	res := w.Check(context.Background(), series.Labels{{Name: "app", Value: "shop"}})
	require.NoError(t, res.Err)
	require.Equal(t, 204, res.StatusCode)

	run(t, w)
	now := time.Now().Add(-time.Minute)
	var in []series.Sample
	for step := range 3 { // three scrapes, 15s apart, of 150 series
		for i := range 150 {
			in = append(in, sample("rw_test_value", now.Add(time.Duration(step)*15*time.Second).UnixMilli(), float64(i*10+step),
				"app", "shop", "instance", "web.1", "job", "app", "series", itoa(int64(i))))
		}
	}
	w.Append(in) // 450 samples: 4 batches of 100 and 50 pending, flushed by Shutdown
	sum := w.Shutdown(context.Background())
	require.EqualValues(t, 450, sum.Sent, logs.String())
	require.Zero(t, sum.DroppedTotal())
	require.EqualValues(t, 450, testutil.ToFloat64(m.Sent))

	got := testsupport.QueryPrometheus(t, base, `rw_test_value{app="shop",job="app",instance="web.1"}`)
	require.Len(t, got, 150)
	for _, s := range got {
		i, err := strconv.Atoi(s.Metric["series"])
		require.NoError(t, err)
		require.EqualValues(t, i*10+2, s.Value, "the latest of the three samples of series %d", i)
	}
	cnt := testsupport.QueryPrometheus(t, base, `count_over_time(rw_test_value[5m])`)
	require.Len(t, cnt, 150)
	for _, s := range cnt {
		require.EqualValues(t, 3, s.Value, "every sample of every series arrived")
	}
	chk := testsupport.QueryPrometheus(t, base, `dynoscope_check{app="shop"}`)
	require.Len(t, chk, 1)
	require.EqualValues(t, 1, chk[0].Value)
}

// TestRealPrometheusTooOldSampleEndsByAge: with an out-of-order window,
// Prometheus 2.42 answers 500 "too old sample" for a sample older than the
// window: a 5xx, so it is retried, and only the age bound ends the loop.
func TestRealPrometheusTooOldSampleEndsByAge(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("storage:\n  tsdb:\n    out_of_order_time_window: 10m\n"), 0o600))
	base := testsupport.StartPrometheus(t, "--config.file="+cfg)
	u, err := url.Parse(base + testsupport.RemoteWritePath)
	require.NoError(t, err)

	clock := newFakeClock()
	clock.now = time.Now() // Prometheus judges by the real clock; ours only drives the retries
	w, m, logs := testWriter(t, u, func(o *Options) {
		o.Now, o.Sleep = clock.Now, clock.Sleep
		o.MaxSampleAge = 31 * time.Minute
		o.MinBackoff, o.MaxBackoff = 5*time.Second, 10*time.Second
	})
	fresh := sample("rw_too_old", clock.Now().UnixMilli(), 1, "job", "app")
	w.Append([]series.Sample{fresh})
	w.mu.Lock()
	w.flushLocked()
	w.mu.Unlock()
	old := sample("rw_too_old", clock.Now().Add(-30*time.Minute).UnixMilli(), 2, "job", "app")
	w.Append([]series.Sample{old})
	sum := w.Shutdown(context.Background())

	require.EqualValues(t, 1, sum.Sent)
	require.EqualValues(t, 1, sum.Dropped[ReasonTooOld], logs.String())
	require.Positive(t, testutil.ToFloat64(m.Retries))
	require.Contains(t, logs.String(), "too old sample")
	require.Contains(t, logs.String(), "HTTP 500")
	elapsed := clock.Now().Sub(time.UnixMilli(old.T))
	require.InDelta(t, float64(31*time.Minute), float64(elapsed), float64(time.Second), "retried until the age bound, not forever")
}
