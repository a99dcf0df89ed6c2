package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/backends"
)

// emit sends the tracked series that may be served and the gauges of what
// the kernel holds now, and returns the per-address families.
func (e *Exporter) emit(ch chan<- prometheus.Metric, a *aggregation) []*dto.MetricFamily {
	shown := make(map[tagKey]bool)
	for _, ns := range a.sets {
		for _, set := range ns.sets {
			shown[tagKey{ns.netns, set.Tag}] = true
		}
	}
	for k, t := range e.tags {
		v, ok := t.serve()
		if !ok {
			continue
		}
		labels := e.labels(k.netns, k.tag, string(k.direction), k.family)
		ch <- counterMetric(e.d.tagBytes, v.Bytes, t.created, labels)
		ch <- counterMetric(e.d.tagPackets, v.Packets, t.created, labels)
		ch <- prometheus.MustNewConstMetric(e.d.tagRules, prometheus.GaugeValue, float64(a.rules[k]), labels...)
		shown[tagKey{k.netns, k.tag}] = true
	}
	for _, tk := range a.tagOrder {
		if shown[tk] {
			d := a.descriptions[tk]
			if d == "" {
				d = tk.tag // as munin labels a graph whose rules have none
			}
			ch <- prometheus.MustNewConstMetric(e.d.tagInfo, prometheus.GaugeValue, 1, e.labels(tk.netns, tk.tag, d)...)
		}
	}
	e.emitSetGauges(ch, a.sets)
	for g, t := range e.overflows {
		v, ok := t.serve()
		if !ok {
			continue
		}
		labels := e.labels(g.netns, g.tag, g.family, string(g.direction))
		ch <- counterMetric(e.d.ipOverflowBytes, v.Bytes, t.created, labels)
		ch <- counterMetric(e.d.ipOverflowPackets, v.Packets, t.created, labels)
	}
	return e.addressFamilies()
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

// counterMetric is a counter with its created time when it has one, which
// OpenMetrics scrapes show: the time the series was known to be zero.
func counterMetric(d *prometheus.Desc, v uint64, created int64, labels []string) prometheus.Metric {
	if created == 0 {
		return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	return prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, float64(v), time.UnixMilli(created), labels...)
}
