package flow

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipacct/ipacct_exporter/collector"
)

// FuzzDatagram feeds arbitrary bytes, twice (so that a template in the
// first copy is known to the second), through the whole path from a
// datagram to the counters. Whatever the bytes: no panic, not even one
// the collector recovers from; counters only grow; every counted address
// is in its entry's networks, and no set holds more than its size.
func FuzzDatagram(f *testing.F) {
	for _, pkt := range validDatagrams() {
		f.Add(pkt)
	}
	fields := append(slices.Clone(ipv4Fields), field{48, 1, 0}, field{1, 8, reversePEN}, field{2, 8, reversePEN})
	r := rec4("192.168.32.9", "192.0.2.53", 53, 53, 17, 1, 100)
	r[48], r[1|0x8000], r[2|0x8000] = uint64(1), uint64(10), uint64(1)
	scopes, options := []field{{1, 4, 0}}, []field{{48, 1, 0}, {50, 4, 0}}
	f.Add(message(9, 7,
		optionsTemplateSet(9, 257, scopes, options),
		dataSet(257, append(slices.Clone(scopes), options...), flowRecord{1: uint64(0), 48: uint64(1), 50: uint64(10)}),
		templateSet(9, 256, fields), dataSet(256, fields, r)))
	f.Add(message(10, 3, templateSet(10, 300, fields), dataSet(300, fields, r, r), templateSet(10, 301, nil)))
	f.Add(message(10, 3, optionsTemplateSet(10, 400, []field{{149, 4, 0}}, []field{{305, 4, 0}, {306, 4, 0}}),
		dataSet(400, []field{{149, 4, 0}, {305, 4, 0}, {306, 4, 0}}, flowRecord{149: uint64(3), 305: uint64(1), 306: uint64(9)})))
	// A fractional rate, 5/2: counts carry fractions from flow to flow.
	packetSpace := []field{{149, 4, 0}, {305, 4, 0}, {306, 4, 0}}
	f.Add(message(10, 3, optionsTemplateSet(10, 400, packetSpace[:1], packetSpace[1:]),
		dataSet(400, packetSpace, flowRecord{149: uint64(3), 305: uint64(2), 306: uint64(3)}),
		templateSet(10, 300, fields), dataSet(300, fields, r, r, r)))
	f.Add(v5Packet(0x4000|10, v5Record{src: "192.168.31.200", dst: "192.168.32.1", packets: 1, bytes: 1 << 31}))

	f.Fuzz(func(t *testing.T, data []byte) {
		c := newCollector(t, tenantsYAML)
		before := decoderPanics.Load()
		c.Datagram(router, data)
		first := totals(t, c)
		c.Datagram(router, data)
		second := totals(t, c)
		if n := decoderPanics.Load(); n != before {
			t.Fatalf("the decoders panicked (recovered); see the log")
		}
		for k, v := range first {
			if w := second[k]; w.Packets < v.Packets || w.Bytes < v.Bytes {
				t.Errorf("%s went down: %+v, then %+v", k, v, w)
			}
		}
		if got := tel(c, router); got.datagrams != 2 || got.datagramBytes != 2*uint64(len(data)) {
			t.Errorf("telemetry %+v for two datagrams of %d bytes", got, len(data))
		}
		read, _ := c.Read(t.Context())
		for _, s := range read.Sets {
			if len(s.Elements) > int(s.Capacity) {
				t.Errorf("%s holds %d addresses, its size is %d", s.Where, len(s.Elements), s.Capacity)
			}
			for _, e := range s.Elements {
				if !inNetworks(c, s, e.Addr) {
					t.Errorf("%s counts %s, outside its networks", s.Where, e.Addr)
				}
			}
		}
	})
}

func inNetworks(c *Collector, s collector.AddressSet, a netip.Addr) bool {
	for _, set := range c.plan.sets {
		if set.tag == s.Tag && set.family == s.Family && set.direction == s.Direction {
			return anyContains(set.networks, a)
		}
	}
	return false
}

// totals are the counters by series, overflow and tag records included.
func totals(t *testing.T, c *Collector) map[string]collector.Counter {
	return counts(t, c)
}
