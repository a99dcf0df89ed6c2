package flow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/config"
)

// tenantsYAML is seed 001's tenants counted from a router's flows, with a
// sub-tenant nested in rent31 and a tag entry for DNS.
const tenantsYAML = `
accounting:
  - tag: dns
    source: flow
    local: [192.0.2.53, 2001:db8:53::53]
    protocol: [udp, tcp]
    ports: [53]
addresses:
  - tag: rent31
    source: flow
    networks: [192.168.31.0/24, 2001:db8:31::/64]
  - tag: rent31-lab
    source: flow
    networks: [192.168.31.128/25]
    direction: out
  - tag: rent32
    source: flow
    networks: [192.168.32.0/24]
    size: 2
  - tag: servers
    networks: [198.51.100.0/24]
`

var router = netip.MustParseAddr("192.0.2.254")

func newCollector(t testing.TB, doc string) *Collector {
	t.Helper()
	f, err := config.Parse("rules.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Configure(f)
	return c
}

// counts reads the collector as the exporter does: "tag ip direction" for
// addresses, "tag direction" for tag entries, "tag family direction
// overflow" for overflow counters.
func counts(t testing.TB, c *Collector) map[string]collector.Counter {
	t.Helper()
	r, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]collector.Counter)
	for _, rec := range r.Records {
		if rec.Packets > 0 || rec.Bytes > 0 {
			out[rec.Tag+" "+string(rec.Direction)] = collector.Counter{Packets: rec.Packets, Bytes: rec.Bytes}
		}
	}
	for _, s := range r.Sets {
		for _, e := range s.Elements {
			out[fmt.Sprintf("%s %s %s", s.Tag, e.Addr, s.Direction)] = collector.Counter{Packets: e.Packets, Bytes: e.Bytes}
		}
		if s.Overflow != nil && s.Overflow.Bytes > 0 {
			out[fmt.Sprintf("%s %s %s overflow", s.Tag, s.Family, s.Direction)] = *s.Overflow
		}
	}
	return out
}

func checkCounts(t *testing.T, c *Collector, want map[string]collector.Counter) {
	t.Helper()
	got := counts(t, c)
	if !maps.Equal(got, want) {
		keys := slices.Sorted(maps.Keys(got))
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: %+v\n", k, got[k])
		}
		t.Errorf("counts:\n%swant %v", b.String(), want)
	}
}

func tel(c *Collector, router netip.Addr) telemetry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x := c.routers[router]; x != nil {
		return x.tel
	}
	return telemetry{}
}

// TestV5 attributes v5 flows: out to the entry holding the source, in to
// the one holding the destination, the longest prefix first; a tag entry
// by address, protocol and port.
func TestV5(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	pkt := v5Packet(0,
		v5Record{src: "192.168.31.10", dst: "203.0.113.5", srcPort: 40000, dstPort: 443, proto: 6, packets: 10, bytes: 5000},
		v5Record{src: "203.0.113.5", dst: "192.168.31.10", srcPort: 443, dstPort: 40000, proto: 6, packets: 20, bytes: 30000},
		// The lab /25 inside rent31 counts only out; its in goes nowhere,
		// not to rent31: an address belongs to its longest prefix.
		v5Record{src: "192.168.31.200", dst: "203.0.113.5", proto: 17, packets: 1, bytes: 100},
		v5Record{src: "203.0.113.5", dst: "192.168.31.200", proto: 17, packets: 2, bytes: 200},
		// Tenant to tenant: out of one, in to the other.
		v5Record{src: "192.168.31.10", dst: "192.168.32.7", proto: 1, packets: 3, bytes: 300},
		// DNS, in and out of the tag entry; the wrong port does not count.
		v5Record{src: "203.0.113.9", dst: "192.0.2.53", srcPort: 5353, dstPort: 53, proto: 17, packets: 1, bytes: 70},
		v5Record{src: "192.0.2.53", dst: "203.0.113.9", srcPort: 53, dstPort: 5353, proto: 17, packets: 1, bytes: 170},
		v5Record{src: "203.0.113.9", dst: "192.0.2.53", srcPort: 5353, dstPort: 54, proto: 17, packets: 1, bytes: 70},
		// A kernel entry's network is not the flows' business.
		v5Record{src: "198.51.100.1", dst: "203.0.113.5", proto: 17, packets: 1, bytes: 1},
	)
	c.Datagram(router, pkt)
	c.Datagram(netip.MustParseAddr("::ffff:192.0.2.254"), pkt) // the same router, over a dual-stack socket
	checkCounts(t, c, map[string]collector.Counter{
		"rent31 192.168.31.10 out":      {Packets: 26, Bytes: 10600},
		"rent31 192.168.31.10 in":       {Packets: 40, Bytes: 60000},
		"rent31-lab 192.168.31.200 out": {Packets: 2, Bytes: 200},
		"rent32 192.168.32.7 in":        {Packets: 6, Bytes: 600},
		"dns in":                        {Packets: 2, Bytes: 140},
		"dns out":                       {Packets: 2, Bytes: 340},
	})
	want := telemetry{datagrams: 2, datagramBytes: 2 * uint64(len(pkt)), records: 18, unwatched: 6}
	if got := tel(c, router); got != want {
		t.Errorf("telemetry %+v, want %+v", got, want)
	}
}

