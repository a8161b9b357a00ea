package scrape

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// arenaChunk is how many labels one arena allocation holds: the labels of
// new series are copied into chunks, so a scrape allocates per chunk, not
// per series.
const arenaChunk = 4096

// labeler gives the series of one target their final label set: the page's
// labels cleaned up, the target and constant labels added, capped, sorted.
// It reuses its buffers: not safe for concurrent use.
type labeler struct {
	target     series.Labels // job, instance and the constant labels, sorted
	keep, drop *regexp.Regexp
	families   map[string]*familyNames
	floats     map[float64]string
	exported   map[string]string
	pairs      series.Labels // build's dto pairs as labels
	keyBuf     []byte        // key's result
	scratch    series.Labels // the page's labels of the series being built
	merged     series.Labels // and merged with the target labels
	arena      []series.Label
	fixes      [len(fixIndex)]int // by fixIndex, since the last takeFixes
}

// Indexes of labeler.fixes.
var fixIndex = [...]string{fixLabelLimit, fixValueLength, fixInvalidUTF8, fixInvalidName}

const (
	iLabelLimit = iota
	iValueLength
	iInvalidUTF8
	iInvalidName
)

// familyNames caches the sample names of a family and the keep/drop verdict
// on each ("" when the sample name is dropped).
type familyNames struct {
	plain, bucket, sum, count string
}

// newLabeler builds the target's labels; job and instance win over constant
// labels of the same name. A nil filter keeps everything.
func newLabeler(job, instance string, constant map[string]string, keep, drop *regexp.Regexp) *labeler {
	byName := map[string]string{}
	for n, v := range constant {
		byName[series.SanitizeLabelName(n)] = v
	}
	byName["job"] = job
	byName["instance"] = instance
	var target series.Labels
	for n, v := range byName {
		v, _ = series.SanitizeLabelValue(v)
		if v == "" || n == series.MetricName {
			continue
		}
		target = append(target, series.Label{Name: n, Value: v})
	}
	target.Sort()
	return &labeler{
		target:   target,
		keep:     keep,
		drop:     drop,
		families: map[string]*familyNames{},
		floats:   map[float64]string{},
		exported: map[string]string{},
	}
}

// names returns the sample names of a family, sanitised and filtered.
func (lb *labeler) names(family string) *familyNames {
	if fn, ok := lb.families[family]; ok {
		return fn
	}
	if len(lb.families) > 100_000 { // a page inventing names: start over
		clear(lb.families)
	}
	family = strings.Clone(family) // it may point into the page
	base := series.SanitizeMetricName(family)
	if base != family {
		lb.fixes[iInvalidName]++
	}
	fn := &familyNames{
		plain:  lb.filter(base),
		bucket: lb.filter(base + "_bucket"),
		sum:    lb.filter(base + "_sum"),
		count:  lb.filter(base + "_count"),
	}
	lb.families[family] = fn
	return fn
}

func (lb *labeler) filter(name string) string {
	if lb.keep != nil && !lb.keep.MatchString(name) {
		return ""
	}
	if lb.drop != nil && lb.drop.MatchString(name) {
		return ""
	}
	return name
}

// formatFloat renders le and quantile values as client_golang writes them,
// so the text, OpenMetrics ("1.0") and protobuf forms of a page give the
// same series.
func (lb *labeler) formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	if s, ok := lb.floats[f]; ok {
		return s
	}
	if len(lb.floats) > 10_000 {
		clear(lb.floats)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	lb.floats[f] = s
	return s
}

func (lb *labeler) isTarget(name string) bool {
	for _, l := range lb.target {
		if l.Name == name {
			return true
		}
	}
	return false
}

// exportedName keeps a page label that clashes with a target label as
// exported_<name>, as Prometheus does with honor_labels: false.
func (lb *labeler) exportedName(name string) string {
	if e, ok := lb.exported[name]; ok {
		return e
	}
	e := "exported_" + name
	lb.exported[strings.Clone(name)] = e
	return e
}

