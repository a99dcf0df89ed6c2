package exporter

import (
	"cmp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/collector"
)

// The tag series (ipacct_tag_*) keep their state across reads, as their
// counters' tracks must anyway: each series its label block and rule
// count, each tag its description and info series, and both in the
// exposition's order, sorted again only when series come or go (or a
// description changes). A read of 20,000 rules over 10,000 tags then
// builds no map and sorts nothing.

// tagTrack is one tag series' state.
type tagTrack struct {
	track
	key    seriesKey
	labels []byte // its label block; never changed, so answers share it
	// rules counts the kernel counters observed in read number read.
	rules int
	read  uint64
	// tag is its tag's state, set when a read observes the series.
	tag *tagState
}

// tagState is what the exporter keeps of a tag in a namespace.
type tagState struct {
	key tagKey
	// description is the first non-empty one of the tag's counters and
	// sets in the last read that saw it (read), in ruleset order.
	description string
	read        uint64
	// shown is the last read in which a series of the tag was served or
	// one of its sets read: its info series is served then.
	shown uint64
	// labels is its info series' label block, built for the description
	// labelled; replaced, never changed, so answers share it.
	labels   []byte
	labelled string
}

// describe keeps the first non-empty description of a read.
func (d *tagState) describe(read uint64, description string) {
	if d.read != read {
		d.read, d.description = read, description
	} else if d.description == "" {
		d.description = description
	}
}

// observeRecord applies one tagged counter of the read.
func (e *Exporter) observeRecord(k seriesKey, rec *collector.Record, src int, born int64) {
	t := e.tags[k]
	if t == nil {
		t = e.newTagTrack(k, born)
	}
	if t.read != e.reads {
		t.read, t.rules, t.tag = e.reads, 0, e.tagStateOf(tagKey{k.netns, k.tag})
	}
	t.rules++
	t.tag.describe(e.reads, rec.Description)
	t.observe(rec.ID, rec.Handle, rec.MadeAtZero, src, collector.Counter{Packets: rec.Packets, Bytes: rec.Bytes})
}

// newTagTrack adds a tag series, new in this read (or loaded from the
// state file).
func (e *Exporter) newTagTrack(k seriesKey, born int64) *tagTrack {
	b := labelBlock{}.add("direction", string(k.direction))
	if e.withNS {
		b = b.add(netnsLabel, k.netns)
	}
	b = b.add("table_family", string(k.tableFamily)).add("tag", k.tag)
	t := &tagTrack{track: track{created: born, shown: born == 0}, key: k, labels: b.end()}
	e.tags[k] = t
	e.tagOrder = nil
	return t
}

func (e *Exporter) tagStateOf(tk tagKey) *tagState {
	d := e.tagStates[tk]
	if d == nil {
		d = &tagState{key: tk}
		e.tagStates[tk] = d
		e.infoOrder = nil
	}
	return d
}

// applyTags ends a read for the tag series and forgets the tags it did not
// see.
func (e *Exporter) applyTags(failed func(src int) bool, wait func(seriesKey) bool) (carriedChanged bool) {
	carriedChanged, dropped := applyAll(e.tags, failed, wait)
	if dropped {
		e.tagOrder = nil
	}
	for tk, d := range e.tagStates {
		if d.read != e.reads {
			delete(e.tagStates, tk)
			e.infoOrder = nil
		}
	}
	return carriedChanged
}

// tagSeries are the tag series an answer serves, in the exposition's
// order (tagLabels': direction, netns, table_family, tag).
type tagSeries struct {
	withNS  bool
	samples []tagSample
}

// tagSample is a series' values in an answer; its key, label block and
// created time do not change.
type tagSample struct {
	t     *tagTrack
	v     collector.Counter
	rules int
}

func compareTagKeys(a, b seriesKey) int {
	return cmp.Or(strings.Compare(string(a.direction), string(b.direction)), strings.Compare(a.netns, b.netns),
		strings.Compare(string(a.tableFamily), string(b.tableFamily)), strings.Compare(a.tag, b.tag))
}

