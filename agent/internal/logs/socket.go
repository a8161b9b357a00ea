package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServeSocket listens on the unix socket at path (mode 0600; connections
// from another user are refused) for `dynoscope tee` processes, and feeds
// their lines to the pipeline. It returns nil once it stops accepting: when
// ctx is done or Shutdown begins. Connected tees are read on until they
// close or Shutdown's drain deadline, so pass a ctx that outlives SIGTERM
// to keep accepting reconnecting tees during the drain too. A stale socket
// file is replaced; a live one (another agent) is an error.
func (p *Pipeline) ServeSocket(ctx context.Context, path string) error {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("socket %s: another agent is listening", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("socket %s: %w", path, err)
	}
	p.srcMu.Lock()
	if p.shutdown {
		p.srcMu.Unlock()
		ln.Close()
		return nil
	}
	p.listener = ln
	p.srcMu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			p.logger.Debug("accept tee", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		p.connecting.Add(1)
		go p.serveTee(conn)
	}
}

// serveTee reads one tee connection until it closes.
func (p *Pipeline) serveTee(conn net.Conn) {
	defer conn.Close()
	registered := false
	defer func() {
		if !registered {
			p.connecting.Add(-1)
		}
	}()
	if err := checkPeer(conn); err != nil {
		p.logger.Warn("tee connection refused", "err", err)
		return
	}
	r := bufio.NewReaderSize(conn, int(p.opts.MaxLineBytes)+64)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr, err := r.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(hdr, []byte(teeHeader)) {
		p.logger.Debug("tee connection without header", "err", err)
		return
	}
	stream := strings.TrimSpace(string(hdr[len(teeHeader):]))
	if !streamNameRE.MatchString(stream) {
		p.logger.Warn("tee stream name refused", "stream", stream)
		return
	}
	conn.SetReadDeadline(time.Time{})
	s := p.addSource(stream, func() { conn.Close() })
	registered = true
	p.connecting.Add(-1)
	if s == nil {
		return
	}
	var b *batch
	var bns int64
	flush := func() {
		if b != nil {
			p.offer(b)
			b = nil
		}
	}
	for {
		if b == nil && p.full() && r.Buffered() > 0 {
			// Line handling is behind: skip the whole records buffered
			// without parsing them (counted), as Passthrough does.
			if n := p.skipRecords(s, r); n > 0 {
				continue
			}
		}
		rec, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than this agent's limit (the tee's is larger): the
			// record can't be parsed whole; skip it, counted.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			rec = nil
			p.m.drop(ReasonInvalid, 1)
		}
		if len(rec) > 1 && rec[len(rec)-1] == '\n' {
			kind, body := rec[0], rec[1:len(rec)-1]
			switch kind {
			case 'L', 'C', 'K':
				sp := bytes.IndexByte(body, ' ')
				if sp < 0 {
					break
				}
				ns, perr := strconv.ParseInt(string(body[:sp]), 10, 64)
				if perr != nil {
					break
				}
				if b != nil && (ns != bns || len(b.buf) > readBufSize) {
					flush()
				}
				if b == nil {
					b, bns = &batch{src: s, t: time.Unix(0, ns)}, ns
				}
				l := rawLine{start: len(b.buf), cut: kind == 'C', cont: kind == 'K'}
				b.buf = append(b.buf, body[sp+1:]...)
				l.end = len(b.buf)
				b.lines = append(b.lines, l)
			case 'D':
				if n, perr := strconv.Atoi(string(body)); perr == nil && n > 0 {
					p.m.drop(ReasonQueueFull, n)
				}
			}
		}
		if err != nil {
			flush()
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.logger.Debug("tee connection", "stream", stream, "err", err)
			}
			p.endSource(s, &batch{src: s, t: p.opts.Now()})
			return
		}
		if r.Buffered() == 0 {
			flush()
		}
	}
}

// skipRecords discards the complete records buffered in r, counting their
// lines (L and C records) as dropped (queue_full). It returns the bytes
// skipped.
func (p *Pipeline) skipRecords(s *sourceState, r *bufio.Reader) int {
	buf, _ := r.Peek(r.Buffered())
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end == 0 {
		return 0
	}
	lines := 0
	for rest := buf[:end]; len(rest) > 0; {
		if rest[0] == 'L' || rest[0] == 'C' {
			lines++
		}
		i := bytes.IndexByte(rest, '\n')
		rest = rest[i+1:]
	}
	p.skipped(s, lines)
	r.Discard(end)
	return end
}
