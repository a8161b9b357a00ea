// Package remotewrite is the last stage of the metrics pipeline: it batches
// samples, encodes each batch once as a snappy-compressed remote write 1.0
// WriteRequest, queues the bytes in a bounded queue and sends them, in order,
// with retries, backoff, Retry-After and an age bound.
package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/queue"
	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// Defaults for Options. How long data survives an outage: a failed batch is
// retried after 1s, 2s, 4s, 8s, 16s, 30s, then every 30s (each wait
// jittered between half and all of it; a Retry-After replaces the wait), and
// is dropped as too_old once its oldest sample is DefaultMaxSampleAge (2h)
// old. Batches queued behind it wait their turn in the 16MiB queue, which
// drops the oldest batch (queue_full) only when it is full. So an outage
// shorter than ~2h loses nothing while the queue holds it; at shutdown
// whatever is still queued when the deadline passes is dropped (shutdown).
const (
	DefaultQueueMaxBytes     = 16 << 20
	DefaultMaxSamplesPerSend = 2000 // as Prometheus' max_samples_per_send
	DefaultBatchDeadline     = 5 * time.Second
	DefaultTimeout           = 30 * time.Second
	DefaultMinBackoff        = time.Second
	DefaultMaxBackoff        = 30 * time.Second
	DefaultMaxSampleAge      = 2 * time.Hour
	DefaultUserAgent         = "dynoscope/dev"
)

// batchOverhead is what a queued batch costs besides its bytes.
const batchOverhead = 64

// logEvery is how often a repeating failure is logged again (with the count
// of what was held back in between).
const logEvery = time.Minute

