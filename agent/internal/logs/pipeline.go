// Package logs captures the app's log lines (the run passthrough, the tee
// socket and followed files), turns them into entries (split, level,
// multiline, redaction, budget) and ships them to Loki through a bounded
// queue in front of the Sender, without ever holding the app back.
//
// Data flow: capture → intake (bounded, non-blocking) → line handling (one
// goroutine) → queue (bounded in bytes, oldest dropped) → one goroutine
// calling Sender.Send. Every line not shipped is counted under a reason.
package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/brainbytesai/dynoscope/agent/internal/queue"
)

// ErrNoDestination is returned by NewPipeline without a URL, DryRun or Sender.
var ErrNoDestination = errors.New("logs: no Loki URL and no dry run")

// Pipeline is the log pipeline of one agent. Its methods are safe for
// concurrent use. A nil *Pipeline is valid for Passthrough, which then only
// copies.
type Pipeline struct {
	opts   Options
	logger *slog.Logger
	m      *metrics
	sender Sender
	queue  *queue.Queue[*Entry]
	base   model.LabelSet // identity labels, service_name included
	min    int            // levelRank of MinLevel, 0 for all

	intakeMu     sync.RWMutex // covers sending on intake and intakeClosed
	intake       chan *batch
	intakeClosed bool
	intakeBytes  atomic.Int64

	capturing   atomic.Bool // false once shutdown gave up on the sources: capture only copies
	queueClosed atomic.Bool
	stopping    atomic.Bool // set before Sender.Stop: nothing is sent after it
	handed      atomic.Uint64
	connecting  atomic.Int32 // tee connections accepted, not yet registered

	srcMu    sync.Mutex // covers srcs, closers, listener, started, shutdown
	srcs     map[*sourceState]struct{}
	closers  map[*sourceState]func()
	listener net.Listener
	started  bool
	shutdown bool

	statsMu   sync.Mutex // covers lastStats
	lastStats SenderStats

	shutdownOnce sync.Once
	summary      Summary // set by the first Shutdown

	stopFiles chan struct{}
	filesDone chan struct{}
	procDone  chan struct{}
	sendDone  chan struct{}
	sendStop  context.CancelFunc
	pollStop  chan struct{}

	// processor-only state (the line handling goroutine)
	labels  map[string]map[string]model.LabelSet // by stream, then level
	lastTS  map[string]int64
	pending map[*sourceState]struct{}
	red     redactor
	tokens  float64
	tokenAt time.Time
}

// sourceState is one capture source: a Passthrough, a tee connection or a
// followed file. Its multiline fields belong to the line handling goroutine.
type sourceState struct {
	stream    string
	read      prometheus.Counter
	pending   *pendingEntry
	spare     *pendingEntry // a flushed entry kept for its buffer
	lastLevel string
}

// NewPipeline checks opts and builds the pipeline; Start runs it. reg
// receives the dynoscope_log_* metrics (never the client's promtail_*: keep
// reg a registry of its own, not prometheus.DefaultRegisterer).
func NewPipeline(opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Pipeline, error) {
	opts.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "logs")
	p := &Pipeline{
		opts:      opts,
		logger:    logger,
		m:         newMetrics(reg),
		intake:    make(chan *batch, 4096),
		srcs:      map[*sourceState]struct{}{},
		closers:   map[*sourceState]func(){},
		labels:    map[string]map[string]model.LabelSet{},
		lastTS:    map[string]int64{},
		pending:   map[*sourceState]struct{}{},
		red:       redactor{extra: opts.Redact},
		stopFiles: make(chan struct{}),
		filesDone: make(chan struct{}),
		procDone:  make(chan struct{}),
		sendDone:  make(chan struct{}),
		pollStop:  make(chan struct{}),
	}
	p.capturing.Store(true)
	if opts.MinLevel != "" {
		if normLevel([]byte(opts.MinLevel)) == "" {
			return nil, fmt.Errorf("logs: min level %q: want one of fatal, error, warn, info, debug, trace", opts.MinLevel)
		}
		p.min = levelRank(normLevel([]byte(opts.MinLevel)))
	}
	var err error
	if p.base, err = baseLabels(opts.Labels, logger); err != nil {
		return nil, err
	}
	switch {
	case opts.Sender != nil:
		p.sender = opts.Sender
	case opts.DryRun != nil:
		p.sender = NewDryRunSender(opts.DryRun)
	case opts.URL != nil:
		if err := checkURL(opts); err != nil {
			return nil, err
		}
		if p.sender, err = NewLokiSender(opts, logger); err != nil {
			return nil, err
		}
	default:
		return nil, ErrNoDestination
	}
	p.queue = queue.New(opts.QueueMaxBytes, func(e *Entry) int { return e.size() }, func(*Entry) {
		if p.queueClosed.Load() {
			p.m.drop(ReasonShutdown, 1)
		} else {
			p.m.drop(ReasonQueueFull, 1)
		}
	})
	p.tokens = float64(opts.Burst)
	p.tokenAt = opts.Now()
	return p, nil
}

