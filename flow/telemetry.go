package flow

import (
	"github.com/prometheus/client_golang/prometheus"
)

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("ipacct_flow_"+name, help, []string{"router"}, nil)
}

var (
	datagramsDesc       = desc("datagrams_total", "UDP datagrams received from the router.")
	datagramBytesDesc   = desc("datagram_bytes_total", "Bytes of the UDP datagrams received from the router (payload).")
	recordsDesc         = desc("records_total", "Flow records decoded from the router's datagrams (an IPFIX biflow counts as two).")
	decodeErrorsDesc    = desc("decode_errors_total", "Datagrams dropped because they did not decode: truncated, malformed, an unsupported version, or a template past the limits.")
	unknownTemplateDesc = desc("unknown_template_sets_total", "Data sets dropped because the router had not (yet) sent their template.")
	unwatchedDesc       = desc("unwatched_records_total", "Flow records whose addresses are in no entry of rules.yaml with source: flow.")
	filteredDesc        = desc("filtered_records_total", "Flow records that an entry with source: flow holds but the interface filters of flow.routers do not count.")
	ignoredDesc         = desc("ignored_datagrams_total", "Datagrams not decoded: from a router that flow.routers does not list, or from past the limit of routers tracked (router=\"other\").")
	templatesDesc       = desc("templates", "NetFlow v9 and IPFIX templates known for the router.")
)

// Telemetry is the collector's own metrics, per router address, as a
// prometheus.Collector of const metrics.
type Telemetry struct{ c *Collector }

// Telemetry returns the collector's self-telemetry.
func (c *Collector) Telemetry() *Telemetry { return &Telemetry{c} }

// Describe implements prometheus.Collector.
func (t *Telemetry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{datagramsDesc, datagramBytesDesc, recordsDesc, decodeErrorsDesc,
		unknownTemplateDesc, unwatchedDesc, filteredDesc, ignoredDesc, templatesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *Telemetry) Collect(ch chan<- prometheus.Metric) {
	c := t.c
	c.mu.Lock()
	type row struct {
		name      string
		tel       telemetry
		templates int
	}
	rows := make([]row, 0, len(c.order)+1)
	for _, a := range c.order {
		x := c.routers[a]
		rows = append(rows, row{a.String(), x.tel, len(x.dec.templates.m)})
	}
	if c.other.datagrams > 0 {
		rows = append(rows, row{otherRouter, c.other, 0})
	}
	c.mu.Unlock()
	for _, r := range rows {
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{
			{datagramsDesc, r.tel.datagrams}, {datagramBytesDesc, r.tel.datagramBytes},
			{recordsDesc, r.tel.records}, {decodeErrorsDesc, r.tel.decodeErrors},
			{unknownTemplateDesc, r.tel.unknownTemplate}, {unwatchedDesc, r.tel.unwatched},
			{filteredDesc, r.tel.filtered}, {ignoredDesc, r.tel.ignored},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), r.name)
		}
		if r.name != otherRouter {
			ch <- prometheus.MustNewConstMetric(templatesDesc, prometheus.GaugeValue, float64(r.templates), r.name)
		}
	}
}