// TestSampling multiplies by the rate the router announces: in the v5
// header, in a v9 or IPFIX record, or in an options record, per sampler.
func TestSampling(t *testing.T) {
	const doc = "addresses:\n  - tag: rent31\n    source: flow\n    networks: [192.168.31.0/24, 2001:db8:31::/64]\n"
	t.Run("v5", func(t *testing.T) {
		c := newCollector(t, doc)
		// Mode 01 (deterministic), interval 100.
		c.Datagram(router, v5Packet(0x4000|100, v5Record{src: "192.168.31.1", dst: "203.0.113.1", packets: 3, bytes: 1500}))
		// No sampling: 0.
		c.Datagram(router, v5Packet(0, v5Record{src: "192.168.31.2", dst: "203.0.113.1", packets: 3, bytes: 1500}))
		checkCounts(t, c, map[string]collector.Counter{
			"rent31 192.168.31.1 out": {Packets: 300, Bytes: 150000},
			"rent31 192.168.31.2 out": {Packets: 3, Bytes: 1500},
		})
	})
	t.Run("v9 record", func(t *testing.T) {
		c := newCollector(t, doc)
		fields := append(slices.Clone(ipv4Fields), field{34, 4, 0})
		r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 2, 1000)
		r[34] = uint64(64)
		c.Datagram(router, message(9, 7, templateSet(9, 300, fields), dataSet(300, fields, r)))
		checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": {Packets: 128, Bytes: 64000}})
	})
	t.Run("v9 options", func(t *testing.T) {
		c := newCollector(t, doc)
		// Cisco's way: an options template scoped to the system, with the
		// sampler id, its mode and interval; records carry the sampler id.
		scopes := []field{{1, 4, 0}} // scope: system
		options := []field{{48, 1, 0}, {49, 1, 0}, {50, 4, 0}}
		fields := append(slices.Clone(ipv4Fields), field{48, 1, 0})
		c.Datagram(router, message(9, 7,
			optionsTemplateSet(9, 257, scopes, options),
			dataSet(257, append(slices.Clone(scopes), options...),
				flowRecord{1: uint64(0), 48: uint64(1), 49: uint64(2), 50: uint64(10)},
				flowRecord{1: uint64(0), 48: uint64(2), 49: uint64(2), 50: uint64(1000)}),
			templateSet(9, 256, fields)))
		a := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100)
		a[48] = uint64(1)
		b := rec4("192.168.31.2", "203.0.113.1", 1, 2, 17, 1, 100)
		b[48] = uint64(2)
		c.Datagram(router, message(9, 7, dataSet(256, fields, a, b)))
		// Another source id has no rate: its flows count as they are.
		c.Datagram(router, message(9, 8, templateSet(9, 256, fields), dataSet(256, fields, a)))
		checkCounts(t, c, map[string]collector.Counter{
			"rent31 192.168.31.1 out": {Packets: 11, Bytes: 1100},
			"rent31 192.168.31.2 out": {Packets: 1000, Bytes: 100000},
		})
	})
	t.Run("ipfix options", func(t *testing.T) {
		c := newCollector(t, doc)
		// RFC 5476: 1 packet taken (samplingPacketInterval), 99 skipped
		// (samplingPacketSpace): a rate of 100. No sampler id: the
		// domain's rate.
		scopes := []field{{149, 4, 0}} // observationDomainId
		options := []field{{305, 4, 0}, {306, 4, 0}}
		c.Datagram(router, message(10, 3,
			optionsTemplateSet(10, 400, scopes, options),
			dataSet(400, append(slices.Clone(scopes), options...), flowRecord{149: uint64(3), 305: uint64(1), 306: uint64(99)}),
			templateSet(10, 401, ipv6Fields),
			dataSet(401, ipv6Fields, rec6("2001:db8:31::5", "2001:db8:ff::1", 4, 400))))
		checkCounts(t, c, map[string]collector.Counter{"rent31 2001:db8:31::5 out": {Packets: 400, Bytes: 40000}})
	})
}

