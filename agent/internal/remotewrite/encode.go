package remotewrite

import (
	"hash/maphash"
	"math"
	"slices"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// The WriteRequest is encoded by hand with protowire rather than through
// prompb's gogo types: building a prompb.WriteRequest means one TimeSeries,
// one []Label and one []Sample per series (thousands of small allocations per
// batch), only to have gogo walk them again. Remote write 1.0 needs four tiny
// messages, so appending the wire bytes straight from series.Sample into a
// reused buffer costs no intermediate structs at all. The tests decode the
// result with prompb (the real types, gogo Unmarshal) and also compare it byte
// for byte with gogo's own Marshal, so the two cannot drift apart.
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label        { string name = 1; string value = 2; }
//	message Sample       { double value = 1; int64 timestamp = 2; }
const (
	fieldWriteRequestTimeseries protowire.Number = 1
	fieldTimeSeriesLabels       protowire.Number = 1
	fieldTimeSeriesSamples      protowire.Number = 2
	fieldLabelName              protowire.Number = 1
	fieldLabelValue             protowire.Number = 2
	fieldSampleValue            protowire.Number = 1
	fieldSampleTimestamp        protowire.Number = 2
)

// group is one series within a batch: the samples that share its labels.
type group struct {
	first    int32 // index (into the batch) of the group's first sample: its labels
	count    int32 // samples in the group
	start    int32 // offset of the group's samples in encoder.order
	sameHash int32 // next group with the same label hash, or -1
}

// encoder turns a batch of samples into a snappy-compressed remote write 1.0
// WriteRequest. It keeps every buffer between batches, so encoding a batch
// allocates only the returned slice. It is not safe for concurrent use: the
// Writer's mutex covers it.
type encoder struct {
	seed   maphash.Seed
	hash   maphash.Hash
	index  map[uint64]int32 // label hash -> first group with that hash
	groups []group
	of     []int32 // group of each sample of the batch
	order  []int32 // sample indices grouped by series, in time order within a group
	raw    []byte  // the uncompressed WriteRequest
	comp   []byte  // snappy output, copied out per batch
}

func newEncoder() *encoder {
	e := &encoder{seed: maphash.MakeSeed(), index: map[uint64]int32{}}
	e.hash.SetSeed(e.seed)
	return e
}

// group sorts the batch's samples into series (in order of first
// appearance) and each series' samples into time order. It fills e.groups
// and e.order.
func (e *encoder) group(samples []series.Sample) {
	clear(e.index)
	e.groups = e.groups[:0]
	e.of = slices.Grow(e.of[:0], len(samples))[:len(samples)]
	for i := range samples {
		h := e.labelsHash(samples[i].Labels)
		g, ok := e.index[h]
		if !ok {
			e.index[h] = e.newGroup(i)
			e.of[i] = int32(len(e.groups) - 1)
			continue
		}
		for { // walk the groups that share this hash (a collision is all but impossible)
			if labelsEqual(samples[e.groups[g].first].Labels, samples[i].Labels) {
				e.groups[g].count++
				e.of[i] = g
				break
			}
			if e.groups[g].sameHash < 0 {
				e.groups[g].sameHash = e.newGroup(i)
				e.of[i] = int32(len(e.groups) - 1)
				break
			}
			g = e.groups[g].sameHash
		}
	}

	// Counting sort by group keeps each group's samples in arrival order.
	var off int32
	for g := range e.groups {
		e.groups[g].start = off
		off += e.groups[g].count
	}
	e.order = slices.Grow(e.order[:0], len(samples))[:len(samples)]
	for g := range e.groups { // count becomes the fill cursor

		e.groups[g].count = 0
	}
	for i := range samples {
		g := &e.groups[e.of[i]]
		e.order[g.start+g.count] = int32(i)
		g.count++
	}
	for _, g := range e.groups {
		idx := e.order[g.start : g.start+g.count]
		if !slices.IsSortedFunc(idx, func(a, b int32) int { return cmpInt64(samples[a].T, samples[b].T) }) {
			slices.SortStableFunc(idx, func(a, b int32) int { return cmpInt64(samples[a].T, samples[b].T) })
		}
	}
}

func (e *encoder) newGroup(first int) int32 {
	e.groups = append(e.groups, group{first: int32(first), count: 1, sameHash: -1})
	return int32(len(e.groups) - 1)
}

func (e *encoder) labelsHash(ls series.Labels) uint64 {
	e.hash.Reset()
	for _, l := range ls {
		e.hash.WriteString(l.Name)
		e.hash.WriteByte(0xff)
		e.hash.WriteString(l.Value)
		e.hash.WriteByte(0xff)
	}
	return e.hash.Sum64()
}

func labelsEqual(a, b series.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encode appends the uncompressed WriteRequest for samples to e.raw[:0] and
// returns it. The result is valid until the next call.
func (e *encoder) encode(samples []series.Sample) []byte {
	e.group(samples)
	b := e.raw[:0]
	for _, g := range e.groups {
		ls := samples[g.first].Labels
		idx := e.order[g.start : g.start+g.count]
		b = append(b, tag(fieldWriteRequestTimeseries, protowire.BytesType))
		b = protowire.AppendVarint(b, uint64(timeSeriesSize(ls, samples, idx)))
		for _, l := range ls {
			if l.Value == "" { // an empty value means the label is absent
				continue
			}
			b = append(b, tag(fieldTimeSeriesLabels, protowire.BytesType))
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = append(b, tag(fieldLabelName, protowire.BytesType))
			b = protowire.AppendString(b, l.Name)
			b = append(b, tag(fieldLabelValue, protowire.BytesType))
			b = protowire.AppendString(b, l.Value)
		}
		for _, i := range idx {
			s := &samples[i]
			b = append(b, tag(fieldTimeSeriesSamples, protowire.BytesType))
			b = protowire.AppendVarint(b, uint64(sampleSize(s)))
			if s.V != 0 { // proto3 omits zero values, as gogo does
				b = append(b, tag(fieldSampleValue, protowire.Fixed64Type))
				b = protowire.AppendFixed64(b, math.Float64bits(s.V))
			}
			if s.T != 0 {
				b = append(b, tag(fieldSampleTimestamp, protowire.VarintType))
				b = protowire.AppendVarint(b, uint64(s.T))
			}
		}
	}
	e.raw = b
	return b
}

// encodeCompressed encodes samples and compresses them with snappy's block
// format (remote write 1.0 does not use the framed stream format). The
// returned slice is newly allocated and owned by the caller.
func (e *encoder) encodeCompressed(samples []series.Sample) []byte {
	raw := e.encode(samples)
	if n := snappy.MaxEncodedLen(len(raw)); cap(e.comp) < n {
		e.comp = make([]byte, n)
	}
	comp := snappy.Encode(e.comp[:cap(e.comp)], raw)
	return append([]byte(nil), comp...)
}

// tag is a field's tag as its single wire byte (every field number here is
// below 16), cheaper than protowire.AppendTag's general varint.
func tag(n protowire.Number, t protowire.Type) byte { return byte(protowire.EncodeTag(n, t)) }

// tagSize is the size of a field tag with a field number below 16.
const tagSize = 1

func labelSize(l series.Label) int {
	return tagSize + protowire.SizeBytes(len(l.Name)) + tagSize + protowire.SizeBytes(len(l.Value))
}

func sampleSize(s *series.Sample) int {
	n := 0
	if s.V != 0 {
		n += tagSize + protowire.SizeFixed64()
	}
	if s.T != 0 {
		n += tagSize + protowire.SizeVarint(uint64(s.T))
	}
	return n
}

func timeSeriesSize(ls series.Labels, samples []series.Sample, idx []int32) int {
	n := 0
	for _, l := range ls {
		if l.Value == "" {
			continue
		}
		n += tagSize + protowire.SizeBytes(labelSize(l))
	}
	for _, i := range idx {
		n += tagSize + protowire.SizeBytes(sampleSize(&samples[i]))
	}
	return n
}