// build returns the labels of one sample in a scratch buffer that is valid
// until the next call: name is the final metric name, pairs the page's labels,
// extra (le, quantile) an optional label of the expansion.
func (lb *labeler) build(name string, pairs []*dto.LabelPair, extraName, extraValue string) series.Labels {
	lb.pairs = lb.pairs[:0]
	for _, p := range pairs {
		lb.pairs = append(lb.pairs, series.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	return lb.buildLabels(name, lb.pairs, extraName, extraValue)
}

// buildLabels is build with the page's labels as a series.Labels (unsorted,
// as on the page). Its strings may point into the page: keepLabels copies
// them.
func (lb *labeler) buildLabels(name string, pairs []series.Label, extraName, extraValue string) series.Labels {
	s := append(lb.scratch[:0], series.Label{Name: series.MetricName, Value: name})
	for _, p := range pairs {
		v := p.Value
		if v == "" {
			continue
		}
		n := p.Name
		if sn := series.SanitizeLabelName(n); sn != n {
			lb.fixes[iInvalidName]++
			n = sn
		}
		if n == series.MetricName {
			continue
		}
		v, fix := series.SanitizeLabelValue(v)
		if fix&series.FixInvalidUTF8 != 0 {
			lb.fixes[iInvalidUTF8]++
		}
		if fix&series.FixTruncated != 0 {
			lb.fixes[iValueLength]++
		}
		if lb.isTarget(n) {
			n = lb.exportedName(n)
		}
		s = append(s, series.Label{Name: n, Value: v})
	}
	if extraName != "" {
		s = append(s, series.Label{Name: extraName, Value: extraValue})
	}
	// The page's few labels are sorted by insertion, then merged with the
	// sorted target labels.
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Name < s[j-1].Name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	// A label twice on the page: the first one wins (the sort is stable).
	s = slices.CompactFunc(s, func(a, b series.Label) bool { return a.Name == b.Name })
	lb.scratch = s
	m := lb.merged[:0]
	i, j := 0, 0
	for i < len(s) && j < len(lb.target) {
		if s[i].Name < lb.target[j].Name {
			m = append(m, s[i])
			i++
		} else {
			m = append(m, lb.target[j])
			j++
		}
	}
	m = append(m, s[i:]...)
	m = append(m, lb.target[j:]...)
	if len(m) > series.MaxLabelsPerSeries {
		m = lb.capLabels(m)
	}
	lb.merged = m
	return m
}

// capLabels drops page labels, greatest names first, until the series has
// MaxLabelsPerSeries labels; __name__ and the target labels always stay.
func (lb *labeler) capLabels(s series.Labels) series.Labels {
	excess := len(s) - series.MaxLabelsPerSeries
	for i := len(s) - 1; i > 0 && excess > 0; i-- {
		if lb.isTarget(s[i].Name) {
			continue
		}
		s = slices.Delete(s, i, i+1)
		excess--
		lb.fixes[iLabelLimit]++
	}
	return s
}

// keepLabels copies labels out of the scratch buffer into the arena, for a
// label set that outlives this call. The strings are not copied: it is for
// label sets whose strings the labeler owns (the synthetic series).
func (lb *labeler) keepLabels(s series.Labels) series.Labels {
	out := lb.alloc(len(s))
	copy(out, s)
	return out
}

// alloc returns room for n labels in the arena. The arena's chunks are
// never reused: what is handed out is owned by the caller (and by the
// samples it goes with).
func (lb *labeler) alloc(n int) series.Labels {
	if cap(lb.arena)-len(lb.arena) < n {
		lb.arena = make([]series.Label, 0, max(arenaChunk, n))
	}
	k := len(lb.arena)
	lb.arena = lb.arena[:k+n]
	return lb.arena[k : k+n : k+n]
}

// keySep separates names and values in a key: 0xff is never part of
// valid UTF-8, and label values are made valid before they get here.
const keySep = 0xff

// key encodes a built label set (valid until the next call) without the
// target labels, which every series of the labeler shares: the names and
// values of __name__ and the page's labels, each followed by keySep. Two
// label sets of this labeler are equal exactly when their keys are.
func (lb *labeler) key(ls series.Labels) []byte {
	b := lb.keyBuf[:0]
	j := 0
	for _, l := range ls {
		if j < len(lb.target) && l.Name == lb.target[j].Name {
			j++
			continue
		}
		b = append(b, l.Name...)
		b = append(b, keySep)
		b = append(b, l.Value...)
		b = append(b, keySep)
	}
	lb.keyBuf = b
	return b
}

// own copies a built label set into the arena, its page strings replaced
// by the same strings within key (its key, owned by the series), so that
// the result shares no memory with the page.
func (lb *labeler) own(ls series.Labels, key string) series.Labels {
	out := lb.alloc(len(ls))
	j, p := 0, 0
	for i, l := range ls {
		if j < len(lb.target) && l.Name == lb.target[j].Name {
			out[i] = lb.target[j]
			j++
			continue
		}
		n := key[p : p+len(l.Name)]
		p += len(l.Name) + 1
		v := key[p : p+len(l.Value)]
		p += len(l.Value) + 1
		out[i] = series.Label{Name: n, Value: v}
	}
	return out
}

// fromKey rebuilds a series' label set from its key (for its staleness
// marker), in the arena.
func (lb *labeler) fromKey(key string) series.Labels {
	s := lb.scratch[:0]
	for len(key) > 0 {
		i := strings.IndexByte(key, keySep)
		n := key[:i]
		key = key[i+1:]
		i = strings.IndexByte(key, keySep)
		s = append(s, series.Label{Name: n, Value: key[:i]})
		key = key[i+1:]
	}
	lb.scratch = s
	out := lb.alloc(len(s) + len(lb.target))
	i, j, k := 0, 0, 0
	for i < len(s) && j < len(lb.target) {
		if s[i].Name < lb.target[j].Name {
			out[k] = s[i]
			i++
		} else {
			out[k] = lb.target[j]
			j++
		}
		k++
	}
	k += copy(out[k:], s[i:])
	copy(out[k:], lb.target[j:])
	return out
}

// takeFixes returns the fix counts since the last call and zeroes them.
func (lb *labeler) takeFixes() [len(fixIndex)]int {
	f := lb.fixes
	lb.fixes = [len(fixIndex)]int{}
	return f
}
