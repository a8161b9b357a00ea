package remotewrite

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// backoff returns the wait before retry number attempt (0 for the first
// retry): min doubled per attempt, capped at max, with "equal jitter" (half
// fixed, half random) so that dynos restarted together do not retry in step.
func backoff(attempt int, minWait, maxWait time.Duration) time.Duration {
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// sleepCtx waits d or until ctx is done (then it returns ctx.Err()).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logLimiter lets a repeating log event through once, then at most once per
// interval, counting what it held back in between. Safe for concurrent use.
type logLimiter struct {
	interval time.Duration

	mu         sync.Mutex // covers last and suppressed
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many events were held back
// since the last one logged.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		return false, 0
	}
	l.last, suppressed, l.suppressed = now, l.suppressed, 0
	return true, suppressed
}
