package logs

import (
	"bytes"
	"sync"
	"time"
)

// rawLine is one captured line or piece of an over-long line, without its
// "\n" (a trailing "\r" is still there). It points into its batch's buffer.
type rawLine struct {
	start, end int
	// cut: the line was longer than the limit and this is its first piece.
	// cont: a later piece of such a line.
	cut, cont bool
}

// batch is what one read of a capture source hands to line handling: the
// complete lines of the read, copied into one buffer, with their capture
// time. A batch with eof set ends its source.
type batch struct {
	src   *sourceState
	t     time.Time
	buf   []byte
	lines []rawLine
	eof   bool
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// newBatch takes a batch from the pool: line handling returns it once done,
// so capture allocates nothing per read in the steady state.
func newBatch(src *sourceState, t time.Time) *batch {
	b := batchPool.Get().(*batch)
	b.src, b.t = src, t
	return b
}

// putBatch returns b to the pool; nothing may refer to its buffer after.
func putBatch(b *batch) {
	if cap(b.buf) > 512<<10 {
		return
	}
	*b = batch{buf: b.buf[:0], lines: b.lines[:0]}
	batchPool.Put(b)
}

func (b *batch) line(i int) []byte { return b.buf[b.lines[i].start:b.lines[i].end] }

// splitter cuts a byte stream into lines of at most max bytes. The partial
// line it holds between reads stays below max. Not safe for concurrent use.
type splitter struct {
	max     int
	carry   []byte
	cutting bool // inside an over-long line: the next pieces are cont
}

func newSplitter(max int) *splitter { return &splitter{max: max} }

// feed appends to b every line that chunk completes. It returns how many
// over-long lines it started cutting.
func (s *splitter) feed(chunk []byte, b *batch) (cuts int) {
	if need := len(s.carry) + len(chunk); cap(b.buf)-len(b.buf) < need {
		nb := make([]byte, len(b.buf), len(b.buf)+need)
		copy(nb, b.buf)
		b.buf = nb
	}
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.carry = append(s.carry, chunk...)
			for len(s.carry) > s.max {
				n := cutPoint(s.carry, s.max)
				cuts += s.emit(b, s.carry[:n], false)
				rest := copy(s.carry, s.carry[n:])
				s.carry = s.carry[:rest]
			}
			return cuts
		}
		line := chunk[:i]
		chunk = chunk[i+1:]
		if len(s.carry) > 0 {
			s.carry = append(s.carry, line...)
			line = s.carry
		}
		for len(line) > s.max {
			n := cutPoint(line, s.max)
			cuts += s.emit(b, line[:n], false)
			line = line[n:]
		}
		cuts += s.emit(b, line, true)
		s.carry = s.carry[:0]
	}
	return cuts
}

// skip consumes chunk without keeping its lines (the pipeline is full) and
// returns how many lines it ended. It is much cheaper than feed: no copy.
func (s *splitter) skip(chunk []byte) int {
	n := bytes.Count(chunk, []byte{'\n'})
	if n > 0 {
		chunk = chunk[bytes.LastIndexByte(chunk, '\n')+1:]
		s.carry, s.cutting = s.carry[:0], false
	}
	if len(s.carry)+len(chunk) > s.max {
		s.carry, s.cutting = s.carry[:0], true // the rest of an over-long line: later pieces are cont
		return n
	}
	s.carry = append(s.carry, chunk...)
	return n
}

// flush appends the partial line held, if any: the source has closed.
func (s *splitter) flush(b *batch) {
	if len(s.carry) > 0 || s.cutting {
		s.emit(b, s.carry, true)
		s.carry = s.carry[:0]
	}
}

// emit copies one piece into b. last reports whether the piece ends its line.
func (s *splitter) emit(b *batch, piece []byte, last bool) (cuts int) {
	l := rawLine{start: len(b.buf)}
	b.buf = append(b.buf, piece...)
	l.end = len(b.buf)
	switch {
	case s.cutting:
		l.cont = true
	case !last:
		l.cut = true
		cuts = 1
	}
	s.cutting = !last
	if l.cont && len(piece) == 0 {
		return cuts // the line ended exactly at a cut
	}
	b.lines = append(b.lines, l)
	return cuts
}

// cutPoint is where to cut p to at most max bytes without splitting a UTF-8
// sequence (when p is valid UTF-8 there).
func cutPoint(p []byte, max int) int {
	for n := max; n > max-4 && n > 0; n-- {
		if p[n]&0xC0 != 0x80 {
			return n
		}
	}
	return max
}