// tagFamilies are the families of the tag series that may be served, and
// their tags' info series.
func (e *Exporter) tagFamilies() []metricFamily {
	if e.tagOrder == nil {
		e.tagOrder = make([]*tagTrack, 0, len(e.tags))
		for _, t := range e.tags {
			e.tagOrder = append(e.tagOrder, t)
		}
		slices.SortFunc(e.tagOrder, func(a, b *tagTrack) int { return compareTagKeys(a.key, b.key) })
	}
	ts := &tagSeries{withNS: e.withNS, samples: make([]tagSample, 0, len(e.tagOrder))}
	for _, t := range e.tagOrder {
		v, ok := t.serve()
		if !ok {
			continue
		}
		// A served series was observed in this read: its tag is current.
		ts.samples = append(ts.samples, tagSample{t: t, v: v, rules: t.rules})
		if t.tag != nil {
			t.tag.shown = e.reads
		}
	}
	var fams []metricFamily
	if len(ts.samples) > 0 {
		fams = append(fams,
			tagFamily{tagBytesName, tagBytesHelp, dto.MetricType_COUNTER, func(s tagSample) uint64 { return s.v.Bytes }, ts},
			tagFamily{tagPacketsName, tagPacketsHelp, dto.MetricType_COUNTER, func(s tagSample) uint64 { return s.v.Packets }, ts},
			tagFamily{tagRulesName, tagRulesHelp, dto.MetricType_GAUGE, func(s tagSample) uint64 { return uint64(s.rules) }, ts})
	}
	return append(fams, e.infoFamily())
}

// infoFamily is ipacct_tag_info of the tags shown in this read, or nil.
func (e *Exporter) infoFamily() metricFamily {
	sort := e.infoOrder == nil
	if sort {
		e.infoOrder = make([]*tagState, 0, len(e.tagStates))
		for _, d := range e.tagStates {
			e.infoOrder = append(e.infoOrder, d)
		}
	}
	for _, d := range e.infoOrder {
		description := d.description
		if description == "" {
			description = d.key.tag // as munin labels a graph whose rules have none
		}
		if d.labels == nil || d.labelled != description {
			b := labelBlock{}.add("description", description)
			if e.withNS {
				b = b.add(netnsLabel, d.key.netns)
			}
			d.labels, d.labelled = b.add("tag", d.key.tag).end(), description
			sort = true
		}
	}
	if sort {
		slices.SortFunc(e.infoOrder, func(a, b *tagState) int {
			return cmp.Or(strings.Compare(a.labelled, b.labelled), strings.Compare(a.key.netns, b.key.netns), strings.Compare(a.key.tag, b.key.tag))
		})
	}
	info := infoFamily{withNS: e.withNS, rows: make([]infoRow, 0, len(e.infoOrder))}
	for _, d := range e.infoOrder {
		if d.shown == e.reads {
			info.rows = append(info.rows, infoRow{d: d, description: d.labelled, labels: d.labels})
		}
	}
	if len(info.rows) == 0 {
		return nil
	}
	return info
}

// tagFamily is one of the three families of the tag series.
type tagFamily struct {
	name_, help string
	typ         dto.MetricType
	value       func(tagSample) uint64
	series      *tagSeries
}

func (f tagFamily) name() string { return f.name_ }

func (f tagFamily) write(x *expoWriter) error {
	x.header(f.name_, f.help, f.typ)
	for _, s := range f.series.samples {
		if f.typ == dto.MetricType_COUNTER {
			x.counter(f.name_, s.t.labels, f.value(s), s.t.created)
		} else {
			x.gauge(f.name_, s.t.labels, f.value(s))
		}
	}
	return x.err
}

func (f tagFamily) toDTO() *dto.MetricFamily {
	names := labelNames(f.series.withNS, tagLabels)
	return buildDTO(f.name_, f.help, f.typ, names, len(f.series.samples), func(i int) ([]string, float64, int64) {
		s := f.series.samples[i]
		k := s.t.key
		values := labelValues(f.series.withNS, tagLabels, k.netns, string(k.direction), string(k.tableFamily), k.tag)
		return values, float64(f.value(s)), s.t.created
	})
}

// infoFamily is ipacct_tag_info: labels description, [netns,] tag.
type infoFamily struct {
	withNS bool
	rows   []infoRow // sorted by description, netns, tag
}

// infoRow is a tag's info series in an answer: its key does not change,
// its description may.
type infoRow struct {
	d           *tagState
	description string
	labels      []byte
}

func (f infoFamily) name() string { return tagInfoName }

func (f infoFamily) write(x *expoWriter) error {
	x.header(tagInfoName, tagInfoHelp, dto.MetricType_GAUGE)
	for _, r := range f.rows {
		x.gauge(tagInfoName, r.labels, 1)
	}
	return x.err
}

func (f infoFamily) toDTO() *dto.MetricFamily {
	names := labelNames(f.withNS, infoLabels)
	return buildDTO(tagInfoName, tagInfoHelp, dto.MetricType_GAUGE, names, len(f.rows), func(i int) ([]string, float64, int64) {
		r := f.rows[i]
		return labelValues(f.withNS, infoLabels, r.d.key.netns, r.description, r.d.key.tag), 1, 0
	})
}