// Options configure a Writer. Zero values take the defaults above.
type Options struct {
	// URL is the remote write endpoint (see NormalizeURL). User info in the
	// URL is used as basic auth when User and Password are empty, and is
	// never sent in the URL itself. Not needed with DryRun.
	URL            *url.URL
	User, Password string
	// UserAgent is sent with every request: "dynoscope/<version>".
	UserAgent         string
	QueueMaxBytes     int64
	MaxSamplesPerSend int
	BatchDeadline     time.Duration // longest a sample waits for its batch to fill
	Timeout           time.Duration // per request
	MinBackoff        time.Duration
	MaxBackoff        time.Duration
	MaxSampleAge      time.Duration // older samples are dropped (too_old), not sent or retried

	// DryRun, when set, receives every batch in exposition format instead of
	// sending it anywhere.
	DryRun io.Writer

	// Transport for the HTTP client; default: a clone of
	// http.DefaultTransport (proxy from the environment, TLS verified).
	Transport http.RoundTripper
	// Now is the clock for sample ages and Retry-After dates; Sleep waits
	// between retries. Tests inject both; default time.Now and a timer.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o *Options) setDefaults() {
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.QueueMaxBytes <= 0 {
		o.QueueMaxBytes = DefaultQueueMaxBytes
	}
	if o.MaxSamplesPerSend <= 0 {
		o.MaxSamplesPerSend = DefaultMaxSamplesPerSend
	}
	if o.BatchDeadline <= 0 {
		o.BatchDeadline = DefaultBatchDeadline
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.MaxSampleAge <= 0 {
		o.MaxSampleAge = DefaultMaxSampleAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
}

// batch is one encoded request waiting in the queue: the bytes are final, a
// retry resends them as they are.
type batch struct {
	data    []byte
	samples int
	oldest  int64 // ms, the oldest sample's timestamp: the batch's age
}

// Summary is what a Writer did over its life, for main's one shutdown log
// line.
type Summary struct {
	Sent     int64            // samples accepted by the remote
	Dropped  map[string]int64 // samples dropped, by reason (shutdown: abandoned at the deadline)
	Duration time.Duration    // how long Shutdown took
}

// DroppedTotal is the sum of Dropped.
func (s Summary) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Status is a snapshot for the status page. It holds no secrets.
type Status struct {
	Endpoint       string           `json:"endpoint"` // redacted; "dry-run" in dry run
	QueueBytes     int64            `json:"queue_bytes"`
	QueueBatches   int              `json:"queue_batches"`
	PendingSamples int              `json:"pending_samples"` // not yet in a batch
	SamplesSent    int64            `json:"samples_sent"`
	Dropped        map[string]int64 `json:"samples_dropped"`
	Retries        int64            `json:"retries"`
	LastSuccess    time.Time        `json:"last_success,omitzero"`
	LastError      string           `json:"last_error,omitempty"`
	LastErrorTime  time.Time        `json:"last_error_time,omitzero"`
}

// Writer is the remote write stage. Append takes samples from the scrape
// stage without ever blocking on the network; Run sends; Shutdown flushes.
// Safe for concurrent use.
type Writer struct {
	opts     Options
	log      *slog.Logger
	m        *Metrics
	client   sender // nil in dry run
	endpoint string

	mu           sync.Mutex // covers pending, pendingSince, enc and closed
	pending      []series.Sample
	pendingSince time.Time
	enc          *encoder
	closed       bool

	q *queue.Queue[*batch]

	sendMu sync.Mutex // held by whoever sends (Run, then Shutdown); covers head
	head   *batch     // taken from the queue, not yet sent or dropped

	stop         chan struct{}   // closed by Shutdown: Run hands over
	shutdownCtx  context.Context // Shutdown's, set before stop is closed
	shutdownOnce sync.Once
	summary      Summary

	sent        atomic.Int64
	dropped     [len(reasons)]atomic.Int64 // by index in reasons
	retries     atomic.Int64
	lastSuccess atomic.Int64 // unix nanoseconds

	errMu      sync.Mutex // covers lastErr and lastErrAt
	lastErr    string
	lastErrAt  time.Time
	retryLog   logLimiter
	rejectLog  logLimiter
	tooOldLog  logLimiter
	failedFrom time.Time // start of the current run of failures; only the sender touches it
	failedRuns int
}

// appender is the scrape stage's Appender, repeated here so this package
// does not import its upstream.
type appender interface{ Append([]series.Sample) }

var _ appender = (*Writer)(nil)

// New returns a Writer for opts. metrics may be nil (fresh, unregistered).
// It fails if the URL is missing (without DryRun) or not http(s), or if
// credentials would go over plain http to a non-loopback host
// (ErrInsecureCredentials). Errors never contain credentials.
func New(opts Options, logger *slog.Logger, metrics *Metrics) (*Writer, error) {
	opts.setDefaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	w := &Writer{
		opts:      opts,
		log:       logger.With("component", "remotewrite"),
		m:         metrics,
		enc:       newEncoder(),
		stop:      make(chan struct{}),
		retryLog:  logLimiter{interval: logEvery},
		rejectLog: logLimiter{interval: logEvery},
		tooOldLog: logLimiter{interval: logEvery},
		endpoint:  "dry-run",
	}
	if opts.DryRun == nil {
		if opts.URL == nil {
			return nil, errors.New("remote write: no URL")
		}
		u := *opts.URL
		user, password := opts.User, opts.Password
		if u.User != nil {
			if user == "" && password == "" {
				user = u.User.Username()
				password, _ = u.User.Password()
			}
			u.User = nil
		}
		if err := checkURL(opts.URL, user != "" || password != ""); err != nil {
			return nil, err
		}
		w.endpoint = u.Redacted()
		w.client = &client{
			url: &u, endpoint: w.endpoint, user: user, password: password,
			userAgent: opts.UserAgent, timeout: opts.Timeout, now: opts.Now,
			http: &http.Client{Transport: opts.Transport},
		}
	}
	w.q = queue.New(opts.QueueMaxBytes, func(b *batch) int { return len(b.data) + batchOverhead }, func(b *batch) {
		w.drop(ReasonQueueFull, b.samples) // the queue made room, or the batch alone is larger than the queue
	})
	return w, nil
}

// Append takes samples for sending. It never blocks on the network: samples
// join the pending batch, which is encoded into the queue once it holds
// MaxSamplesPerSend samples or is BatchDeadline old. Samples older than
// MaxSampleAge are dropped (too_old), so are samples without a metric name,
// with an empty label name or a duplicate label (invalid). Append copies
// the slice but keeps the samples' Labels: the caller must not modify them
// afterwards. After Shutdown, samples are dropped (shutdown).
func (w *Writer) Append(samples []series.Sample) {
	if len(samples) == 0 {
		return
	}
	cutoff := w.opts.Now().Add(-w.opts.MaxSampleAge).UnixMilli()
	var tooOld, invalid int
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.drop(ReasonShutdown, len(samples))
		return
	}
	for _, s := range samples {
		if s.T <= cutoff {
			tooOld++
			continue
		}
		ls, ok := validLabels(s.Labels)
		if !ok {
			invalid++
			continue
		}
		s.Labels = ls
		if len(w.pending) == 0 {
			w.pendingSince = time.Now()
		}
		w.pending = append(w.pending, s)
		if len(w.pending) >= w.opts.MaxSamplesPerSend {
			w.flushLocked()
		}
	}
	if len(w.pending) > 0 && time.Since(w.pendingSince) >= w.opts.BatchDeadline {
		w.flushLocked()
	}
	w.mu.Unlock()
	w.drop(ReasonTooOld, tooOld)
	w.drop(ReasonInvalid, invalid)
}

// validLabels checks a label set; unsorted sets are sorted (a copy).
func validLabels(ls series.Labels) (series.Labels, bool) {
	if ls.Get(series.MetricName) == "" {
		return nil, false
	}
	sorted := true
	for i := range ls {
		if ls[i].Name == "" {
			return nil, false
		}
		if i > 0 && ls[i-1].Name >= ls[i].Name {
			sorted = false
		}
	}
	if !sorted {
		ls = append(series.Labels(nil), ls...)
		ls.Sort()
		for i := 1; i < len(ls); i++ {
			if ls[i-1].Name == ls[i].Name {
				return nil, false
			}
		}
	}
	return ls, true
}

// flushLocked encodes the pending samples into one batch and queues it.
// The caller holds mu.
func (w *Writer) flushLocked() {
	if len(w.pending) == 0 {
		return
	}
	b := &batch{samples: len(w.pending), oldest: w.pending[0].T}
	for _, s := range w.pending {
		b.oldest = min(b.oldest, s.T)
	}
	if w.opts.DryRun != nil {
		b.data = w.enc.encodeText(w.pending)
	} else {
		b.data = w.enc.encodeCompressed(w.pending)
	}
	clear(w.pending) // release the labels
	w.pending = w.pending[:0]
	w.q.Push(b)
	w.m.QueueBytes.Set(float64(w.q.Bytes()))
}

// flushDue flushes the pending batch if it is BatchDeadline old.
func (w *Writer) flushDue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 && time.Since(w.pendingSince) >= w.opts.BatchDeadline {
		w.flushLocked()
	}
}

