package flow

import (
	"fmt"
	"testing"
)

// BenchmarkDecodeAggregate measures the path from a datagram to the
// counters, on one core: decoding with goflow2, attribution by longest
// prefix and the tag entries, and counting. Each datagram holds records
// as a busy router sends them (v5: 30, v9 and IPFIX: 24 of softflowd's
// layout), between the addresses of seed 001's tenants and the Internet.
// It reports flows per second.
func BenchmarkDecodeAggregate(b *testing.B) {
	for _, version := range []uint16{5, 9, 10} {
		b.Run(fmt.Sprintf("v%d", version), func(b *testing.B) {
			c := newCollector(b, tenantsYAML)
			var pkts [][]byte
			flowsPer := 0
			for p := range 64 {
				var v5 []v5Record
				var recs []flowRecord
				n := 24
				if version == 5 {
					n = 30
				}
				for i := range n {
					tenant := fmt.Sprintf("192.168.%d.%d", 31+(p+i)%2, (p*n+i)%250+1)
					remote := fmt.Sprintf("203.0.113.%d", i)
					src, dst := tenant, remote
					if i%2 == 1 {
						src, dst = remote, tenant
					}
					v5 = append(v5, v5Record{src: src, dst: dst, srcPort: 40000, dstPort: 443, proto: 6, in: 1, out: 2, packets: 10, bytes: 1000})
					recs = append(recs, rec4(src, dst, 40000, 443, 6, 10, 1000))
				}
				flowsPer = n
				if version == 5 {
					pkts = append(pkts, v5Packet(0, v5...))
				} else {
					pkts = append(pkts, message(version, 1, dataSet(256, ipv4Fields, recs...)))
				}
			}
			if version != 5 {
				c.Datagram(router, message(version, 1, templateSet(version, 256, ipv4Fields)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c.Datagram(router, pkts[i%len(pkts)])
			}
			b.StopTimer()
			if got := tel(c, router); got.decodeErrors != 0 || got.unknownTemplate != 0 || got.records == 0 {
				b.Fatalf("telemetry %+v", got)
			}
			b.ReportMetric(float64(b.N*flowsPer)/b.Elapsed().Seconds(), "flows/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*flowsPer), "ns/flow")
		})
	}
}