// TestSamplingPacketSpace: RFC 5476's rate, samplingPacketInterval packets
// taken and samplingPacketSpace skipped, is (taken+skipped)/taken, rarely
// a whole number. The totals must be the exact products: the fraction one
// flow leaves over carries into the next.
func TestSamplingPacketSpace(t *testing.T) {
	const doc = "addresses:\n  - tag: rent31\n    source: flow\n    networks: [192.168.31.0/24]\n"
	scopes := []field{{149, 4, 0}} // observationDomainId
	options := []field{{305, 4, 0}, {306, 4, 0}}
	perRecord := append(slices.Clone(ipv4Fields), field{305, 2, 0}, field{306, 2, 0})
	for _, tc := range []struct {
		taken, skipped uint64
		flows          int    // of one packet and 101 bytes each, sampled
		want           uint64 // packets: flows × (taken+skipped) / taken
	}{
		{taken: 2, skipped: 3, flows: 4, want: 10},   // 5/2; 2 each, 20 % low, before
		{taken: 3, skipped: 1, flows: 3, want: 4},    // 4/3; 1 each, 25 % low, before
		{taken: 1, skipped: 99, flows: 3, want: 300}, // 100
	} {
		want := collector.Counter{Packets: tc.want, Bytes: 101 * tc.want}
		t.Run(fmt.Sprintf("%d/%d options", tc.taken, tc.skipped), func(t *testing.T) {
			c := newCollector(t, doc)
			c.Datagram(router, message(10, 3,
				optionsTemplateSet(10, 400, scopes, options),
				dataSet(400, append(slices.Clone(scopes), options...), flowRecord{149: uint64(3), 305: tc.taken, 306: tc.skipped}),
				templateSet(10, 401, ipv4Fields)))
			for range tc.flows {
				c.Datagram(router, message(10, 3, dataSet(401, ipv4Fields, rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 101))))
			}
			checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": want})
		})
		t.Run(fmt.Sprintf("%d/%d records", tc.taken, tc.skipped), func(t *testing.T) {
			c := newCollector(t, doc)
			r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 101)
			r[305], r[306] = tc.taken, tc.skipped
			recs := make([]flowRecord, tc.flows)
			for i := range recs {
				recs[i] = r
			}
			c.Datagram(router, message(10, 3, templateSet(10, 402, perRecord), dataSet(402, perRecord, recs...)))
			checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": want})
		})
	}
}

// TestTemplateRefresh: a template sent again with another layout replaces
// the old one, for the data that follows; an IPFIX withdrawal forgets it.
func TestTemplateRefresh(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		t.Run(fmt.Sprint(version), func(t *testing.T) {
			c := newCollector(t, tenantsYAML)
			r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100)
			c.Datagram(router, message(version, 1, templateSet(version, 256, ipv4Fields), dataSet(256, ipv4Fields, r)))
			// The same id, the fields reversed: read the old way, the
			// bytes would give other addresses.
			reversed := slices.Clone(ipv4Fields)
			slices.Reverse(reversed)
			c.Datagram(router, message(version, 1, templateSet(version, 256, reversed)))
			c.Datagram(router, message(version, 1, dataSet(256, reversed, r, r)))
			// The same template again (a periodic refresh) changes nothing.
			c.Datagram(router, message(version, 1, templateSet(version, 256, reversed), dataSet(256, reversed, r)))
			checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": {Packets: 4, Bytes: 400}})
			if version == 10 {
				// A template record with no fields withdraws the id.
				c.Datagram(router, message(version, 1, templateSet(version, 256, nil)))
				c.Datagram(router, message(version, 1, dataSet(256, reversed, r)))
				if got := tel(c, router).unknownTemplate; got != 1 {
					t.Errorf("after the withdrawal: %d unknown template sets, want 1", got)
				}
			}
			if n := len(c.routers[router].dec.templates.m); n != 1-int(version-9) {
				t.Errorf("%d templates kept", n)
			}
		})
	}
}