// checkURL refuses to send credentials over plain HTTP to another host.
func checkURL(o Options) error {
	if o.URL.Scheme == "https" || (o.User == "" && o.Password == "") {
		return nil
	}
	host := o.URL.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("logs: %s: credentials are only sent over https (or to a loopback address)", o.URL.Redacted())
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// identityOrder is the order in which identity labels are kept when there
// are more than MaxLabels.
var identityOrder = []string{"app", "environment", "platform", "instance", "dyno_type"}

func baseLabels(in map[string]string, logger *slog.Logger) (model.LabelSet, error) {
	ls := model.LabelSet{}
	var extras []string
	for k := range in {
		if !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__") {
			logger.Warn("label not valid for Loki, left out", "label", k)
			continue
		}
		switch k {
		case "stream", "level", "service_name":
			logger.Warn("label is set by the log pipeline, left out", "label", k)
			continue
		}
		extras = append(extras, k)
	}
	sort.Slice(extras, func(i, j int) bool { return rank(extras[i]) < rank(extras[j]) })
	room := MaxLabels - 3 // service_name, stream, level
	for _, k := range extras {
		v := strings.ToValidUTF8(in[k], "\uFFFD")
		if v == "" {
			continue
		}
		if len(ls) >= room {
			logger.Warn("more than 15 stream labels, label left out", "label", k)
			continue
		}
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	app := string(ls["app"])
	if app == "" {
		app = "unknown"
	}
	ls["service_name"] = model.LabelValue(app)
	return ls, nil
}

func rank(k string) string {
	for i, n := range identityOrder {
		if n == k {
			return string(rune('0' + i))
		}
	}
	return "9" + k
}

// Start runs line handling, the sender loop and the file followers. The
// pipeline runs until Shutdown, whatever ctx does: ctx is only detached
// from (SIGTERM must not stop the capture; Shutdown does, under its deadline).
func (p *Pipeline) Start(ctx context.Context) {
	p.srcMu.Lock()
	if p.started {
		p.srcMu.Unlock()
		return
	}
	p.started = true
	p.srcMu.Unlock()

	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.sendStop = cancel
	go p.process()
	go p.sendLoop(sendCtx)
	go p.poll()
	if len(p.opts.Files) > 0 {
		go p.followFiles()
	} else {
		close(p.filesDone)
	}
}

// Status is a snapshot for the status endpoint.
type Status struct {
	Sender       string            `json:"sender"`
	LinesRead    uint64            `json:"lines_read"`
	LinesSent    uint64            `json:"lines_sent"`
	BytesSent    uint64            `json:"bytes_sent"`
	Dropped      map[string]uint64 `json:"lines_dropped"`
	Redacted     uint64            `json:"lines_redacted"`
	Truncated    uint64            `json:"lines_truncated"`
	QueueBytes   int64             `json:"queue_bytes"`
	QueueEntries int               `json:"queue_entries"`
	Sources      int               `json:"sources"`
}

// Status reports the pipeline's counters.
func (p *Pipeline) Status() Status {
	p.syncSender()
	p.srcMu.Lock()
	n := len(p.srcs)
	p.srcMu.Unlock()
	kind := "loki"
	switch p.sender.(type) {
	case *DryRunSender:
		kind = "dry-run"
	case *LokiSender:
	default:
		kind = fmt.Sprintf("%T", p.sender)
	}
	return Status{
		Sender:       kind,
		LinesRead:    p.m.nRead.Load(),
		LinesSent:    p.m.nSent.Load(),
		BytesSent:    p.m.nBytesSent.Load(),
		Dropped:      p.m.droppedSnapshot(),
		Redacted:     p.m.nRedacted.Load(),
		Truncated:    p.m.nTruncated.Load(),
		QueueBytes:   p.queue.Bytes(),
		QueueEntries: p.queue.Len(),
		Sources:      n,
	}
}

// pollEvery is how often the sender's outcomes reach the self-metrics.
const pollEvery = time.Second

func (p *Pipeline) poll() {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-p.pollStop:
			return
		case <-t.C:
			p.syncSender()
			p.m.queueBytes.Set(float64(p.queue.Bytes()))
		}
	}
}

