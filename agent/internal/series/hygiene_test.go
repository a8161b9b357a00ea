package series

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSanitizeLabelName(t *testing.T) {
	for _, tc := range []struct{ name, in, want, wantMetric string }{
		{"valid", "status_code", "status_code", "status_code"},
		{"empty", "", "_", "_"},
		{"leading digit", "2xx", "_2xx", "_2xx"},
		{"dash and dot", "a-b.c", "a_b_c", "a_b_c"},
		{"colon", "rule:rate5m", "rule_rate5m", "rule:rate5m"},
		{"utf8", "näme", "n__me", "n__me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, SanitizeLabelName(tc.in))
			require.Equal(t, tc.wantMetric, SanitizeMetricName(tc.in))
		})
	}
}

func TestSanitizeLabelValue(t *testing.T) {
	long := strings.Repeat("é", MaxLabelValueBytes) // 2 bytes per rune
	for _, tc := range []struct {
		name, in, want string
		fix            ValueFix
	}{
		{"valid", "GET", "GET", 0},
		{"invalid utf8", "a\xffb", "a\uFFFDb", FixInvalidUTF8},
		{"too long", strings.Repeat("x", 3000), strings.Repeat("x", MaxLabelValueBytes), FixTruncated},
		{"too long at rune boundary", "x" + long, "x" + long[:MaxLabelValueBytes-2], FixTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fix := SanitizeLabelValue(tc.in)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.fix, fix)
			require.LessOrEqual(t, len(got), MaxLabelValueBytes)
		})
	}
}

func TestLimit(t *testing.T) {
	l := NewLimit(3)
	require.True(t, l.TryAcquire())
	require.True(t, l.TryAcquire())
	require.True(t, l.TryAcquire())
	require.False(t, l.TryAcquire())
	l.Release(1)
	require.True(t, l.TryAcquire())
	l.Force(2)
	require.Equal(t, 5, l.Active())
	require.False(t, l.TryAcquire())
	require.Equal(t, 3, l.Max())

	unlimited := NewLimit(0)
	for i := 0; i < 100; i++ {
		require.True(t, unlimited.TryAcquire())
	}
}

func TestLimitConcurrent(t *testing.T) {
	l := NewLimit(100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if l.TryAcquire() {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 100, got)
	require.Equal(t, 100, l.Active())
}