// TestUnknownTemplate: data before its template is dropped and counted;
// the datagram's other sets still count, and so does data after the
// template arrives. Templates are per router and observation domain.
func TestUnknownTemplate(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		t.Run(fmt.Sprint(version), func(t *testing.T) {
			c := newCollector(t, tenantsYAML)
			r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100)
			c.Datagram(router, message(version, 1, dataSet(256, ipv4Fields, r)))
			c.Datagram(router, message(version, 1, dataSet(256, ipv4Fields, r), templateSet(version, 257, ipv4Fields), dataSet(257, ipv4Fields, r)))
			// Known for domain 1 of this router only.
			c.Datagram(router, message(version, 2, dataSet(257, ipv4Fields, r)))
			other := netip.MustParseAddr("192.0.2.253")
			c.Datagram(other, message(version, 1, dataSet(257, ipv4Fields, r)))
			checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": {Packets: 1, Bytes: 100}})
			if got := tel(c, router); got.unknownTemplate != 3 || got.records != 1 || got.decodeErrors != 0 {
				t.Errorf("telemetry %+v, want 3 unknown template sets, 1 record", got)
			}
			if got := tel(c, other).unknownTemplate; got != 1 {
				t.Errorf("other router: %d unknown template sets", got)
			}
		})
	}
}

// validDatagrams are one of each kind, with a record in a watched network.
func validDatagrams() map[string][]byte {
	r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100)
	return map[string][]byte{
		"v5":    v5Packet(0, v5Record{src: "192.168.31.1", dst: "203.0.113.1", packets: 1, bytes: 100}, v5Record{src: "192.168.31.2", dst: "203.0.113.1", packets: 1, bytes: 100}),
		"v9":    message(9, 1, templateSet(9, 256, ipv4Fields), dataSet(256, ipv4Fields, r, r)),
		"ipfix": message(10, 1, templateSet(10, 256, ipv6Fields), dataSet(256, ipv6Fields, rec6("2001:db8:31::1", "2001:db8::2", 1, 100))),
	}
}

// TestTruncated: every truncation of a valid datagram is dropped whole and
// counted as a decode error; none counts a flow. NetFlow v9 has no message
// length: a datagram cut at a set's end is a valid shorter one (the header
// alone, or the header and the template set), and those two are not
// errors; the template they carry is learnt.
func TestTruncated(t *testing.T) {
	for name, pkt := range validDatagrams() {
		t.Run(name, func(t *testing.T) {
			c := newCollector(t, tenantsYAML)
			valid := 0
			for n := range len(pkt) {
				if name == "v9" && (n == v9HeaderLen || n == v9HeaderLen+len(templateSet(9, 256, ipv4Fields))) {
					valid++
				}
				c.Datagram(router, pkt[:n])
			}
			if got := counts(t, c); len(got) != 0 {
				t.Errorf("truncated datagrams counted %v", got)
			}
			want := uint64(len(pkt) - valid)
			if got := tel(c, router); got.decodeErrors != want || got.records != 0 {
				t.Errorf("telemetry %+v, want %d decode errors and no records", got, want)
			}
			c.Datagram(router, pkt)
			if got := counts(t, c); len(got) == 0 {
				t.Error("the whole datagram counted nothing")
			}
			// Trailing bytes are as wrong as missing ones.
			c.Datagram(router, append(slices.Clone(pkt), 0, 0, 0, 0, 0))
			if got := tel(c, router).decodeErrors; got != want+1 {
				t.Errorf("%d decode errors after trailing bytes", got)
			}
		})
	}
}

