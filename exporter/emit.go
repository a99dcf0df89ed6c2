package exporter

import (
	"cmp"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ipacct/ipacct_exporter/backends"
)

// answer is what one read serves: the exporter's families, sorted by
// name, their series as the registry would sort them. Every scrape that
// shares the read writes it; nothing in it changes after it is built.
type answer struct {
	fams []family
}

// family is one metric family of an answer.
type family interface {
	name() string
	// write streams the family into an exposition.
	write(x *expoWriter) error
	// metricFamily builds it as client_model's type, for Gather and the
	// protobuf format.
	metricFamily() *dto.MetricFamily
}

// dtoFamily is a family of a few series, built as client_model's type and
// written by expfmt.
type dtoFamily struct{ mf *dto.MetricFamily }

func (f dtoFamily) name() string                    { return f.mf.GetName() }
func (f dtoFamily) write(x *expoWriter) error       { return x.enc.Encode(f.mf) }
func (f dtoFamily) metricFamily() *dto.MetricFamily { return f.mf }

// row is one series of a dtoFamily: label values in the order of the
// family's label names, which are sorted.
type row struct {
	values  []string
	value   float64
	created int64 // unix ms, 0 for none; counters only
}

// newDTOFamily builds a family of rows, sorted as the registry sorts
// series: by label values, the labels in name order. It returns nil for
// no rows: a family without series is not served.
func newDTOFamily(name, help string, typ dto.MetricType, names []string, rows []row) family {
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b row) int { return slices.Compare(a.values, b.values) })
	return dtoFamily{buildDTO(name, help, typ, names, len(rows), func(i int) ([]string, float64, int64) {
		return rows[i].values, rows[i].value, rows[i].created
	})}
}

// buildDTO builds a family of n series; series(i) gives the i-th's label
// values, value and created time.
func buildDTO(name, help string, typ dto.MetricType, names []string, n int, series func(i int) ([]string, float64, int64)) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: &name, Help: &help, Type: typ.Enum(), Metric: make([]*dto.Metric, n)}
	for i := range n {
		values, v, created := series(i)
		m := &dto.Metric{Label: make([]*dto.LabelPair, len(names))}
		for j := range names {
			m.Label[j] = &dto.LabelPair{Name: &names[j], Value: &values[j]}
		}
		if typ == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: &v}
			if created != 0 {
				m.Counter.CreatedTimestamp = timestamppb.New(time.UnixMilli(created))
			}
		} else {
			m.Gauge = &dto.Gauge{Value: &v}
		}
		mf.Metric[i] = m
	}
	return mf
}

// labelNames are a family's label names (sorted, without netns) with
// netns in its place where the exporter shows it.
func (e *Exporter) labelNames(names []string) []string {
	if !e.withNS {
		return names
	}
	return e.labelValues(names, netnsLabel, names...)
}

// labelValues are a series' label values, given in the order of names,
// with the namespace's where labelNames puts netns.
func (e *Exporter) labelValues(names []string, netns string, values ...string) []string {
	if !e.withNS {
		return values
	}
	i, _ := slices.BinarySearch(names, netnsLabel)
	return slices.Insert(slices.Clone(values), i, netns)
}

// tagSeries are the tag series a read serves, in the exposition's order
// (direction, family, netns, tag), and their label blocks.
type tagSeries struct {
	withNS  bool
	samples []tagSample
	labels  []byte // the samples' label blocks, one after another
}

type tagSample struct {
	k       seriesKey
	v       backends.Counter
	created int64
	rules   int
	lo, hi  int // the label block in tagSeries.labels
}

func compareTagKeys(a, b seriesKey) int {
	return cmp.Or(strings.Compare(string(a.direction), string(b.direction)), strings.Compare(a.family, b.family),
		strings.Compare(a.netns, b.netns), strings.Compare(a.tag, b.tag))
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
		labels := f.series.labels[s.lo:s.hi]
		if f.typ == dto.MetricType_COUNTER {
			x.counter(f.name_, labels, f.value(s), s.created)
		} else {
			x.gauge(f.name_, labels, f.value(s))
		}
	}
	return x.err
}

func (f tagFamily) metricFamily() *dto.MetricFamily {
	names := []string{"direction", "family", "tag"}
	if f.series.withNS {
		names = []string{"direction", "family", netnsLabel, "tag"}
	}
	return buildDTO(f.name_, f.help, f.typ, names, len(f.series.samples), func(i int) ([]string, float64, int64) {
		s := f.series.samples[i]
		values := []string{string(s.k.direction), s.k.family, s.k.tag}
		if f.series.withNS {
			values = []string{string(s.k.direction), s.k.family, s.k.netns, s.k.tag}
		}
		return values, float64(f.value(s)), s.created
	})
}

// infoFamily is ipacct_tag_info: labels description, [netns,] tag.
type infoFamily struct {
	withNS bool
	rows   []infoRow // sorted by description, netns, tag
	labels []byte
}

type infoRow struct {
	netns, tag, description string
	lo, hi                  int
}

func (f infoFamily) name() string { return tagInfoName }

