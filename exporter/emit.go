package exporter

import (
	"errors"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ipacct/ipacct_exporter/collector"
)

// answer is what one read serves: the exporter's families, sorted by
// name, their series as the registry would sort them. Every scrape that
// shares the read writes it; nothing in it changes after it is built.
type answer struct {
	fams []metricFamily
}

// metricFamily is one metric family of an answer.
type metricFamily interface {
	name() string
	// write streams the family into an exposition.
	write(x *expoWriter) error
	// toDTO builds it as client_model's type, for Gather and the
	// protobuf format.
	toDTO() *dto.MetricFamily
}

// dtoFamily is a family of a few series, built as client_model's type and
// written by expfmt.
type dtoFamily struct{ mf *dto.MetricFamily }

func (f dtoFamily) name() string              { return f.mf.GetName() }
func (f dtoFamily) write(x *expoWriter) error { return x.enc.Encode(f.mf) }
func (f dtoFamily) toDTO() *dto.MetricFamily  { return f.mf }

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
func newDTOFamily(name, help string, typ dto.MetricType, names []string, rows []row) metricFamily {
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
func (e *Exporter) labelNames(names []string) []string { return labelNames(e.withNS, names) }

// labelValues are a series' label values, given in the order of names,
// with the namespace's where labelNames puts netns.
func (e *Exporter) labelValues(names []string, netns string, values ...string) []string {
	return labelValues(e.withNS, names, netns, values...)
}

func labelNames(withNS bool, names []string) []string {
	return labelValues(withNS, names, netnsLabel, names...)
}

func labelValues(withNS bool, names []string, netns string, values ...string) []string {
	if !withNS {
		return values
	}
	i, _ := slices.BinarySearch(names, netnsLabel)
	return slices.Insert(slices.Clone(values), i, netns)
}

// emit builds the families of a read: the collectors' health, the tracked
// series that may be served and the gauges of what the kernel holds now.
func (e *Exporter) emit(collectors []Collector, results []result, sets []namespaceSets) *answer {
	fams := e.collectorFamilies(collectors, results)
	fams = append(fams, e.tagFamilies()...)
	fams = append(fams, e.setGauges(sets)...)
	fams = append(fams, e.overflowFamilies()...)
	fams = append(fams, e.addressFamilies()...)
	fams = slices.DeleteFunc(fams, func(f metricFamily) bool { return f == nil })
	slices.SortFunc(fams, func(a, b metricFamily) int { return strings.Compare(a.name(), b.name()) })
	return &answer{fams: fams}
}

// collectorFamilies are each collector's success, duration and invalid
// comments in the read. A collector gone during it is left out.
func (e *Exporter) collectorFamilies(collectors []Collector, results []result) []metricFamily {
	var success, duration, invalid []row
	for i, s := range collectors {
		res := results[i]
		if errors.Is(res.err, ErrCollectorGone) {
			continue
		}
		values := e.labelValues(collectorLabels, s.NetNS, s.Name)
		duration = append(duration, row{values: values, value: res.duration.Seconds()})
		if res.err != nil {
			success = append(success, row{values: values, value: 0})
			continue
		}
		success = append(success, row{values: values, value: 1})
		invalid = append(invalid, row{values: values, value: float64(len(res.reading.Invalid))})
	}
	names := e.labelNames(collectorLabels)
	return []metricFamily{
		newDTOFamily(successName, successHelp, dto.MetricType_GAUGE, names, success),
		newDTOFamily(durationName, durationHelp, dto.MetricType_GAUGE, names, duration),
		newDTOFamily(invalidCommentsName, invalidCommentsHelp, dto.MetricType_GAUGE, names, invalid),
	}
}

// overflowFamilies are the counters of what full sets could not take.
func (e *Exporter) overflowFamilies() []metricFamily {
	var bytes, packets []row
	names := e.labelNames(setGroupLabels)
	for g, t := range e.overflows {
		v, ok := t.serve()
		if !ok {
			continue
		}
		values := e.labelValues(setGroupLabels, g.netns, string(g.direction), string(g.addrFamily), g.tag)
		bytes = append(bytes, row{values, float64(v.Bytes), t.created})
		packets = append(packets, row{values, float64(v.Packets), t.created})
	}
	return []metricFamily{
		newDTOFamily(ipOverflowBytesName, ipOverflowBytesHelp, dto.MetricType_COUNTER, names, bytes),
		newDTOFamily(ipOverflowPacketsName, ipOverflowPacketsHelp, dto.MetricType_COUNTER, names, packets),
	}
}

// serve returns the value a scrape serves for the series, and false when
// it is withheld. A series that appeared while the exporter ran is served
// at 0 the first time.
func (t *track) serve() (collector.Counter, bool) {
	if t.withheld {
		return collector.Counter{}, false
	}
	if !t.shown {
		t.shown = true
		return collector.Counter{}, true
	}
	return t.value(), true
}