// TestHostileTemplates: templates that would make goflow2 loop, or take
// memory without bound, are refused; the datagram counts as an error.
func TestHostileTemplates(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	zero := []field{{8, 0, 0}, {12, 0, 0}}
	c.Datagram(router, message(10, 1, templateSet(10, 256, zero), dataSet(256, zero, flowRecord{})))
	c.Datagram(router, message(9, 1, optionsTemplateSet(9, 257, nil, []field{{34, 0, 0}}), set(257, []byte{0, 0, 0, 0})))
	wide := make([]field, maxTemplateFields+1)
	for i := range wide {
		wide[i] = field{1, 1, 0}
	}
	c.Datagram(router, message(10, 1, templateSet(10, 258, wide)))
	if got := tel(c, router); got.decodeErrors != 3 {
		t.Errorf("telemetry %+v, want 3 decode errors", got)
	}
	// Templates past the limit are refused; the ones kept still work.
	for i := range maxTemplates + 10 {
		c.Datagram(router, message(9, uint32(i/1000), templateSet(9, uint16(256+i%1000), ipv4Fields)))
	}
	if n := len(c.routers[router].dec.templates.m); n != maxTemplates {
		t.Errorf("%d templates kept, want the limit %d", n, maxTemplates)
	}
	if got := tel(c, router).decodeErrors; got != 3+10 {
		t.Errorf("%d decode errors, want 13", got)
	}
	c.Datagram(router, message(9, 0, dataSet(256, ipv4Fields, rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100))))
	checkCounts(t, c, map[string]collector.Counter{"rent31 192.168.31.1 out": {Packets: 1, Bytes: 100}})
}

// TestRouterFilters: with flow.routers, only the listed routers
// count, and per direction only the flows of the listed interfaces: in
// from flows that came in by the uplink, out from flows that left by it.
func TestRouterFilters(t *testing.T) {
	c := newCollector(t, tenantsYAML+`
flow:
  routers:
    - address: 192.0.2.254
      input_interfaces: [1]
      output_interfaces: [1]
`)
	up := v5Packet(0,
		// Ingress on the tenant's VLAN (3), egress on the uplink (1).
		v5Record{src: "192.168.31.1", dst: "203.0.113.1", in: 3, out: 1, packets: 1, bytes: 100},
		// Egress on the VLAN of the reply: its twin, ingress on the uplink.
		v5Record{src: "203.0.113.1", dst: "192.168.31.1", in: 1, out: 3, packets: 2, bytes: 200},
		// The same two as the VLAN interface's ingress would report them
		// on a router with ingress accounting on both: not counted again.
		v5Record{src: "192.168.31.1", dst: "203.0.113.1", in: 3, out: 0, packets: 1, bytes: 100},
		v5Record{src: "203.0.113.1", dst: "192.168.31.1", in: 0, out: 3, packets: 2, bytes: 200},
	)
	c.Datagram(router, up)
	stranger := netip.MustParseAddr("192.0.2.1")
	c.Datagram(stranger, up)
	checkCounts(t, c, map[string]collector.Counter{
		"rent31 192.168.31.1 out": {Packets: 1, Bytes: 100},
		"rent31 192.168.31.1 in":  {Packets: 2, Bytes: 200},
	})
	if got := tel(c, router); got.filtered != 2 || got.records != 4 {
		t.Errorf("router telemetry %+v, want 2 filtered of 4", got)
	}
	if got := tel(c, stranger); got.ignored != 1 || got.records != 0 {
		t.Errorf("stranger telemetry %+v, want 1 ignored datagram", got)
	}
}

