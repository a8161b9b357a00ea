package logs

import (
	"fmt"
	"io"
)

// readBufSize is the size of one read from a captured pipe.
const readBufSize = 64 << 10

// Passthrough copies src to dst exactly (partial lines, binary, no final
// newline) and, after each write, offers the complete lines read to the
// pipeline under the given stream label without ever waiting for it. It
// returns at EOF: nil, or the first error writing dst (it keeps reading src
// after a write error, so the app never blocks on a full pipe) or reading
// src. The final line without "\n" is shipped at EOF. A nil *Pipeline only
// copies.
func (p *Pipeline) Passthrough(dst io.Writer, src io.Reader, stream string) error {
	var s *sourceState
	if p != nil {
		s = p.addSource(stream, nil)
	}
	var sp *splitter
	if s != nil {
		sp = newSplitter(int(p.opts.MaxLineBytes))
	}
	buf := make([]byte, readBufSize)
	var werr error
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if werr == nil {
				_, werr = dst.Write(buf[:n])
			}
			if s != nil {
				if p.full() {
					p.skipped(s, sp.skip(buf[:n]))
				} else {
					b := newBatch(s, p.opts.Now())
					sp.feed(buf[:n], b)
					p.offer(b)
				}
			}
		}
		if rerr != nil {
			if s != nil {
				b := newBatch(s, p.opts.Now())
				sp.flush(b)
				p.endSource(s, b)
			}
			if rerr == io.EOF {
				rerr = nil
			}
			if werr != nil {
				return fmt.Errorf("passthrough %s: write: %w", stream, werr)
			}
			if rerr != nil {
				return fmt.Errorf("passthrough %s: read: %w", stream, rerr)
			}
			return nil
		}
	}
}
