package exporter

import (
	"cmp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

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

// setGauges are the sets' gauges, summed per namespace, tag, family and
// direction: what the kernel holds now.
func (e *Exporter) setGauges(namespaces []namespaceSets) []family {
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
		values := e.labelValues(setGroupLabels, k.netns, string(k.direction), k.family, k.tag)
		addresses = append(addresses, row{values: values, value: float64(g.addresses)})
		if g.capacity > 0 {
			capacity = append(capacity, row{values: values, value: float64(g.capacity)})
		}
	}
	names := e.labelNames(setGroupLabels)
	return []family{
		newDTOFamily(ipAddressesName, ipAddressesHelp, dto.MetricType_GAUGE, names, addresses),
		newDTOFamily(ipCapacityName, ipCapacityHelp, dto.MetricType_GAUGE, names, capacity),
	}
}

// addressFamilies are the per-address counter families of the tracked
// series that may be served. A million addresses make two million series:
// they are not built as metric objects, but written from one slice of
// samples, sorted as the registry would sort them.
func (e *Exporter) addressFamilies() []family {
	if len(e.addrs.m) == 0 {
		return nil
	}
	as := &addrSeries{withNS: e.withNS}
	groupIndex := map[*addrGroup]uint32{}
	// Every address's text goes into one buffer, made one string at the
	// end: one allocation instead of one per address.
	samples := make([]addrSample, 0, len(e.addrs.m))
	text := make([]byte, 0, len(e.addrs.m)*len("192.168.100.100"))
	for k, t := range e.addrs.m {
		v, created, ok := e.addrs.serve(k, t)
		if !ok {
			continue
		}
		gi, ok := groupIndex[k.group]
		if !ok {
			gi = uint32(len(as.groups))
			groupIndex[k.group] = gi
			as.groups = append(as.groups, e.addrLabels(k.group))
		}
		start := len(text)
		text = k.addr.AppendTo(text)
		samples = append(samples, addrSample{group: gi, start: start, end: len(text), v: v, created: created})
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
	slices.SortFunc(samples, func(a, b addrSample) int {
		ga, gb := &as.groups[a.group], &as.groups[b.group]
		return cmp.Or(strings.Compare(string(ga.direction), string(gb.direction)), strings.Compare(a.ip, b.ip),
			strings.Compare(ga.netns, gb.netns), strings.Compare(ga.tag, gb.tag))
	})
	as.samples = samples
	return []family{
		addrFamily{ipBytesName, ipBytesHelp, func(v backends.Counter) uint64 { return v.Bytes }, as},
		addrFamily{ipPacketsName, ipPacketsHelp, func(v backends.Counter) uint64 { return v.Packets }, as},
	}
}

// addrSeries are the per-address series a read serves, in the
// exposition's order.
type addrSeries struct {
	withNS  bool
	groups  []addrLabels
	samples []addrSample
}

// addrSample is one address's count; start and end locate its text in the
// scrape's buffer until ip is set.
type addrSample struct {
	ip         string
	group      uint32
	start, end int
	v          backends.Counter
	created    int64
}

// addrLabels are a group's label values, and its label block around the
// address: prefix, the address, suffix.
type addrLabels struct {
	addrGroup
	prefix, suffix []byte
}

func (e *Exporter) addrLabels(g *addrGroup) addrLabels {
	prefix := append(labelBlock{}.add("direction", string(g.direction)).b, `,ip="`...)
	suffix := labelBlock{b: []byte{'"'}, n: 1} // closes the address's value
	if e.withNS {
		suffix = suffix.add(netnsLabel, g.netns)
	}
	return addrLabels{addrGroup: *g, prefix: prefix, suffix: suffix.add("tag", g.tag).end()}
}

// addrFamily is ipacct_ip_bytes_total or ipacct_ip_packets_total.
type addrFamily struct {
	name_, help string
	value       func(backends.Counter) uint64
	series      *addrSeries
}

func (f addrFamily) name() string { return f.name_ }

func (f addrFamily) write(x *expoWriter) error {
	x.header(f.name_, f.help, dto.MetricType_COUNTER)
	var labels []byte
	for _, s := range f.series.samples {
		g := &f.series.groups[s.group]
		labels = append(append(append(labels[:0], g.prefix...), s.ip...), g.suffix...)
		x.counter(f.name_, labels, f.value(s.v), s.created)
		if x.err != nil {
			return x.err
		}
	}
	return nil
}

func (f addrFamily) metricFamily() *dto.MetricFamily {
	names := []string{"direction", "ip", "tag"}
	if f.series.withNS {
		names = []string{"direction", "ip", netnsLabel, "tag"}
	}
	return buildDTO(f.name_, f.help, dto.MetricType_COUNTER, names, len(f.series.samples), func(i int) ([]string, float64, int64) {
		s := f.series.samples[i]
		g := &f.series.groups[s.group]
		values := []string{string(g.direction), s.ip, g.tag}
		if f.series.withNS {
			values = []string{string(g.direction), s.ip, g.netns, g.tag}
		}
		return values, float64(f.value(s.v)), s.created
	})
}