// TestCapacity: a full set takes no new address; its traffic goes to the
// overflow counter. With a timeout, idle addresses leave and free room.
func TestCapacity(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	var recs []v5Record
	for i := 1; i <= 4; i++ {
		recs = append(recs, v5Record{src: fmt.Sprintf("192.168.32.%d", i), dst: "203.0.113.1", packets: 1, bytes: uint32(100 * i)})
	}
	c.Datagram(router, v5Packet(0, recs...))
	c.Datagram(router, v5Packet(0, recs[0]))
	checkCounts(t, c, map[string]collector.Counter{
		"rent32 192.168.32.1 out":  {Packets: 2, Bytes: 200},
		"rent32 192.168.32.2 out":  {Packets: 1, Bytes: 200},
		"rent32 ipv4 out overflow": {Packets: 2, Bytes: 700},
	})

	now := time.Unix(1700000000, 0)
	c = newCollector(t, "addresses:\n  - tag: pool\n    source: flow\n    networks: [192.168.40.0/24]\n    size: 1\n    timeout: 1m\n")
	c.now = func() time.Time { return now }
	c.Datagram(router, v5Packet(0, recs[0]))
	c.Configure(mustParse(t, "addresses:\n  - tag: pool\n    source: flow\n    networks: [192.168.32.0/24]\n    size: 1\n    timeout: 1m\n"))
	c.Datagram(router, v5Packet(0, recs[0]))
	c.Datagram(router, v5Packet(0, recs[1]))
	now = now.Add(61 * time.Second)
	c.Datagram(router, v5Packet(0, recs[2]))
	checkCounts(t, c, map[string]collector.Counter{
		"pool 192.168.32.3 out":  {Packets: 1, Bytes: 300},
		"pool ipv4 out overflow": {Packets: 1, Bytes: 200},
	})
}

func mustParse(t testing.TB, doc string) *config.File {
	t.Helper()
	f, err := config.Parse("rules.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReload keeps the counts of the tags that stay, drops the addresses
// an entry no longer holds, and forgets the entries that left.
func TestReload(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	pkt := v5Packet(0,
		v5Record{src: "192.168.31.1", dst: "203.0.113.1", packets: 1, bytes: 100},
		v5Record{src: "192.168.31.2", dst: "203.0.113.1", packets: 1, bytes: 100},
		v5Record{src: "192.168.32.1", dst: "203.0.113.1", packets: 1, bytes: 100})
	c.Datagram(router, pkt)
	c.Configure(mustParse(t, `
addresses:
  - tag: rent31
    source: flow
    description: now with a description
    networks: [192.168.31.0/31]
  - tag: rent33
    source: flow
    networks: [192.168.32.0/24]
`))
	c.Datagram(router, pkt)
	checkCounts(t, c, map[string]collector.Counter{
		"rent31 192.168.31.1 out": {Packets: 2, Bytes: 200},
		"rent33 192.168.32.1 out": {Packets: 1, Bytes: 100},
	})
}

// TestBiflow: an IPFIX biflow's reverse counters (RFC 5103) count the
// other way.
func TestBiflow(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	fields := append(slices.Clone(ipv4Fields), field{1, 8, reversePEN}, field{2, 8, reversePEN})
	r := rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 3, 300)
	r[1|0x8000], r[2|0x8000] = uint64(5000), uint64(5)
	c.Datagram(router, message(10, 1, templateSet(10, 256, fields), dataSet(256, fields, r)))
	checkCounts(t, c, map[string]collector.Counter{
		"rent31 192.168.31.1 out": {Packets: 3, Bytes: 300},
		"rent31 192.168.31.1 in":  {Packets: 5, Bytes: 5000},
	})
}

// TestRouterCap: past maxRouters source addresses, datagrams are
// counted under "other" and not decoded: a flood of forged sources keeps
// no state.
func TestRouterCap(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	pkt := validDatagrams()["v5"]
	for i := range maxRouters + 5 {
		c.Datagram(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), pkt)
	}
	if len(c.routers) != maxRouters || c.other.datagrams != 5 || c.other.ignored != 5 {
		t.Errorf("%d routers tracked, other %+v", len(c.routers), c.other)
	}
	if got := counts(t, c)["rent31 192.168.31.1 out"]; got.Packets != maxRouters {
		t.Errorf("counted %+v, want one packet per tracked exporter", got)
	}
}

