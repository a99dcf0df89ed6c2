package exporter

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

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
	overflow            *backends.Counter
}

// collectSets sends the per-address series and the sets' gauges. Sets are
// summed per namespace, tag, family and direction, and their elements per
// address.
//
// Unlike the tag series, a per-address series is not withheld while a
// collector fails: sets come from the nftables collector alone, so a failed
// read leaves none of them to sum.
func (e *Exporter) collectSets(ch chan<- prometheus.Metric, namespaces []namespaceSets) {
	groups := map[setGroup]*setGauges{}
	var order []setGroup
	var samples []addressSample
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
			if s.Overflow != nil {
				if g.overflow == nil {
					g.overflow = &backends.Counter{}
				}
				g.overflow.Packets += s.Overflow.Packets
				g.overflow.Bytes += s.Overflow.Bytes
			}
			for _, el := range s.Elements {
				samples = append(samples, addressSample{string(s.Direction), el.Addr.String(), ns.netns, s.Tag, el.Packets, el.Bytes})
			}
		}
	}
	for _, k := range order {
		g := groups[k]
		labels := e.labels(k.netns, k.tag, k.family, string(k.direction))
		ch <- prometheus.MustNewConstMetric(e.d.ipAddresses, prometheus.GaugeValue, float64(g.addresses), labels...)
		if g.capacity > 0 {
			ch <- prometheus.MustNewConstMetric(e.d.ipCapacity, prometheus.GaugeValue, float64(g.capacity), labels...)
		}
		if g.overflow != nil {
			ch <- prometheus.MustNewConstMetric(e.d.ipOverflowBytes, prometheus.CounterValue, float64(g.overflow.Bytes), labels...)
			ch <- prometheus.MustNewConstMetric(e.d.ipOverflowPackets, prometheus.CounterValue, float64(g.overflow.Packets), labels...)
		}
	}
	// Sorted as the registry sorts a family's series (by label values, the
	// labels in name order: direction, ip, netns, tag), the registry's own
	// sort finds them in order and has nothing to do: at 100,000 addresses
	// that halves a scrape. Sorting also brings an address's samples from
	// several sets together, to be summed.
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
	for i := 0; i < len(samples); {
		s := samples[i]
		for i++; i < len(samples) && samples[i].sameSeries(s); i++ {
			s.packets += samples[i].packets
			s.bytes += samples[i].bytes
		}
		labels := e.labels(s.netns, s.tag, s.ip, s.dir)
		ch <- prometheus.MustNewConstMetric(e.d.ipBytes, prometheus.CounterValue, float64(s.bytes), labels...)
		ch <- prometheus.MustNewConstMetric(e.d.ipPackets, prometheus.CounterValue, float64(s.packets), labels...)
	}
}

// addressSample is one address's count in one set.
type addressSample struct {
	dir, ip, netns, tag string
	packets, bytes      uint64
}

func (a addressSample) sameSeries(b addressSample) bool {
	return a.dir == b.dir && a.ip == b.ip && a.netns == b.netns && a.tag == b.tag
}
