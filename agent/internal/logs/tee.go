package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/queue"
)

// Tee defaults.
const (
	DefaultSocket          = "/tmp/dynoscope.sock"
	DefaultTeeBufferBytes  = 4 << 20
	DefaultTeeMinBackoff   = 100 * time.Millisecond
	DefaultTeeMaxBackoff   = 5 * time.Second
	DefaultTeeWriteTimeout = 2 * time.Second
)

// TeeOptions configure a Tee. Zero values take the defaults.
type TeeOptions struct {
	Socket       string
	Stream       string
	MaxLineBytes int64
	// BufferBytes bounds the encoded lines waiting for the agent; the
	// oldest are dropped beyond it and reported to the agent as dropped.
	BufferBytes            int64
	MinBackoff, MaxBackoff time.Duration
	WriteTimeout           time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Tee is the client side of `dynoscope tee`: Copy passes its input through
// byte for byte and offers each line to the agent over the unix socket
// without ever waiting for it; a background goroutine (re)connects with
// backoff and ships what is buffered. Safe for concurrent use, but Copy is
// meant to be called once.
type Tee struct {
	o       TeeOptions
	q       *queue.Queue[teeChunk]
	dropped atomic.Int64 // lines dropped, not yet reported to the agent
	closing atomic.Bool
	done    chan struct{}
	cancel  context.CancelFunc

	mu   sync.Mutex // covers conn
	conn net.Conn
}

// teeChunk is the encoded records of one read.
type teeChunk struct {
	data  []byte
	lines int
}

// NewTee starts the shipping goroutine; Close stops it.
func NewTee(o TeeOptions) *Tee {
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultTeeBufferBytes
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultTeeMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultTeeMaxBackoff
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultTeeWriteTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "tee", "stream", o.Stream)
	t := &Tee{o: o, done: make(chan struct{})}
	t.q = queue.New(o.BufferBytes, func(c teeChunk) int { return len(c.data) }, func(c teeChunk) { t.dropped.Add(int64(c.lines)) })
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(ctx)
	return t
}

// Copy copies src to dst exactly and offers the lines to the agent. It
// returns at EOF of src: nil, or the first write error (it keeps reading
// src after one, so the writer never blocks) or read error. The last line
// without "\n" is offered at EOF.
func (t *Tee) Copy(dst io.Writer, src io.Reader) error {
	sp := newSplitter(int(t.o.MaxLineBytes))
	buf := make([]byte, readBufSize)
	var b batch
	var werr error
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if werr == nil {
				_, werr = dst.Write(buf[:n])
			}
			if t.q.Bytes()+int64(n) > t.o.BufferBytes {
				// The agent is away or slow and the buffer is full: skip
				// this read's lines (counted) rather than copy and drop.
				t.dropped.Add(int64(sp.skip(buf[:n])))
			} else {
				b.buf, b.lines = b.buf[:0], b.lines[:0]
				sp.feed(buf[:n], &b)
				t.push(&b)
			}
		}
		if rerr != nil {
			b.buf, b.lines = b.buf[:0], b.lines[:0]
			sp.flush(&b)
			t.push(&b)
			if errors.Is(rerr, io.EOF) {
				rerr = nil
			}
			if werr != nil {
				return fmt.Errorf("tee: write: %w", werr)
			}
			if rerr != nil {
				return fmt.Errorf("tee: read: %w", rerr)
			}
			return nil
		}
	}
}

// push encodes the lines of b as records and queues them (never waits).
func (t *Tee) push(b *batch) {
	if len(b.lines) == 0 {
		return
	}
	ns := t.o.Now().UnixNano()
	data := make([]byte, 0, len(b.buf)+len(b.lines)*22)
	for i, l := range b.lines {
		kind := byte('L')
		switch {
		case l.cut:
			kind = 'C'
		case l.cont:
			kind = 'K'
		}
		data = appendRecord(data, kind, ns, b.line(i))
	}
	t.q.Push(teeChunk{data: data, lines: len(b.lines)})
}

// run connects to the agent and ships chunks until Close.
func (t *Tee) run(ctx context.Context) {
	defer close(t.done)
	backoff := t.o.MinBackoff
	var pending *teeChunk
	for {
		conn, err := t.dial()
		if err != nil {
			if t.closing.Load() {
				return // the agent is away and the input has ended: don't linger
			}
			if !t.sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, t.o.MaxBackoff)
			continue
		}
		backoff = t.o.MinBackoff
		t.mu.Lock()
		t.conn = conn
		t.mu.Unlock()
		err = t.ship(ctx, conn, &pending)
		t.mu.Lock()
		t.conn = nil
		t.mu.Unlock()
		conn.Close()
		if err == nil || errors.Is(err, queue.ErrClosed) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		t.o.Logger.Debug("agent connection lost", "err", err)
	}
}

func (t *Tee) dial() (net.Conn, error) {
	conn, err := net.DialTimeout("unix", t.o.Socket, time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetWriteDeadline(time.Now().Add(t.o.WriteTimeout))
	if _, err := io.WriteString(conn, teeHeader+t.o.Stream+"\n"); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// ship writes chunks to conn until an error. A chunk whose write failed is
// kept in pending and sent again on the next connection (the agent may then
// see some of its lines twice, never zero times silently).
func (t *Tee) ship(ctx context.Context, conn net.Conn, pending **teeChunk) error {
	for {
		if n := t.dropped.Swap(0); n > 0 {
			conn.SetWriteDeadline(time.Now().Add(t.o.WriteTimeout))
			if _, err := io.WriteString(conn, "D"+strconv.FormatInt(n, 10)+"\n"); err != nil {
				t.dropped.Add(n)
				return err
			}
		}
		if *pending == nil {
			c, err := t.q.Pop(ctx)
			if err != nil {
				return err
			}
			*pending = &c
		}
		conn.SetWriteDeadline(time.Now().Add(t.o.WriteTimeout))
		if _, err := conn.Write((*pending).data); err != nil {
			return err
		}
		*pending = nil
	}
}

func (t *Tee) sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Close stops taking lines and ships what is buffered until deadline, then
// disconnects. It returns how many lines were never handed to the agent.
func (t *Tee) Close(deadline time.Time) int64 {
	t.closing.Store(true)
	t.q.Close()
	if !waitUntil(t.done, deadline) {
		t.cancel()
		t.mu.Lock()
		if t.conn != nil {
			t.conn.Close()
		}
		t.mu.Unlock()
		<-t.done
	}
	t.cancel()
	lost := t.dropped.Load()
	for {
		c, ok := t.q.TryPop()
		if !ok {
			break
		}
		lost += int64(c.lines)
	}
	return lost
}
