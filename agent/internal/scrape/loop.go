package scrape

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// source yields the metric families of one scrape. The families are valid
// until the next call.
type source interface {
	families(ctx context.Context) ([]*dto.MetricFamily, error)
}

type httpSource struct {
	f *httpFetcher
	p parser
}

func (s *httpSource) families(ctx context.Context) ([]*dto.MetricFamily, error) {
	body, contentType, err := s.f.fetch(ctx)
	if err != nil {
		return nil, err
	}
	return s.p.parse(body, contentType)
}

// pageSource is a source that reads a scrape straight into a page, without
// dto structs where it can (protobuf pages): the loop prefers it.
type pageSource interface {
	page(ctx context.Context, pg *page) error
}

var _ pageSource = (*httpSource)(nil)

func (s *httpSource) page(ctx context.Context, pg *page) error {
	body, contentType, err := s.f.fetch(ctx)
	if err != nil {
		pg.reset()
		return err
	}
	return s.p.parsePage(body, contentType, pg)
}

type gatherSource struct{ g prometheus.Gatherer }

// errGather marks the failure of an in-process gatherer.
var errGather = errors.New("gather")

func (s gatherSource) families(context.Context) ([]*dto.MetricFamily, error) {
	mfs, err := s.g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, fmt.Errorf("%w: %w", errGather, err)
	}
	// A partial result is still forwarded, as promhttp's ContinueOnError does.
	return mfs, nil
}

// loop scrapes one target. scrape runs on one goroutine at a time; Status
// may be read from any.
type loop struct {
	job, url    string // url is redacted
	offset      time.Duration
	src         source
	lb          *labeler
	limit       *series.Limit // nil: no budget (ScrapeOnce)
	force       bool          // admit past the budget (in-process gatherers)
	m           *metrics      // nil: not counted (ScrapeOnce)
	limitWarned *atomic.Bool  // shared by the Manager's loops: the limit was logged once
	logger      *slog.Logger
	now         func() time.Time
	timeout     time.Duration
	logEvery    time.Duration
	pg          page     // the page being labelled; reset after each scrape
	sink        Appender // set by run: samples are handed over in chunks as they are made

	active              map[string]int32 // by key (see labeler.key): the index in series
	series              []activeSeries   // the series admitted and not yet stale
	gen                 uint64           // number of the current scrape
	up, dur, scraped    series.Labels
	lastLen             int // samples of the last scrape
	handed              int // samples of this scrape handed to the sink so far
	failing             bool
	lastLog             time.Time
	suppressed          int
	dropLimit, dropDups int

	mu     sync.Mutex // covers status
	status TargetStatus
}

func newLoop(job, redacted, jitterKey string, src source, lb *labeler, interval time.Duration) *loop {
	h := fnv.New64a()
	_, _ = h.Write([]byte(jitterKey))
	l := &loop{
		job:    job,
		url:    redacted,
		src:    src,
		lb:     lb,
		active: map[string]int32{},
		status: TargetStatus{Job: job, URL: redacted},
	}
	if interval > 0 {
		l.offset = time.Duration(h.Sum64() % uint64(interval))
	}
	l.up = lb.keepLabels(lb.build("up", nil, "", ""))
	l.dur = lb.keepLabels(lb.build("scrape_duration_seconds", nil, "", ""))
	l.scraped = lb.keepLabels(lb.build("scrape_samples_scraped", nil, "", ""))
	return l
}

