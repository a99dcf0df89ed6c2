package exporter

import (
	"net/netip"

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
		sets                []int
	}
	groups := map[setGroup]*gauges{}
	var order []setGroup
	for i, s := range sets {
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
		g.sets = append(g.sets, i)
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
		dir := string(k.direction)
		if len(g.sets) == 1 {
			// The common case: one set, whose elements are distinct.
			for _, el := range sets[g.sets[0]].Elements {
				sendAddress(ch, k.tag, el.Addr.String(), dir, el.Packets, el.Bytes)
			}
			continue
		}
		sums := map[netip.Addr]*backends.Counter{}
		var addrs []netip.Addr
		for _, i := range g.sets {
			for _, el := range sets[i].Elements {
				c := sums[el.Addr]
				if c == nil {
					c = &backends.Counter{}
					sums[el.Addr] = c
					addrs = append(addrs, el.Addr)
				}
				c.Packets += el.Packets
				c.Bytes += el.Bytes
			}
		}
		for _, a := range addrs {
			sendAddress(ch, k.tag, a.String(), dir, sums[a].Packets, sums[a].Bytes)
		}
	}
}

func sendAddress(ch chan<- prometheus.Metric, tagName, ip, dir string, packets, bytes uint64) {
	ch <- prometheus.MustNewConstMetric(ipBytesDesc, prometheus.CounterValue, float64(bytes), tagName, ip, dir)
	ch <- prometheus.MustNewConstMetric(ipPacketsDesc, prometheus.CounterValue, float64(packets), tagName, ip, dir)
}