// Run sends queued batches, one request at a time in queue order, until ctx
// is done or Shutdown takes over; it also flushes the pending batch at its
// deadline. When Shutdown is called, Run starts no new request or wait: a
// request in flight finishes (within Shutdown's deadline) and Shutdown goes
// on from there, so nothing is sent twice. Cancelling ctx aborts at once;
// the batch in flight is then kept for Shutdown. Run once.
func (w *Writer) Run(ctx context.Context) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	reqCtx, cancelReq := context.WithCancel(ctx) // requests: until ctx, or Shutdown's deadline
	defer cancelReq()
	waitCtx, cancelWait := context.WithCancel(reqCtx) // pops and waits: until Shutdown is called
	defer cancelWait()
	go func() {
		tick := time.NewTicker(max(w.opts.BatchDeadline/4, 5*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				cancelWait()
				select {
				case <-w.shutdownCtx.Done():
					cancelReq()
				case <-reqCtx.Done():
				}
				return
			case <-reqCtx.Done():
				return
			case <-tick.C:
				w.flushDue()
			}
		}
	}()
	for waitCtx.Err() == nil {
		if w.head == nil {
			b, err := w.q.Pop(waitCtx)
			if err != nil {
				return
			}
			w.head = b
			w.m.QueueBytes.Set(float64(w.q.Bytes()))
		}
		if !w.deliver(reqCtx, waitCtx, w.head) {
			return
		}
		w.head = nil
	}
}

// Shutdown stops taking samples, flushes the pending batch and sends what
// is queued until ctx's deadline; no retry starts that would end past it.
// What is left is counted as dropped (shutdown). It returns the Writer's
// lifetime summary. Calling it again (or concurrently) waits for the first
// call and returns the same summary.
func (w *Writer) Shutdown(ctx context.Context) Summary {
	w.shutdownOnce.Do(func() {
		start := time.Now()
		w.shutdownCtx = ctx
		close(w.stop)
		w.sendMu.Lock() // Run returns once its request in flight, if any, is answered
		defer w.sendMu.Unlock()
		w.mu.Lock()
		w.closed = true
		w.flushLocked()
		w.mu.Unlock()
		w.q.Close()

		for ctx.Err() == nil {
			if w.head == nil {
				b, ok := w.q.TryPop()
				if !ok {
					break
				}
				w.head = b
			}
			if !w.deliver(ctx, ctx, w.head) {
				break
			}
			w.head = nil
		}
		abandoned := 0
		if w.head != nil {
			abandoned += w.head.samples
			w.head = nil
		}
		for b, ok := w.q.TryPop(); ok; b, ok = w.q.TryPop() {
			abandoned += b.samples
		}
		w.m.QueueBytes.Set(0)
		w.drop(ReasonShutdown, abandoned)
		w.summary = Summary{Sent: w.sent.Load(), Dropped: w.droppedMap(), Duration: time.Since(start)}
		if abandoned > 0 {
			w.log.Warn("shutdown deadline passed, samples abandoned", "samples", abandoned)
		}
	})
	return w.summary
}

