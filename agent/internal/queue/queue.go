// Package queue is the bounded FIFO that sits in front of every sender: remote
// write's encoded batches and the log entries waiting for the Loki client.
//
// It is bounded in bytes, never blocks the producer, and makes room by
// dropping the oldest items, each handed to a callback so the caller can
// count it under a reason.
package queue

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Pop once the queue is closed and empty.
var ErrClosed = errors.New("queue closed")

type entry[T any] struct {
	item T
	size int64
}

// Queue is a FIFO bounded in bytes. It is safe for concurrent use.
type Queue[T any] struct {
	max    int64
	sizeOf func(T) int
	onDrop func(T)

	mu     sync.Mutex // covers items, head, bytes and closed
	items  []entry[T]
	head   int
	bytes  int64
	closed bool

	ready chan struct{} // signalled (never blocking) when an item arrives
	done  chan struct{} // closed by Close
}

// New returns a queue that holds at most maxBytes, as measured by sizeOf.
// onDrop, if not nil, is called for every item the queue drops (outside the
// queue's lock): the oldest ones when a Push needs room, or a single item
// larger than maxBytes.
func New[T any](maxBytes int64, sizeOf func(T) int, onDrop func(T)) *Queue[T] {
	if onDrop == nil {
		onDrop = func(T) {}
	}
	return &Queue[T]{max: maxBytes, sizeOf: sizeOf, onDrop: onDrop, ready: make(chan struct{}, 1), done: make(chan struct{})}
}

// Push appends item, dropping the oldest items to make room. It never
// blocks. It returns false if item itself was dropped: larger than the whole
// queue, or pushed after Close.
func (q *Queue[T]) Push(item T) bool {
	size := int64(q.sizeOf(item))
	q.mu.Lock()
	if q.closed || size > q.max {
		q.mu.Unlock()
		q.onDrop(item)
		return false
	}
	var dropped []T
	for q.bytes+size > q.max {
		e := q.popLocked()
		dropped = append(dropped, e.item)
	}
	q.items = append(q.items, entry[T]{item: item, size: size})
	q.bytes += size
	q.mu.Unlock()

	select {
	case q.ready <- struct{}{}:
	default:
	}
	for _, d := range dropped {
		q.onDrop(d)
	}
	return true
}

// popLocked removes the head; the caller holds mu and has checked Len > 0.
func (q *Queue[T]) popLocked() entry[T] {
	e := q.items[q.head]
	q.items[q.head] = entry[T]{} // release the reference
	q.head++
	q.bytes -= e.size
	if q.head == len(q.items) { // empty: reuse the backing array from the start
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) { // mostly consumed: compact
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return e
}

// TryPop removes and returns the oldest item without waiting.
func (q *Queue[T]) TryPop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		var zero T
		return zero, false
	}
	item := q.popLocked().item
	if q.head < len(q.items) { // more waiting: wake another consumer
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return item, true
}

// Pop removes and returns the oldest item, waiting for one until ctx is done
// or the queue is closed and drained (ErrClosed).
func (q *Queue[T]) Pop(ctx context.Context) (T, error) {
	for {
		if item, ok := q.TryPop(); ok {
			return item, nil
		}
		select {
		case <-q.done:
			if item, ok := q.TryPop(); ok {
				return item, nil
			}
			var zero T
			return zero, ErrClosed
		case <-q.ready:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// Close stops the queue taking items; what it holds can still be popped.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// Len is the number of items waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// Bytes is the size of the items waiting.
func (q *Queue[T]) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