// run scrapes every interval, starting at the target's stable offset within
// the interval, until ctx is done.
func (l *loop) run(ctx context.Context, interval time.Duration, app Appender) {
	wait := l.offset - time.Duration(time.Now().UnixNano()%int64(interval))
	if wait < 0 {
		wait += interval
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	l.sink = app
	defer func() { l.sink = nil }()
	for {
		if res, _ := l.scrape(ctx); res.Samples != nil {
			app.Append(res.Samples)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// scrape runs one scrape and returns its samples: the page's, staleness
// markers and up/scrape_duration_seconds/scrape_samples_scraped. When ctx is
// cancelled (shutdown) it returns no samples: no staleness markers at
// shutdown, the next dyno continues the series.
//
// With a sink (run), the samples are handed to it in chunks of appendChunk
// while they are made, and Samples holds only the rest: a big page's label
// sets then never all wait in memory at once for the Appender.
func (l *loop) scrape(ctx context.Context) (Result, error) {
	start := l.now()
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.read(sctx)
	timedOut := sctx.Err() != nil
	cancel()
	defer l.pg.reset() // no string of this page is kept past the scrape
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	ts := start.UnixMilli()
	l.gen++
	samples := l.newChunk()
	var scraped int
	if err == nil {
		samples, scraped = l.expandPage(samples, scraped, &l.pg, ts)
		samples = l.markVanished(samples, ts)
	} else {
		err = fmt.Errorf("scrape %s: %w", l.url, err)
		samples = l.markAll(samples, ts)
	}
	dur := time.Since(t0)
	n := len(l.active)
	up := 1.0
	if err != nil {
		up = 0
	}
	samples = append(samples,
		series.Sample{Labels: l.up, T: ts, V: up},
		series.Sample{Labels: l.dur, T: ts, V: dur.Seconds()},
		series.Sample{Labels: l.scraped, T: ts, V: float64(scraped)})
	l.lastLen = l.handed + len(samples)
	l.handed = 0
	l.report(start, dur, n, err, timedOut)
	return Result{Series: n, Scraped: scraped, Duration: dur, Samples: samples}, err
}

// read fills l.pg with the target's page: straight from a pageSource, or
// from the dto families of any other source (in-process gatherers), in
// their order.
func (l *loop) read(ctx context.Context) error {
	if ps, ok := l.src.(pageSource); ok {
		return ps.page(ctx, &l.pg)
	}
	l.pg.reset()
	mfs, err := l.src.families(ctx)
	if err != nil {
		return err
	}
	l.pg.addFamilies(mfs)
	return nil
}

// expand turns one dto family into samples, as expandPage does.
func (l *loop) expand(out []series.Sample, scraped int, mf *dto.MetricFamily, ts int64) ([]series.Sample, int) {
	l.pg.reset()
	l.pg.addFamily(mf)
	out, scraped = l.expandPage(out, scraped, &l.pg, ts)
	l.pg.reset()
	return out, scraped
}

// expandPage turns a page into samples as Prometheus does: histograms into
// _bucket{le} (+Inf included), _sum and _count; summaries into
// {quantile}, _sum and _count.
func (l *loop) expandPage(out []series.Sample, scraped int, pg *page, ts int64) ([]series.Sample, int) {
	for _, f := range pg.fams {
		names := l.lb.names(f.name)
		for i := range pg.metrics[f.first:f.end] {
			m := &pg.metrics[int(f.first)+i]
			lp := pg.metricLabels(m)
			points := pg.points[m.p0:m.p1]
			switch f.typ {
			case dto.MetricType_SUMMARY:
				for _, q := range points {
					out = l.add(out, names.plain, lp, "quantile", l.lb.formatFloat(q.key), q.value, ts)
				}
				out = l.add(out, names.sum, lp, "", "", m.value, ts)
				out = l.add(out, names.count, lp, "", "", m.count, ts)
				scraped += len(points) + 2
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				inf := false
				for _, b := range points {
					inf = inf || math.IsInf(b.key, +1)
					out = l.add(out, names.bucket, lp, "le", l.lb.formatFloat(b.key), b.value, ts)
				}
				if !inf {
					out = l.add(out, names.bucket, lp, "le", "+Inf", m.count, ts)
				}
				out = l.add(out, names.sum, lp, "", "", m.value, ts)
				out = l.add(out, names.count, lp, "", "", m.count, ts)
				scraped += len(points) + 2
				if !inf {
					scraped++
				}
			default: // counter, gauge, untyped
				out = l.add(out, names.plain, lp, "", "", m.value, ts)
				scraped++
			}
		}
	}
	return out, scraped
}

// add appends one sample unless it is filtered, a duplicate, or over the
// series budget.
func (l *loop) add(out []series.Sample, name string, lp []series.Label, extraName, extraValue string, v float64, ts int64) []series.Sample {
	if name == "" { // dropped by keep/drop
		return out
	}
	ls := l.lb.buildLabels(name, lp, extraName, extraValue)
	key := l.lb.key(ls)
	i, ok := l.active[string(key)]
	switch {
	case ok && l.series[i].seen == l.gen: // twice on the page
		l.dropDups++
		return out
	case ok:
		l.series[i].seen = l.gen
	default:
		if !l.admit() {
			l.dropLimit++
			return out
		}
		i = int32(len(l.series))
		l.series = append(l.series, activeSeries{key: string(key), seen: l.gen})
		l.active[l.series[i].key] = i
	}
	return l.emit(out, series.Sample{Labels: l.lb.own(ls, l.series[i].key), T: ts, V: v})
}

// appendChunk is how many samples a scrape hands to its sink at a time:
// remote write's batch size.
const appendChunk = 2000

// newChunk returns the slice a scrape's samples go into.
func (l *loop) newChunk() []series.Sample {
	n := l.lastLen + 3
	if l.sink != nil {
		n = min(n, appendChunk)
	}
	return make([]series.Sample, 0, n)
}

// emit appends s to out, and hands out to the sink once it holds
// appendChunk samples.
func (l *loop) emit(out []series.Sample, s series.Sample) []series.Sample {
	out = append(out, s)
	if l.sink != nil && len(out) >= appendChunk {
		l.sink.Append(out)
		l.handed += len(out)
		out = l.newChunk()
	}
	return out
}

// activeSeries is a series of this target that holds a slot of the budget.
// Its labels are kept as the compact key (a few dozen bytes, where a
// series.Labels of the same series takes ~300): each scrape's samples get
// their label sets from it (labeler.own), in memory handed over with the
// samples.
type activeSeries struct {
	key  string
	seen uint64 // the last scrape that had it
}

func (l *loop) admit() bool {
	switch {
	case l.limit == nil:
		return true
	case l.force:
		l.limit.Force(1)
		return true
	}
	return l.limit.TryAcquire()
}

// markVanished writes staleness markers for the series that this scrape did
// not have, and frees their slots.
func (l *loop) markVanished(out []series.Sample, ts int64) []series.Sample {
	gone := 0
	for i := 0; i < len(l.series); {
		a := l.series[i]
		if a.seen == l.gen {
			i++
			continue
		}
		out = l.emit(out, series.Sample{Labels: l.lb.fromKey(a.key), T: ts, V: series.Stale()})
		delete(l.active, a.key)
		last := len(l.series) - 1
		if i != last { // the last series takes the gone one's place
			l.series[i] = l.series[last]
			l.active[l.series[i].key] = int32(i)
		}
		l.series[last] = activeSeries{}
		l.series = l.series[:last]
		gone++
	}
	if gone > 0 && cap(l.series) > 64 && len(l.series) < cap(l.series)/4 {
		l.series = append([]activeSeries(nil), l.series...) // a shrunk target gives the room back
	}
	if l.limit != nil {
		l.limit.Release(gone)
	}
	return out
}

// markAll marks every series stale after a failed scrape.
func (l *loop) markAll(out []series.Sample, ts int64) []series.Sample {
	l.gen++ // no series was seen in this scrape
	return l.markVanished(out, ts)
}

// report updates the status, the counters and the log.
func (l *loop) report(start time.Time, dur time.Duration, n int, err error, timedOut bool) {
	fixes := l.lb.takeFixes()
	if l.m != nil {
		for i, c := range fixes {
			if c > 0 {
				l.m.labelFixes.WithLabelValues(fixIndex[i]).Add(float64(c))
			}
		}
		l.m.droppedLimit.Add(float64(l.dropLimit))
		l.m.droppedInvalid.Add(float64(l.dropDups))
	}
	if l.dropLimit > 0 && l.logger != nil && l.limitWarned != nil {
		if l.limitWarned.CompareAndSwap(false, true) {
			l.logger.Warn("series limit reached: new series are dropped (counted in dynoscope_remote_write_samples_dropped_total{reason=\"series_limit\"}); raise DYNOSCOPE_MAX_SERIES or drop metrics with DYNOSCOPE_METRICS_DROP",
				"job", l.job, "target", l.url, "limit", l.limit.Max())
		} else {
			l.logger.Debug("series over the limit dropped", "job", l.job, "target", l.url, "dropped", l.dropLimit, "limit", l.limit.Max())
		}
	}
	l.dropLimit, l.dropDups = 0, 0

	l.mu.Lock()
	l.status.Up = err == nil
	l.status.LastScrape = start
	l.status.LastDuration = dur.Seconds()
	l.status.Series = n
	l.status.LastError = ""
	if err != nil {
		l.status.LastError = err.Error()
	}
	l.mu.Unlock()

	if err == nil {
		if l.failing && l.logger != nil {
			l.logger.Info("scrape recovered", "job", l.job, "target", l.url)
		}
		l.failing = false
		return
	}
	reason := classify(err, timedOut)
	if l.m != nil {
		l.m.failures.WithLabelValues(reason).Inc()
	}
	if l.logger == nil {
		return
	}
	if !l.failing || start.Sub(l.lastLog) >= l.logEvery {
		l.logger.Warn("scrape failed", "job", l.job, "target", l.url, "reason", reason,
			"failures_not_logged", l.suppressed, "err", err)
		l.lastLog = start
		l.suppressed = 0
	} else {
		l.suppressed++
	}
	l.failing = true
}

func classify(err error, timedOut bool) string {
	switch {
	case errors.Is(err, ErrBodyLimit):
		return reasonBodyLimit
	case errors.Is(err, ErrStatus):
		return reasonStatus
	case errors.Is(err, ErrParse):
		return reasonParse
	case errors.Is(err, errGather):
		return reasonGather
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	}
	return reasonNetwork
}

func (l *loop) getStatus() TargetStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}