// TestTelemetry checks the self-telemetry's exposition.
func TestTelemetry(t *testing.T) {
	c := newCollector(t, tenantsYAML)
	pkts := validDatagrams()
	c.Datagram(router, pkts["v9"])
	c.Datagram(router, []byte{0, 7, 1, 2})
	c.Datagram(router, message(9, 1, dataSet(999, ipv4Fields, rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100))))
	c.Datagram(router, v5Packet(0, v5Record{src: "203.0.113.1", dst: "203.0.113.2", packets: 1, bytes: 1}))
	want := fmt.Sprintf(`
# HELP ipacct_flow_datagram_bytes_total Bytes of the UDP datagrams received from the router (payload).
# TYPE ipacct_flow_datagram_bytes_total counter
ipacct_flow_datagram_bytes_total{router="192.0.2.254"} %d
# HELP ipacct_flow_datagrams_total UDP datagrams received from the router.
# TYPE ipacct_flow_datagrams_total counter
ipacct_flow_datagrams_total{router="192.0.2.254"} 4
# HELP ipacct_flow_decode_errors_total Datagrams dropped because they did not decode: truncated, malformed, an unsupported version, or a template past the limits.
# TYPE ipacct_flow_decode_errors_total counter
ipacct_flow_decode_errors_total{router="192.0.2.254"} 1
# HELP ipacct_flow_records_total Flow records decoded from the router's datagrams (an IPFIX biflow counts as two).
# TYPE ipacct_flow_records_total counter
ipacct_flow_records_total{router="192.0.2.254"} 3
# HELP ipacct_flow_templates NetFlow v9 and IPFIX templates known for the router.
# TYPE ipacct_flow_templates gauge
ipacct_flow_templates{router="192.0.2.254"} 1
# HELP ipacct_flow_unknown_template_sets_total Data sets dropped because the router had not (yet) sent their template.
# TYPE ipacct_flow_unknown_template_sets_total counter
ipacct_flow_unknown_template_sets_total{router="192.0.2.254"} 1
# HELP ipacct_flow_unwatched_records_total Flow records whose addresses are in no entry of rules.yaml with source: flow.
# TYPE ipacct_flow_unwatched_records_total counter
ipacct_flow_unwatched_records_total{router="192.0.2.254"} 1
`, len(pkts["v9"])+4+len(message(9, 1, dataSet(999, ipv4Fields, rec4("192.168.31.1", "203.0.113.1", 1, 2, 17, 1, 100))))+v5HeaderLen+v5RecordLen)
	names := []string{"ipacct_flow_datagram_bytes_total", "ipacct_flow_datagrams_total", "ipacct_flow_decode_errors_total",
		"ipacct_flow_records_total", "ipacct_flow_templates", "ipacct_flow_unknown_template_sets_total", "ipacct_flow_unwatched_records_total"}
	if err := testutil.CollectAndCompare(c.Telemetry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c.Telemetry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestFlood: random addresses, inside and outside the watched networks,
// grow no more series than the entry's size; what the set cannot take is
// in its overflow counter, to the byte.
func TestFlood(t *testing.T) {
	c := newCollector(t, "addresses:\n  - tag: big\n    source: flow\n    networks: [10.0.0.0/8]\n    direction: out\n    size: 1000\n")
	rng := rand.New(rand.NewPCG(1, 2))
	var want, unwatched uint64
	for range 500 {
		var recs []v5Record
		for range 30 {
			a := netip.AddrFrom4([4]byte{byte(8 + rng.IntN(4)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
			b := uint32(rng.IntN(1500) + 1)
			recs = append(recs, v5Record{src: a.String(), dst: "203.0.113.1", packets: 1, bytes: b})
			if a.As4()[0] == 10 {
				want += uint64(b)
			} else {
				unwatched++
			}
		}
		c.Datagram(router, v5Packet(0, recs...))
	}
	r, _ := c.Read(context.Background())
	var got uint64
	for _, e := range r.Sets[0].Elements {
		got += e.Bytes
	}
	if n := len(r.Sets[0].Elements); n != 1000 {
		t.Errorf("%d addresses, want the size, 1000", n)
	}
	if got+r.Sets[0].Overflow.Bytes != want || r.Sets[0].Overflow.Bytes == 0 {
		t.Errorf("addresses %d + overflow %d bytes, want %d in all", got, r.Sets[0].Overflow.Bytes, want)
	}
	if tel(c, router).unwatched != unwatched {
		t.Errorf("unwatched %d, want %d", tel(c, router).unwatched, unwatched)
	}
}
