package exporter

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// namespaceSets are the sets read in one network namespace.
type namespaceSets struct {
	netns string
	sets  []backends.AddressSet
}

// setGroup is the sets that feed one tag, family and direction in one
// namespace.
type setGroup struct {
	netns     string
	tag       string
	family    string
	direction tag.Direction
}

type setGauges struct {
	addresses, capacity int
}

// emitSetGauges sends the sets' gauges, summed per namespace, tag, family
// and direction: what the kernel holds now.
func (e *Exporter) emitSetGauges(ch chan<- prometheus.Metric, namespaces []namespaceSets) {
	groups := map[setGroup]*setGauges{}
	var order []setGroup
	for _, ns := range namespaces {
		for _, s := range ns.sets {
			k := setGroup{ns.netns, s.Tag, s.Family, s.Direction}
			g := groups[k]
			if g == nil {
				g = &setGauges{}
				groups[k] = g
				order = append(order, k)
			}
			g.addresses += len(s.Elements)
			g.capacity += int(s.Capacity)
		}
	}
	for _, k := range order {
		g := groups[k]
		labels := e.labels(k.netns, k.tag, k.family, string(k.direction))
		ch <- prometheus.MustNewConstMetric(e.d.ipAddresses, prometheus.GaugeValue, float64(g.addresses), labels...)
		if g.capacity > 0 {
			ch <- prometheus.MustNewConstMetric(e.d.ipCapacity, prometheus.GaugeValue, float64(g.capacity), labels...)
		}
	}
}

// addressFamilies builds the per-address counter families from the tracked
// series that may be served. At 100,000 addresses, const metrics cost two
// million allocations and the registry's check of each series for
// duplicates a fifth of the scrape; here the series are unique by
// construction, and the families take a handful of allocations, their label
// pairs shared by the bytes and the packets family.
func (e *Exporter) addressFamilies() []*dto.MetricFamily {
	if len(e.addrs.m) == 0 {
		return nil
	}
	// Every address's text goes into one buffer, made one string at the
	// end: one allocation instead of one per address.
	samples := make([]addressSample, 0, len(e.addrs.m))
	text := make([]byte, 0, len(e.addrs.m)*len("192.168.100.100"))
	for k, t := range e.addrs.m {
		v, created, ok := e.addrs.serve(k, t)
		if !ok {
			continue
		}
		start := len(text)
		text = k.addr.AppendTo(text)
		samples = append(samples, addressSample{dir: string(k.group.direction), netns: k.group.netns, tag: k.group.tag,
			start: start, end: len(text), packets: v.Packets, bytes: v.Bytes, created: created})
	}
	if len(samples) == 0 {
		return nil
	}
	ips := string(text)
	for i := range samples {
		samples[i].ip = ips[samples[i].start:samples[i].end]
	}
	// Sorted as the registry would sort a family's series: by label
	// values, the labels in name order (direction, ip, netns, tag).
	slices.SortFunc(samples, func(a, b addressSample) int {
		if c := strings.Compare(a.dir, b.dir); c != 0 {
			return c
		}
		if c := strings.Compare(a.ip, b.ip); c != 0 {
			return c
		}
		if c := strings.Compare(a.netns, b.netns); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
	names := addressLabels
	if e.withNS {
		names = addressLabelsN
	}
	k, n := len(names), len(samples)
	values := make([]string, 0, n*k)
	pairs := make([]dto.LabelPair, n*k)
	pairPtrs := make([]*dto.LabelPair, n*k)
	for i, s := range samples {
		values = append(values, s.dir, s.ip)
		if e.withNS {
			values = append(values, s.netns)
		}
		values = append(values, s.tag)
		for j := range k {
			p := &pairs[i*k+j]
			p.Name, p.Value = &names[j], &values[i*k+j]
			pairPtrs[i*k+j] = p
		}
	}
	family := func(name, help string, value func(addressSample) uint64) *dto.MetricFamily {
		metrics := make([]dto.Metric, n)
		ptrs := make([]*dto.Metric, n)
		counters := make([]dto.Counter, n)
		floats := make([]float64, n)
		for i, s := range samples {
			floats[i] = float64(value(s))
			counters[i].Value = &floats[i]
			if s.created != 0 {
				counters[i].CreatedTimestamp = timestamppb.New(time.UnixMilli(s.created))
			}
			metrics[i].Label = pairPtrs[i*k : (i+1)*k : (i+1)*k]
			metrics[i].Counter = &counters[i]
			ptrs[i] = &metrics[i]
		}
		return &dto.MetricFamily{Name: &name, Help: &help, Type: dto.MetricType_COUNTER.Enum(), Metric: ptrs}
	}
	return []*dto.MetricFamily{
		family(ipBytesName, ipBytesHelp, func(s addressSample) uint64 { return s.bytes }),
		family(ipPacketsName, ipPacketsHelp, func(s addressSample) uint64 { return s.packets }),
	}
}

// addressSample is one address's count in one set; start and end locate
// its text in the scrape's buffer until ip is set.
type addressSample struct {
	dir, ip, netns, tag string
	start, end          int
	packets, bytes      uint64
	created             int64
}
