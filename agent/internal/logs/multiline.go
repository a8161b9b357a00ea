package logs

import (
	"bytes"
	"time"
)

// pendingEntry is an entry being assembled from a first line and the
// continuation lines that follow it.
type pendingEntry struct {
	buf       []byte
	first     time.Time // capture time of the first line
	last      time.Time // capture time of the latest line
	traceback int       // Python traceback state, see below
	level     string    // set when the first line decides it (Traceback)
}

const (
	tbNone = iota // not in a Python traceback
	tbIn          // after "Traceback (most recent call last):"
	tbDone        // after the final exception line
)

var (
	pyTraceback = []byte("Traceback (most recent call last):")
	pyDuring    = []byte("During handling of the above exception")
	pyCause     = []byte("The above exception was the direct cause")
	causedBy    = []byte("Caused by:")
	atPrefix    = []byte("at ")
	morePrefix  = []byte("... ")
)

// continues reports whether line belongs to the entry p, and updates p's
// traceback state when it does.
func (p *pendingEntry) continues(line []byte) bool {
	if p.traceback == tbIn {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return true
		}
		if len(line) > 0 { // the final exception line: KeyError: 'missing'
			p.traceback = tbDone
			return true
		}
		return false
	}
	if len(line) == 0 {
		return false
	}
	switch {
	case line[0] == ' ' || line[0] == '\t':
		return true
	case bytes.HasPrefix(line, pyTraceback):
		p.traceback = tbIn
		return true
	case bytes.HasPrefix(line, causedBy), bytes.HasPrefix(line, atPrefix), bytes.HasPrefix(line, morePrefix):
		return true
	case p.traceback == tbDone && (bytes.HasPrefix(line, pyDuring) || bytes.HasPrefix(line, pyCause)):
		p.traceback = tbNone
		return true
	}
	return false
}
