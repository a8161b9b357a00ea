// Package series holds the sample types that flow from scrape to remote write.
// It is the neutral ground between the two: scrape produces Samples, remote
// write consumes them, and neither imports the other.
package series

import (
	"math"
	"sort"
	"strings"
)

// StaleNaN is the bit pattern Prometheus uses to mark a series as stale: a
// series that vanished between scrapes, or every series of a failed scrape.
const StaleNaN uint64 = 0x7ff0000000000002

// MetricName is the label that carries the metric name.
const MetricName = "__name__"

// Label is one name/value pair.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by name, __name__ included (it sorts first).
type Labels []Label

// Get returns the value of the named label, or "" when it is absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Sort orders the labels by name, as remote write requires.
func (ls Labels) Sort() {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
}

// String renders the set as exposition format: name{a="b",c="d"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteString(ls.Get(MetricName))
	b.WriteByte('{')
	first := true
	for _, l := range ls {
		if l.Name == MetricName {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Sample is one value of one series at one time.
type Sample struct {
	Labels Labels
	T      int64 // milliseconds since the Unix epoch
	V      float64
}

// IsStale reports whether the sample is a staleness marker.
func (s Sample) IsStale() bool { return math.Float64bits(s.V) == StaleNaN }

// Stale returns the staleness marker value.
func Stale() float64 { return math.Float64frombits(StaleNaN) }