// deliver sends b until it is accepted, rejected or too old (true), or
// stops early (false: b is still to be sent): when reqCtx ends (it bounds
// the requests), or waitCtx does (no new attempt or wait starts then, and
// none that would outlast its deadline).
func (w *Writer) deliver(reqCtx, waitCtx context.Context, b *batch) bool {
	if w.opts.DryRun != nil {
		if _, err := w.opts.DryRun.Write(b.data); err != nil {
			w.setLastError(fmt.Errorf("dry run: %w", err))
			w.drop(ReasonRejected, b.samples)
			return true
		}
		w.markSent(b.samples)
		return true
	}
	for attempt := 0; ; attempt++ {
		if waitCtx.Err() != nil {
			return false
		}
		now := w.opts.Now()
		expires := time.UnixMilli(b.oldest).Add(w.opts.MaxSampleAge) // too old from then on
		if !now.Before(expires) {
			w.drop(ReasonTooOld, b.samples)
			if ok, held := w.tooOldLog.allow(now); ok {
				w.log.Warn("batch dropped: too old to send", "samples", b.samples, "age", now.Sub(time.UnixMilli(b.oldest)), "max_age", w.opts.MaxSampleAge, "similar_since_last_log", held)
			}
			return true
		}
		res, err := w.client.send(reqCtx, b.data)
		if reqCtx.Err() != nil {
			return false // aborted, not answered: the batch stays
		}
		w.observe(res)
		if err == nil {
			w.markSent(b.samples)
			return true
		}
		w.setLastError(err)
		var rerr *RecoverableError
		if !errors.As(err, &rerr) {
			w.drop(ReasonRejected, b.samples)
			if ok, held := w.rejectLog.allow(now); ok {
				w.log.Error("batch rejected by remote write endpoint, dropped", "samples", b.samples, "status_code", res.statusCode, "body", res.body, "similar_since_last_log", held)
			}
			return true
		}
		w.m.Failed.Add(float64(b.samples))
		w.m.Retries.Inc()
		w.retries.Add(1)
		if w.failedFrom.IsZero() {
			w.failedFrom = now
		}
		w.failedRuns++
		wait := rerr.RetryAfter
		if wait <= 0 {
			wait = backoff(attempt, w.opts.MinBackoff, w.opts.MaxBackoff)
		}
		// Never wait past the moment the batch becomes too old: then it is dropped.
		if left := expires.Sub(now); wait > left {
			wait = left
		}
		if ok, held := w.retryLog.allow(now); ok {
			w.log.Warn("remote write failed, retrying", "err", err, "wait", wait, "attempt", attempt+1, "similar_since_last_log", held)
		}
		if deadline, ok := waitCtx.Deadline(); ok && time.Until(deadline) < wait {
			return false // no retry would start before the deadline
		}
		if err := w.opts.Sleep(waitCtx, wait); err != nil {
			return false
		}
	}
}

func (w *Writer) observe(res response) {
	code := "error"
	if res.statusCode != 0 {
		code = fmt.Sprint(res.statusCode)
	}
	w.m.RequestDuration.WithLabelValues(code).Observe(res.duration.Seconds())
}

func (w *Writer) markSent(n int) {
	w.sent.Add(int64(n))
	w.m.Sent.Add(float64(n))
	now := w.opts.Now()
	w.lastSuccess.Store(now.UnixNano())
	w.m.LastSuccess.Set(float64(now.UnixNano()) / 1e9)
	if !w.failedFrom.IsZero() {
		w.log.Info("remote write recovered", "failed_requests", w.failedRuns, "outage", now.Sub(w.failedFrom).Round(time.Millisecond))
		w.failedFrom, w.failedRuns = time.Time{}, 0
	}
}

func (w *Writer) drop(reason string, n int) {
	if n <= 0 {
		return
	}
	for i, r := range reasons {
		if r == reason {
			w.dropped[i].Add(int64(n))
		}
	}
	w.m.Dropped.WithLabelValues(reason).Add(float64(n))
}

func (w *Writer) droppedMap() map[string]int64 {
	m := make(map[string]int64, len(reasons))
	for i, r := range reasons {
		m[r] = w.dropped[i].Load()
	}
	return m
}

func (w *Writer) setLastError(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	w.lastErr, w.lastErrAt = err.Error(), w.opts.Now()
}

// Status returns a snapshot for the status page.
func (w *Writer) Status() Status {
	w.mu.Lock()
	pending := len(w.pending)
	w.mu.Unlock()
	w.errMu.Lock()
	lastErr, lastErrAt := w.lastErr, w.lastErrAt
	w.errMu.Unlock()
	s := Status{
		Endpoint:       w.endpoint,
		QueueBytes:     w.q.Bytes(),
		QueueBatches:   w.q.Len(),
		PendingSamples: pending,
		SamplesSent:    w.sent.Load(),
		Dropped:        w.droppedMap(),
		Retries:        w.retries.Load(),
		LastError:      lastErr,
		LastErrorTime:  lastErrAt,
	}
	if ns := w.lastSuccess.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns).UTC()
	}
	return s
}
