package series

import "sync/atomic"

// Limit counts the active series of a dyno against a cap (DYNOSCOPE_MAX_SERIES).
// A series takes a slot when it is first admitted and keeps it until its
// owner releases it (after the series went stale). It is safe for concurrent
// use.
type Limit struct {
	max    int64 // 0: no cap
	active atomic.Int64
}

// NewLimit returns a Limit admitting at most max series; max <= 0 means no cap.
func NewLimit(max int) *Limit {
	if max < 0 {
		max = 0
	}
	return &Limit{max: int64(max)}
}

// TryAcquire takes one slot and reports whether one was free.
func (l *Limit) TryAcquire() bool {
	for {
		n := l.active.Load()
		if l.max > 0 && n >= l.max {
			return false
		}
		if l.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Force takes n slots even past the cap: for series that must always flow
// (up and the agent's own metrics). They count as active like any other.
func (l *Limit) Force(n int) { l.active.Add(int64(n)) }

// Release frees n slots.
func (l *Limit) Release(n int) { l.active.Add(-int64(n)) }

// Active returns the number of slots taken.
func (l *Limit) Active() int { return int(l.active.Load()) }

// Max returns the cap, 0 when there is none.
func (l *Limit) Max() int { return int(l.max) }