func (f infoFamily) write(x *expoWriter) error {
	x.header(tagInfoName, tagInfoHelp, dto.MetricType_GAUGE)
	for _, r := range f.rows {
		x.gauge(tagInfoName, f.labels[r.lo:r.hi], 1)
	}
	return x.err
}

func (f infoFamily) metricFamily() *dto.MetricFamily {
	names := []string{"description", "tag"}
	if f.withNS {
		names = []string{"description", netnsLabel, "tag"}
	}
	return buildDTO(tagInfoName, tagInfoHelp, dto.MetricType_GAUGE, names, len(f.rows), func(i int) ([]string, float64, int64) {
		r := f.rows[i]
		if f.withNS {
			return []string{r.description, r.netns, r.tag}, 1, 0
		}
		return []string{r.description, r.tag}, 1, 0
	})
}

// emit builds the families of a read: the tracked series that may be
// served and the gauges of what the kernel holds now.
func (e *Exporter) emit(a *aggregation, collectors []family) *answer {
	shown := make(map[tagKey]bool)
	for _, ns := range a.sets {
		for _, set := range ns.sets {
			shown[tagKey{ns.netns, set.Tag}] = true
		}
	}
	ts := &tagSeries{withNS: e.withNS}
	for k, t := range e.tags {
		v, ok := t.serve()
		if !ok {
			continue
		}
		ts.samples = append(ts.samples, tagSample{k: k, v: v, created: t.created, rules: a.rules[k]})
		shown[tagKey{k.netns, k.tag}] = true
	}
	slices.SortFunc(ts.samples, func(a, b tagSample) int { return compareTagKeys(a.k, b.k) })
	for i := range ts.samples {
		s := &ts.samples[i]
		s.lo = len(ts.labels)
		b := labelBlock{b: ts.labels}.add("direction", string(s.k.direction)).add("family", s.k.family)
		if e.withNS {
			b = b.add(netnsLabel, s.k.netns)
		}
		ts.labels = b.add("tag", s.k.tag).end()
		s.hi = len(ts.labels)
	}

	info := infoFamily{withNS: e.withNS}
	for _, tk := range a.tagOrder {
		if shown[tk] {
			info.rows = append(info.rows, infoRow{netns: tk.netns, tag: tk.tag, description: a.descriptions[tk]})
		}
	}
	slices.SortFunc(info.rows, func(a, b infoRow) int {
		return cmp.Or(strings.Compare(a.description, b.description), strings.Compare(a.netns, b.netns), strings.Compare(a.tag, b.tag))
	})
	for i := range info.rows {
		r := &info.rows[i]
		r.lo = len(info.labels)
		b := labelBlock{b: info.labels}.add("description", r.description)
		if e.withNS {
			b = b.add(netnsLabel, r.netns)
		}
		info.labels = b.add("tag", r.tag).end()
		r.hi = len(info.labels)
	}

	fams := collectors
	if len(ts.samples) > 0 {
		fams = append(fams,
			tagFamily{tagBytesName, tagBytesHelp, dto.MetricType_COUNTER, func(s tagSample) uint64 { return s.v.Bytes }, ts},
			tagFamily{tagPacketsName, tagPacketsHelp, dto.MetricType_COUNTER, func(s tagSample) uint64 { return s.v.Packets }, ts},
			tagFamily{tagRulesName, tagRulesHelp, dto.MetricType_GAUGE, func(s tagSample) uint64 { return uint64(s.rules) }, ts})
	}
	if len(info.rows) > 0 {
		fams = append(fams, info)
	}
	fams = append(fams, e.setGauges(a.sets)...)
	fams = append(fams, e.overflowFamilies()...)
	fams = append(fams, e.addressFamilies()...)
	fams = slices.DeleteFunc(fams, func(f family) bool { return f == nil })
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name(), b.name()) })
	return &answer{fams: fams}
}

// overflowFamilies are the counters of what full sets could not take.
func (e *Exporter) overflowFamilies() []family {
	var bytes, packets []row
	names := e.labelNames(setGroupLabels)
	for g, t := range e.overflows {
		v, ok := t.serve()
		if !ok {
			continue
		}
		values := e.labelValues(setGroupLabels, g.netns, string(g.direction), g.family, g.tag)
		bytes = append(bytes, row{values, float64(v.Bytes), t.created})
		packets = append(packets, row{values, float64(v.Packets), t.created})
	}
	return []family{
		newDTOFamily(ipOverflowBytesName, ipOverflowBytesHelp, dto.MetricType_COUNTER, names, bytes),
		newDTOFamily(ipOverflowPacketsName, ipOverflowPacketsHelp, dto.MetricType_COUNTER, names, packets),
	}
}

// serve returns the value a scrape serves for the series, and false when
// it is withheld. A series that appeared while the exporter ran is served
// at 0 the first time.
func (t *track) serve() (backends.Counter, bool) {
	if t.withheld {
		return backends.Counter{}, false
	}
	if !t.shown {
		t.shown = true
		return backends.Counter{}, true
	}
	return t.value(), true
}
