package exporter

import (
	"encoding/binary"
	"net/netip"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// namespaceSets are the sets read in one network namespace.
type namespaceSets struct {
	netns string
	sets  []collector.AddressSet
}

// setGroup is the sets that feed one tag, address family and direction in
// one namespace.
type setGroup struct {
	netns      string
	tag        string
	addrFamily family.Address
	direction  tag.Direction
}

type setGauges struct {
	addresses, capacity int
}

// setGauges are the sets' gauges, summed per namespace, tag, family and
// direction: what the kernel holds now.
func (e *Exporter) setGauges(namespaces []namespaceSets) []metricFamily {
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
	var addresses, capacity []row
	for _, k := range order {
		g := groups[k]
		values := e.labelValues(setGroupLabels, k.netns, string(k.direction), string(k.addrFamily), k.tag)
		addresses = append(addresses, row{values: values, value: float64(g.addresses)})
		if g.capacity > 0 {
			capacity = append(capacity, row{values: values, value: float64(g.capacity)})
		}
	}
	names := e.labelNames(setGroupLabels)
	return []metricFamily{
		newDTOFamily(ipAddressesName, ipAddressesHelp, dto.MetricType_GAUGE, names, addresses),
		newDTOFamily(ipCapacityName, ipCapacityHelp, dto.MetricType_GAUGE, names, capacity),
	}
}

// addressFamilies are the per-address counter families of the tracked
// series that may be served. A million addresses make two million series:
// they are not built as metric objects, but written from a list of what
// each needs, in the order the tracker keeps.
func (e *Exporter) addressFamilies() []metricFamily {
	a := &e.addrs
	a.sortOrder()
	if a.live == 0 {
		return nil
	}
	// Groups may be dropped or their places taken: the answer keeps its
	// own list of them. It copies what it writes of each slot, in its
	// order: the next read changes slots and uses freed ones again, and
	// slots lie in the order of their making, not the exposition's, so
	// that its families are written from memory read in sequence.
	as := &addrSeries{withNS: e.withNS, groups: slices.Clone(a.groups), series: make([]addrValue, 0, len(a.order))}
	for _, i := range a.order {
		s := slotOf(a.chunks, i)
		v, ok := a.serve(i, s)
		if !ok {
			continue
		}
		av := addrValue{group: s.group, created: s.created, v: v}
		if s.group&slotIs4 != 0 {
			av.addr = binary.BigEndian.Uint32(s.addr[:4])
		} else {
			av.addr = uint32(len(as.v6))
			as.v6 = append(as.v6, s.addr)
		}
		as.series = append(as.series, av)
	}
	if len(as.series) == 0 {
		return nil
	}
	return []metricFamily{
		addrFamily{ipBytesName, ipBytesHelp, func(v collector.Counter) uint64 { return v.Bytes }, as},
		addrFamily{ipPacketsName, ipPacketsHelp, func(v collector.Counter) uint64 { return v.Packets }, as},
	}
}

// addrSeries are the per-address series an answer serves, in the
// exposition's order.
type addrSeries struct {
	withNS bool
	groups []*addrGroup
	series []addrValue
	v6     [][16]byte
}

// addrValue is a per-address series in an answer: its address (IPv4, or
// the number of an IPv6 one in addrSeries.v6), group (and slotIs4),
// created time, and its values in this read.
type addrValue struct {
	addr    uint32
	group   uint32
	created int64
	v       collector.Counter
}

func (s *addrSeries) ip(av *addrValue) netip.Addr {
	if av.group&slotIs4 != 0 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], av.addr)
		return netip.AddrFrom4(a)
	}
	return netip.AddrFrom16(s.v6[av.addr])
}

// addrFamily is ipacct_ip_bytes_total or ipacct_ip_packets_total.
type addrFamily struct {
	name_, help string
	value       func(collector.Counter) uint64
	series      *addrSeries
}

func (f addrFamily) name() string { return f.name_ }

func (f addrFamily) write(x *expoWriter) error {
	x.header(f.name_, f.help, dto.MetricType_COUNTER)
	var labels []byte
	for n := range f.series.series {
		av := &f.series.series[n]
		g := f.series.groups[av.group&^slotIs4]
		prefix := g.prefix6
		if av.group&slotIs4 != 0 {
			prefix = g.prefix4
		}
		labels = append(f.series.ip(av).AppendTo(append(labels[:0], prefix...)), g.suffix...)
		x.counter(f.name_, labels, f.value(av.v), av.created)
		if x.err != nil {
			return x.err
		}
	}
	return nil
}

func (f addrFamily) toDTO() *dto.MetricFamily {
	names := labelNames(f.series.withNS, addressLabels)
	return buildDTO(f.name_, f.help, dto.MetricType_COUNTER, names, len(f.series.series), func(n int) ([]string, float64, int64) {
		av := &f.series.series[n]
		g := f.series.groups[av.group&^slotIs4]
		values := labelValues(f.series.withNS, addressLabels, g.netns, string(g.direction), string(slotFamily(av.group)), f.series.ip(av).String(), g.tag)
		return values, float64(f.value(av.v)), av.created
	})
}