// syncSender adds the sender's new outcomes to the self-metrics.
func (p *Pipeline) syncSender() {
	r, ok := p.sender.(statsReporter)
	if !ok {
		return
	}
	s := r.Stats()
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	last := p.lastStats
	p.m.addSent(sub(s.Sent, last.Sent), sub(s.SentBytes, last.SentBytes))
	p.m.drop(ReasonRejected, int(sub(s.Rejected, last.Rejected)))
	p.m.drop(ReasonRetryExhausted, int(sub(s.RetryExhausted, last.RetryExhausted)))
	p.lastStats = s
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// ---- capture side ----

// addSource registers a capture source; closer (may be nil) forces it to
// end when the shutdown deadline comes. It returns nil once the pipeline
// no longer takes lines.
func (p *Pipeline) addSource(stream string, closer func()) *sourceState {
	p.srcMu.Lock()
	defer p.srcMu.Unlock()
	if p.intakeClosedLocked() {
		return nil
	}
	s := &sourceState{stream: stream, read: p.m.read.WithLabelValues(stream)}
	p.srcs[s] = struct{}{}
	if closer != nil {
		p.closers[s] = closer
	}
	return s
}

func (p *Pipeline) intakeClosedLocked() bool {
	p.intakeMu.RLock()
	defer p.intakeMu.RUnlock()
	return p.intakeClosed
}

// endSource sends the source's final batch (its partial line, and the
// flush of its multiline entry) and unregisters it.
func (p *Pipeline) endSource(s *sourceState, last *batch) {
	last.eof = true
	p.offer(last)
	p.srcMu.Lock()
	delete(p.srcs, s)
	delete(p.closers, s)
	p.srcMu.Unlock()
}

// offer hands a batch to line handling without waiting: when the intake is
// full (line handling can't keep up), the batch's lines are dropped and
// counted (queue_full).
func (p *Pipeline) offer(b *batch) {
	n := len(b.lines)
	if n > 0 {
		b.src.read.Add(float64(n))
		p.m.nRead.Add(uint64(n))
	}
	if n == 0 && !b.eof {
		return
	}
	if !p.capturing.Load() {
		p.m.drop(ReasonShutdown, n)
		return
	}
	size := int64(len(b.buf) + 32*n)
	p.intakeMu.RLock()
	defer p.intakeMu.RUnlock()
	if p.intakeClosed {
		p.m.drop(ReasonShutdown, n)
		return
	}
	if !b.eof && p.intakeBytes.Load()+size > p.opts.IntakeMaxBytes {
		p.m.drop(ReasonQueueFull, n)
		return
	}
	p.intakeBytes.Add(size)
	// Even the end of a source doesn't wait: if it can't be queued, its
	// last line is counted and its pending multiline entry is flushed by
	// the window.
	select {
	case p.intake <- b:
	default:
		p.intakeBytes.Add(-size)
		p.m.drop(ReasonQueueFull, n)
	}
}

// full reports whether the intake has no room: capture then skips the
// lines of a read (counted) instead of copying them.
func (p *Pipeline) full() bool {
	return p.intakeBytes.Load() >= p.opts.IntakeMaxBytes || len(p.intake) == cap(p.intake)
}

// skipped counts the lines a capture source skipped while the intake was full.
func (p *Pipeline) skipped(s *sourceState, n int) {
	if n > 0 {
		s.read.Add(float64(n))
		p.m.nRead.Add(uint64(n))
		p.m.drop(ReasonQueueFull, n)
	}
}

// ---- line handling ----

func (p *Pipeline) process() {
	defer close(p.procDone)
	tick := time.NewTicker(max(p.opts.MultilineWindow/2, time.Millisecond))
	defer tick.Stop()
	var debt time.Duration
	for {
		select {
		case b, ok := <-p.intake:
			if !ok {
				for s := range p.pending {
					p.flushPending(s)
				}
				p.queueClosed.Store(true)
				p.queue.Close()
				return
			}
			p.intakeBytes.Add(-int64(len(b.buf) + 32*len(b.lines)))
			start := time.Now()
			p.handleBatch(b)
			putBatch(b)
			// Overloaded (the capture is skipping lines): line handling
			// takes at most about half a core, leaving the rest to the app
			// and the passthrough.
			if p.intakeBytes.Load() >= p.opts.IntakeMaxBytes/2 || len(p.intake) >= cap(p.intake)/2 {
				if debt += time.Since(start); debt >= 2*time.Millisecond {
					time.Sleep(debt)
					debt = 0
				}
			} else {
				debt = 0
			}
		case <-tick.C:
			now := p.opts.Now()
			for s := range p.pending {
				if now.Sub(s.pending.last) >= p.opts.MultilineWindow {
					p.flushPending(s)
				}
			}
		}
	}
}

func (p *Pipeline) handleBatch(b *batch) {
	s := b.src
	maxBytes := int(p.opts.MaxLineBytes)
	for i := range b.lines {
		l := b.lines[i]
		line := b.buf[l.start:l.end]
		if l.cut {
			p.m.truncated.Inc()
			p.m.nTruncated.Add(1)
		}
		if l.cut || l.cont {
			if s.pending != nil {
				p.flushPending(s)
			}
			inherit := ""
			if l.cont {
				inherit = s.lastLevel
			}
			p.emit(s, line, b.t, inherit)
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if !p.opts.Multiline {
			p.emit(s, line, b.t, "")
			continue
		}
		if pe := s.pending; pe != nil {
			if b.t.Sub(pe.last) <= p.opts.MultilineWindow && len(pe.buf)+1+len(line) <= maxBytes && pe.continues(line) {
				pe.buf = append(append(pe.buf, '\n'), line...)
				pe.last = b.t
				continue
			}
			p.flushPending(s)
		}
		if len(line) == 0 {
			p.m.drop(ReasonEmpty, 1)
			continue
		}
		pe := s.spare // reuse the last entry's buffer: emit copied it
		if pe == nil {
			pe = &pendingEntry{}
		}
		s.spare = nil
		*pe = pendingEntry{buf: append(pe.buf[:0], line...), first: b.t, last: b.t}
		if strings.HasPrefix(string(line), string(pyTraceback)) {
			pe.traceback, pe.level = tbIn, LevelError
		}
		s.pending = pe
		p.pending[s] = struct{}{}
	}
	if b.eof {
		if s.pending != nil {
			p.flushPending(s)
		}
	}
}

func (p *Pipeline) flushPending(s *sourceState) {
	pe := s.pending
	s.pending = nil
	delete(p.pending, s)
	p.emit(s, pe.buf, pe.first, pe.level)
	if cap(pe.buf) <= 64<<10 {
		s.spare = pe
	}
}

// emit turns one line or joined entry into an Entry and queues it.
func (p *Pipeline) emit(s *sourceState, text []byte, t time.Time, level string) {
	if len(text) == 0 {
		p.m.drop(ReasonEmpty, 1)
		return
	}
	if !utf8.Valid(text) {
		text = []byte(strings.ToValidUTF8(string(text), "\uFFFD"))
		p.m.invalidUTF.Inc()
	}
	first := text
	if i := strings.IndexByte(string(text), '\n'); i >= 0 {
		first = text[:i]
	}
	var f fields
	parseLine(first, &f)
	if level != "" && f.level == LevelUnknown {
		f.level = level
	}
	s.lastLevel = f.level
	if p.min > 0 && levelRank(f.level) < p.min {
		p.m.drop(ReasonMinLevel, 1)
		return
	}
	if p.opts.Drop != nil && p.opts.Drop.Match(text) {
		p.m.drop(ReasonDropRegex, 1)
		return
	}
	if p.opts.RateLimit > 0 && !p.take(t) {
		p.m.drop(ReasonRateLimit, 1)
		return
	}
	text, changed := p.red.redact(text)
	if changed {
		p.m.redacted.Inc()
		p.m.nRedacted.Add(1)
	}
	if max := int(p.opts.MaxLineBytes); len(text) > max {
		// U+FFFD replacements or [REDACTED] made it longer than Loki takes.
		text = text[:cutPoint(text, max)]
		p.m.truncated.Inc()
		p.m.nTruncated.Add(1)
	}
	ns := t.UnixNano()
	if last := p.lastTS[s.stream]; ns <= last {
		ns = last + 1
	}
	p.lastTS[s.stream] = ns
	e := &Entry{Labels: p.labelsFor(s.stream, f.level), Time: time.Unix(0, ns), Line: string(text)}
	if f.requestID != "" || f.traceID != "" || f.spanID != "" {
		e.Metadata = make([]Pair, 0, 3)
		for _, kv := range [...]Pair{{"request_id", f.requestID}, {"trace_id", f.traceID}, {"span_id", f.spanID}} {
			if kv.Value != "" {
				e.Metadata = append(e.Metadata, kv)
			}
		}
	}
	p.queue.Push(e)
}

// take spends one token of the rate limit.
func (p *Pipeline) take(t time.Time) bool {
	now := p.opts.Now()
	if el := now.Sub(p.tokenAt).Seconds(); el > 0 {
		p.tokens = min(float64(p.opts.Burst), p.tokens+el*p.opts.RateLimit)
		p.tokenAt = now
	}
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	return true
}

func (p *Pipeline) labelsFor(stream, level string) model.LabelSet {
	byLevel, ok := p.labels[stream]
	if !ok {
		byLevel = map[string]model.LabelSet{}
		p.labels[stream] = byLevel
	}
	if ls, ok := byLevel[level]; ok {
		return ls
	}
	ls := p.base.Clone()
	ls["stream"] = model.LabelValue(stream)
	ls["level"] = model.LabelValue(level)
	byLevel[level] = ls
	return ls
}

// ---- sending ----

func (p *Pipeline) sendLoop(ctx context.Context) {
	defer close(p.sendDone)
	last := map[string]int64{}
	for {
		e, err := p.queue.Pop(ctx)
		if err != nil {
			return
		}
		if !p.valid(e, last) {
			p.m.drop(ReasonInvalid, 1)
			continue
		}
		if p.stopping.Load() {
			p.m.drop(ReasonShutdown, 1)
			continue
		}
		p.handed.Add(1)
		if err := p.sender.Send(*e); err != nil {
			p.m.drop(ReasonInvalid, 1)
			p.logger.Debug("send entry", "err", err)
		}
	}
}

// valid checks what would make Loki reject a whole batch: an over-long or
// non-UTF-8 line, a timestamp not after the previous one of its stream.
func (p *Pipeline) valid(e *Entry, last map[string]int64) bool {
	if len(e.Line) == 0 || int64(len(e.Line)) > p.opts.MaxLineBytes || !utf8.ValidString(e.Line) {
		return false
	}
	ns := e.Time.UnixNano()
	stream := string(e.Labels["stream"])
	if ns <= last[stream] {
		return false
	}
	last[stream] = ns
	return true
}

// ---- shutdown ----

// Summary is what the pipeline did, reported once at shutdown.
type Summary struct {
	Read, Sent, Redacted, Truncated uint64
	Dropped                         map[string]uint64
	Elapsed                         time.Duration
}

// String is the one-line summary logged at shutdown.
func (s Summary) String() string {
	var d []string
	var total uint64
	for _, r := range dropReasons {
		if n := s.Dropped[r]; n > 0 {
			d = append(d, fmt.Sprintf("%s=%d", r, n))
			total += n
		}
	}
	drops := ""
	if total > 0 {
		drops = " (" + strings.Join(d, " ") + ")"
	}
	return fmt.Sprintf("logs: read %d lines, sent %d entries, dropped %d%s, redacted %d, truncated %d, shutdown took %s",
		s.Read, s.Sent, total, drops, s.Redacted, s.Truncated, s.Elapsed.Round(time.Millisecond))
}

// Shutdown ends the pipeline within ctx's deadline (25 s if it has none):
//  1. no new tee connections or files; file followers read to the end;
//  2. open sources (running Passthroughs, connected tees) are read until
//     they close, until FlushReserve before the deadline; then tees are
//     disconnected and Passthroughs keep copying but no longer offer lines;
//  3. pending multiline entries are flushed and the queue is sent;
//  4. the Loki client is stopped (its last batch flushed) by the deadline.
//
// What could not be sent is counted (reason="shutdown"). A second call
// (Heroku may signal twice) waits for the first and returns its Summary.
func (p *Pipeline) Shutdown(ctx context.Context) Summary {
	p.shutdownOnce.Do(func() { p.summary = p.shutdownNow(ctx) })
	return p.summary
}

func (p *Pipeline) shutdownNow(ctx context.Context) Summary {
	start := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(25 * time.Second)
	}
	p.srcMu.Lock()
	p.shutdown = true
	if p.listener != nil {
		p.listener.Close()
	}
	started := p.started
	p.srcMu.Unlock()
	if !started {
		p.Start(context.Background())
	}
	close(p.stopFiles)

	// 2. drain the sources.
	drainBy := deadline.Add(-p.opts.FlushReserve)
	if remaining := time.Until(deadline); p.opts.FlushReserve > remaining/2 {
		drainBy = start.Add(remaining / 2)
	}
	p.waitSources(drainBy)
	p.capturing.Store(false)
	p.srcMu.Lock()
	for _, c := range p.closers {
		c()
	}
	forced := len(p.srcs)
	p.srcMu.Unlock()
	if forced > 0 {
		p.logger.Warn("log sources still open at the drain deadline: no longer shipped", "sources", forced)
	}
	waitUntil(p.filesDone, drainBy.Add(time.Second))

	// 3. line handling flushes and closes the queue.
	p.intakeMu.Lock()
	p.intakeClosed = true
	close(p.intake)
	p.intakeMu.Unlock()
	<-p.procDone

	remaining := time.Until(deadline)
	stopReserve := min(p.opts.FlushReserve/2, remaining/2)
	if !waitUntil(p.sendDone, deadline.Add(-stopReserve)) {
		p.logger.Warn("log queue not drained by the deadline", "entries", p.queue.Len())
	}
	p.stopping.Store(true)
	p.sendStop()
	for {
		if _, ok := p.queue.TryPop(); !ok {
			break
		}
		p.m.drop(ReasonShutdown, 1)
	}

	// 4. stop the sender under the deadline.
	stopped := make(chan struct{})
	go func() { p.sender.Stop(); close(stopped) }()
	if !waitUntil(stopped, deadline) {
		p.logger.Warn("loki client did not stop by the deadline")
	}
	close(p.pollStop)
	p.syncSender()
	p.m.queueBytes.Set(0)
	p.statsMu.Lock()
	done := p.lastStats.Sent + p.lastStats.Rejected + p.lastStats.RetryExhausted
	p.statsMu.Unlock()
	if _, ok := p.sender.(statsReporter); ok {
		p.m.drop(ReasonShutdown, int(sub(p.handed.Load(), done)))
	}
	sum := Summary{
		Read:      p.m.nRead.Load(),
		Sent:      p.m.nSent.Load(),
		Redacted:  p.m.nRedacted.Load(),
		Truncated: p.m.nTruncated.Load(),
		Dropped:   p.m.droppedSnapshot(),
		Elapsed:   time.Since(start),
	}
	return sum
}

func (p *Pipeline) waitSources(by time.Time) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(by) {
		p.srcMu.Lock()
		n := len(p.srcs) + int(p.connecting.Load())
		p.srcMu.Unlock()
		if n == 0 {
			return
		}
		<-t.C
	}
}

// waitUntil waits for ch to close until t; it reports whether it did.
func waitUntil(ch <-chan struct{}, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}
