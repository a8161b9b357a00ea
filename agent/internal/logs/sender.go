package logs

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
)

// Pair is one structured metadata name and value (request_id, trace_id,
// span_id): attached to an entry without becoming a stream label.
type Pair struct{ Name, Value string }

// Entry is one log entry ready to ship: a line (or a joined multiline
// entry) with its stream labels, capture time and metadata.
type Entry struct {
	// Labels is shared by every entry of the same stream and level: never
	// modify it.
	Labels   model.LabelSet
	Time     time.Time
	Line     string
	Metadata []Pair
}

// Memory an entry holds besides its line, as the queue counts it: the
// Entry, its slot in the queue's slice (up to 4 slots a live entry with
// the slice's growth and drop-oldest slack), allocation rounding and heap
// fragmentation, and per metadata pair its slot and value. Measured
// (TestQueueMemory): a full 16 MiB queue of 200-byte lines costs under
// 24 MiB of RSS with these.
const (
	entryOverhead    = 256
	metadataOverhead = 48
)

// size is what the entry counts against DYNOSCOPE_LOG_QUEUE_MAX_BYTES: an
// estimate of the memory it holds, so that the limit bounds the agent's
// memory, not only the line bytes.
func (e *Entry) size() int {
	n := len(e.Line) + entryOverhead
	for _, m := range e.Metadata {
		n += len(m.Value) + metadataOverhead
	}
	return n
}

// Sender is the Loki transport seam. The pipeline calls Send from a single
// goroutine, never after Stop; Send may block (the pipeline's queue absorbs
// it). Stop flushes what the sender holds and may block: the pipeline gives
// it a deadline.
type Sender interface {
	Send(Entry) error
	Stop()
}

// SenderStats are a sender's cumulative outcomes, polled by the pipeline
// into its self-metrics.
type SenderStats struct {
	Sent, SentBytes          uint64
	Rejected, RetryExhausted uint64
}

// statsReporter is implemented by senders that learn outcomes after Send.
type statsReporter interface{ Stats() SenderStats }

// DryRunSender prints each entry with its labels instead of sending it.
// Safe for concurrent use.
type DryRunSender struct {
	mu    sync.Mutex // covers w and stats
	w     io.Writer
	stats SenderStats
}

var (
	_ Sender        = (*DryRunSender)(nil)
	_ statsReporter = (*DryRunSender)(nil)
)

// NewDryRunSender prints to w.
func NewDryRunSender(w io.Writer) *DryRunSender { return &DryRunSender{w: w} }

// Send prints one line: time, labels, line, then metadata if any.
func (d *DryRunSender) Send(e Entry) error {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(formatLabels(e.Labels))
	b.WriteByte(' ')
	b.WriteString(fmt.Sprintf("%q", e.Line))
	for _, m := range e.Metadata {
		fmt.Fprintf(&b, " %s=%q", m.Name, m.Value)
	}
	b.WriteByte('\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := io.WriteString(d.w, b.String()); err != nil {
		return fmt.Errorf("dry run: %w", err)
	}
	d.stats.Sent++
	d.stats.SentBytes += uint64(len(e.Line))
	return nil
}

// Stop does nothing: every entry is printed as it comes.
func (d *DryRunSender) Stop() {}

// Stats implements statsReporter.
func (d *DryRunSender) Stats() SenderStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// formatLabels writes a label set as {a="1", b="2"}, sorted.
func formatLabels(ls model.LabelSet) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, string(n))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, string(ls[model.LabelName(n)]))
	}
	b.WriteByte('}')
	return b.String()
}
