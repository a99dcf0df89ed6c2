package exporter

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// setGroup is the sets that feed one tag, family and direction.
type setGroup struct {
	tag       string
	family    string
	direction tag.Direction
}

// collectSets sends the per-address series and the sets' gauges. Sets are
// summed per tag, family and direction, and their elements per address.
//
// Unlike the tag series, a per-address series is not withheld while a
// collector fails: sets come from the nftables collector alone, so a failed
// read leaves none of them to sum.
func collectSets(ch chan<- prometheus.Metric, sets []backends.AddressSet) {
	type gauges struct {
		addresses, capacity int
		overflow            *backends.Counter
	}
	groups := map[setGroup]*gauges{}
	var order []setGroup
	var samples []addressSample
	for _, s := range sets {
		k := setGroup{s.Tag, s.Family, s.Direction}
		g := groups[k]
		if g == nil {
			g = &gauges{}
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
			samples = append(samples, addressSample{string(s.Direction), el.Addr.String(), s.Tag, el.Packets, el.Bytes})
		}
	}
	for _, k := range order {
		g := groups[k]
		labels := []string{k.tag, k.family, string(k.direction)}
		ch <- prometheus.MustNewConstMetric(ipAddressesDesc, prometheus.GaugeValue, float64(g.addresses), labels...)
		if g.capacity > 0 {
			ch <- prometheus.MustNewConstMetric(ipCapacityDesc, prometheus.GaugeValue, float64(g.capacity), labels...)
		}
		if g.overflow != nil {
			ch <- prometheus.MustNewConstMetric(ipOverflowBytesDesc, prometheus.CounterValue, float64(g.overflow.Bytes), labels...)
			ch <- prometheus.MustNewConstMetric(ipOverflowPacketsDesc, prometheus.CounterValue, float64(g.overflow.Packets), labels...)
		}
	}
	// Sorted as the registry sorts a family's series (by label values, the
	// labels in name order: direction, ip, tag), the registry's own sort
	// finds them in order and has nothing to do: at 100,000 addresses that
	// halves a scrape. Sorting also brings an address's samples from
	// several sets together, to be summed.
	slices.SortFunc(samples, func(a, b addressSample) int {
		if c := strings.Compare(a.dir, b.dir); c != 0 {
			return c
		}
		if c := strings.Compare(a.ip, b.ip); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
	for i := 0; i < len(samples); {
		s := samples[i]
		for i++; i < len(samples) && samples[i].dir == s.dir && samples[i].ip == s.ip && samples[i].tag == s.tag; i++ {
			s.packets += samples[i].packets
			s.bytes += samples[i].bytes
		}
		ch <- prometheus.MustNewConstMetric(ipBytesDesc, prometheus.CounterValue, float64(s.bytes), s.tag, s.ip, s.dir)
		ch <- prometheus.MustNewConstMetric(ipPacketsDesc, prometheus.CounterValue, float64(s.packets), s.tag, s.ip, s.dir)
	}
}

// addressSample is one address's count in one set.
type addressSample struct {
	dir, ip, tag   string
	packets, bytes uint64
}
