package logs

import (
	"regexp"
	"strconv"
)

// The tee protocol, over the agent's unix socket. The tee opens with one
// header line, then sends one record per line piece:
//
//	DYNOSCOPE-TEE/1 <stream>\n     header
//	L<unix ns> <line>\n            a line (no "\n" inside, by construction)
//	C<unix ns> <piece>\n           first piece of a line over the limit
//	K<unix ns> <piece>\n           a later piece of that line
//	D<count>\n                     lines the tee dropped (its buffer was full
//	                               or the agent away), counted as queue_full
//
// Lines of one read share their capture time.
const teeHeader = "DYNOSCOPE-TEE/1 "

// streamNameRE is what a tee may call its stream.
var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func appendRecord(dst []byte, kind byte, ns int64, line []byte) []byte {
	dst = append(dst, kind)
	dst = strconv.AppendInt(dst, ns, 10)
	dst = append(dst, ' ')
	dst = append(dst, line...)
	return append(dst, '\n')
}
