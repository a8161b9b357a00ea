package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func byteLen(b []byte) int { return len(b) }

func TestPushDropsOldestWhenFull(t *testing.T) {
	var dropped []string
	q := New(10, byteLen, func(b []byte) { dropped = append(dropped, string(b)) })
	for _, s := range []string{"aaaa", "bbbb", "cccc"} {
		require.True(t, q.Push([]byte(s)))
	}
	require.Equal(t, []string{"aaaa"}, dropped)
	require.EqualValues(t, 8, q.Bytes())
	require.Equal(t, 2, q.Len())

	got, ok := q.TryPop()
	require.True(t, ok)
	require.Equal(t, "bbbb", string(got))
}

func TestPushRejectsItemLargerThanQueue(t *testing.T) {
	var dropped int
	q := New(4, byteLen, func([]byte) { dropped++ })
	require.True(t, q.Push([]byte("ab")))
	require.False(t, q.Push([]byte("abcde")))
	require.Equal(t, 1, dropped)
	require.Equal(t, 1, q.Len(), "what was accepted stays")
}

func TestPopWaitsForItemAndHonoursContext(t *testing.T) {
	q := New(100, byteLen, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := q.Pop(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan string)
	go func() {
		b, err := q.Pop(context.Background())
		if err == nil {
			got <- string(b)
		}
	}()
	q.Push([]byte("x"))
	select {
	case s := <-got:
		require.Equal(t, "x", s)
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return the pushed item")
	}
}

func TestCloseDrainsThenReportsClosed(t *testing.T) {
	q := New(100, byteLen, nil)
	q.Push([]byte("last"))
	q.Close()
	require.False(t, q.Push([]byte("late")), "push after close is refused")

	b, err := q.Pop(context.Background())
	require.NoError(t, err)
	require.Equal(t, "last", string(b))
	_, err = q.Pop(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}

func TestCloseWakesEveryWaiter(t *testing.T) {
	q := New(100, byteLen, nil)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := q.Pop(context.Background()); errs <- err }()
	}
	q.Close()
	for range 3 {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, ErrClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter was not woken by Close")
		}
	}
}

func TestFIFOOrderAcrossCompaction(t *testing.T) {
	q := New(1<<20, byteLen, nil)
	next := 0
	for i := range 5000 {
		q.Push([]byte{byte(i), byte(i >> 8)})
		if i%3 == 0 {
			b, ok := q.TryPop()
			require.True(t, ok)
			require.Equal(t, next, int(b[0])|int(b[1])<<8)
			next++
		}
	}
	for q.Len() > 0 {
		b, _ := q.TryPop()
		require.Equal(t, next, int(b[0])|int(b[1])<<8)
		next++
	}
	require.Equal(t, 5000, next)
}

func BenchmarkPushPop(b *testing.B) {
	q := New(16<<20, byteLen, nil)
	item := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		q.Push(item)
		q.TryPop()
	}
}
