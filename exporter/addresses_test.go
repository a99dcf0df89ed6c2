package exporter

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

func addr(s string, p, b uint64) collector.AddressCount {
	return collector.AddressCount{Addr: netip.MustParseAddr(s), Packets: p, Bytes: b}
}

func TestAddressSets(t *testing.T) {
	nft := &fakeBackend{reading: collector.Reading{Sets: []collector.AddressSet{
		{Tag: "rent31", Direction: tag.Out, Family: family.IPv4, Description: "Tenant 31", Capacity: 2,
			Elements: []collector.AddressCount{addr("192.0.2.1", 1, 100), addr("192.0.2.2", 2, 200)},
			Overflow: &collector.Counter{Packets: 3, Bytes: 300}},
		{Tag: "rent31", Direction: tag.Out, Family: family.IPv6, Elements: []collector.AddressCount{addr("2001:db8::1", 4, 400)}},
		// Two sets of one tag, family and direction (two tables, say): the
		// addresses they share are summed, the gauges too.
		{Tag: "srv", Direction: tag.In, Family: family.IPv4, Capacity: 10, Elements: []collector.AddressCount{addr("198.51.100.1", 5, 500)}},
		{Tag: "srv", Direction: tag.In, Family: family.IPv4, Description: "Servers", Capacity: 10,
			Elements: []collector.AddressCount{addr("198.51.100.1", 1, 10), addr("198.51.100.2", 6, 600)}},
		{Tag: "empty", Direction: tag.In, Family: family.IPv6},
	}}}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: nft})
	want := `
# HELP ipacct_ip_addresses Addresses now in the tag's sets.
# TYPE ipacct_ip_addresses gauge
ipacct_ip_addresses{direction="in",family="ipv4",tag="srv"} 3
ipacct_ip_addresses{direction="in",family="ipv6",tag="empty"} 0
ipacct_ip_addresses{direction="out",family="ipv4",tag="rent31"} 2
ipacct_ip_addresses{direction="out",family="ipv6",tag="rent31"} 1
# HELP ipacct_ip_bytes_total Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.
# TYPE ipacct_ip_bytes_total counter
ipacct_ip_bytes_total{direction="in",family="ipv4",ip="198.51.100.1",tag="srv"} 510
ipacct_ip_bytes_total{direction="in",family="ipv4",ip="198.51.100.2",tag="srv"} 600
ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent31"} 100
ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.2",tag="rent31"} 200
ipacct_ip_bytes_total{direction="out",family="ipv6",ip="2001:db8::1",tag="rent31"} 400
# HELP ipacct_ip_capacity Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit.
# TYPE ipacct_ip_capacity gauge
ipacct_ip_capacity{direction="in",family="ipv4",tag="srv"} 20
ipacct_ip_capacity{direction="out",family="ipv4",tag="rent31"} 2
# HELP ipacct_ip_overflow_packets_total Packets of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).
# TYPE ipacct_ip_overflow_packets_total counter
ipacct_ip_overflow_packets_total{direction="out",family="ipv4",tag="rent31"} 3
# HELP ipacct_ip_packets_total Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.
# TYPE ipacct_ip_packets_total counter
ipacct_ip_packets_total{direction="in",family="ipv4",ip="198.51.100.1",tag="srv"} 6
ipacct_ip_packets_total{direction="in",family="ipv4",ip="198.51.100.2",tag="srv"} 6
ipacct_ip_packets_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent31"} 1
ipacct_ip_packets_total{direction="out",family="ipv4",ip="192.0.2.2",tag="rent31"} 2
ipacct_ip_packets_total{direction="out",family="ipv6",ip="2001:db8::1",tag="rent31"} 4
# HELP ipacct_tag_info The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order, else the tag. Always 1.
# TYPE ipacct_tag_info gauge
ipacct_tag_info{description="empty",tag="empty"} 1
ipacct_tag_info{description="Servers",tag="srv"} 1
ipacct_tag_info{description="Tenant 31",tag="rent31"} 1
`
	if err := testutil.GatherAndCompare(e, strings.NewReader(want), "ipacct_ip_addresses", "ipacct_ip_bytes_total", "ipacct_ip_packets_total",
		"ipacct_ip_capacity", "ipacct_ip_overflow_packets_total", "ipacct_tag_info"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(e); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestAddressChurn: addresses of two tags, both directions, IPv4 and IPv6,
// come and go over many reads. Every answer is in the registry's order and
// serves each address the kernel's value (0 in its first scrape), and an
// answer written late, while and after reads that freed its series' slots
// and used them again, writes what it held.
func TestAddressChurn(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	var pool []netip.Addr
	for i := range 1500 {
		pool = append(pool, netip.AddrFrom4([4]byte{byte(rnd.IntN(3) * 99), byte(i >> 8), byte(i), byte(rnd.IntN(256))}))
		if i%5 == 0 {
			pool = append(pool, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8)}))
		}
	}
	groups := []struct {
		tag string
		dir tag.Direction
	}{{"a", tag.In}, {"a", tag.Out}, {"b", tag.Out}}
	b := &fakeBackend{}
	e := NewForNamespaces(slog.New(slog.DiscardHandler), 0, func() []Collector {
		return []Collector{{Name: "nftables", NetNS: "n1", Collector: b}}
	})
	present := map[string]bool{} // group/address served before
	var held *answer
	var heldText []byte
	written := make(chan []byte, 3)
	for step := uint64(1); step <= 40; step++ {
		var r collector.Reading
		want := map[string]float64{}
		for gi, g := range groups {
			s := collector.AddressSet{Tag: g.tag, Direction: g.dir, Family: family.IPv4, Where: fmt.Sprint("inet t set ", gi), Handle: uint64(gi + 1)}
			for ai, a := range pool {
				if rnd.IntN(3) == 0 {
					continue // not in the set in this read
				}
				v := step*1000 + uint64(ai)
				s.Elements = append(s.Elements, collector.AddressCount{Addr: a, Packets: v, Bytes: v})
				k := fmt.Sprint(g.tag, "/", g.dir, "/", a)
				want[k] = float64(v)
				if !present[k] && step > 1 {
					want[k] = 0 // new while running
				}
			}
			r.Sets = append(r.Sets, s)
		}
		b.reading = r
		fams, err := e.Gather()
		if err != nil {
			t.Fatal(err)
		}
		checked, err := prometheus.Gatherers{staticGatherer(fams)}.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got, normal bytes.Buffer
		for _, f := range fams {
			expfmt.MetricFamilyToText(&got, f)
		}
		for _, f := range checked {
			expfmt.MetricFamilyToText(&normal, f)
		}
		if !bytes.Equal(got.Bytes(), normal.Bytes()) {
			t.Fatalf("step %d: not in the registry's order:\n%s", step, diffLines(normal.String(), got.String()))
		}
		served := map[string]bool{}
		for _, f := range fams {
			if f.GetName() != ipBytesName {
				continue
			}
			for _, m := range f.Metric {
				l := map[string]string{}
				for _, p := range m.Label {
					l[p.GetName()] = p.GetValue()
				}
				k := l["tag"] + "/" + l["direction"] + "/" + l["ip"]
				served[k] = true
				if w, ok := want[k]; !ok || m.GetCounter().GetValue() != w {
					t.Fatalf("step %d: %s served %v, want %v (in the kernel: %v)", step, k, m.GetCounter().GetValue(), w, ok)
				}
			}
		}
		if len(served) != len(want) {
			t.Fatalf("step %d: %d series served, want %d", step, len(served), len(want))
		}
		present = served

		switch step {
		case 10:
			// An answer taken, and written only later.
			b.reading = r
			if held, err = e.answer(); err != nil {
				t.Fatal(err)
			}
			heldText = writeAnswer(t, held)
		case 20:
			// Written while the reads go on (go test -race watches).
			go func() {
				for range 3 {
					written <- writeAnswer(t, held)
				}
				close(written)
			}()
		case 30:
			for got := range written {
				if !bytes.Equal(got, heldText) {
					t.Fatalf("an answer written while later reads ran differs from what it was:\n%s", diffLines(string(heldText), string(got)))
				}
			}
			if got := writeAnswer(t, held); !bytes.Equal(got, heldText) {
				t.Fatalf("an answer written 20 reads late differs from what it was:\n%s", diffLines(string(heldText), string(got)))
			}
		}
	}
}

func writeAnswer(t *testing.T, a *answer) []byte {
	var buf bytes.Buffer
	if err := write(&buf, expfmt.NewFormat(expfmt.TypeOpenMetrics), a.fams); err != nil {
		t.Error(err)
	}
	return buf.Bytes()
}

// TestAddressesOfAGoneNamespace: a namespace vanishes and another's new
// addresses come in the same read, in the slots the first one's freed:
// the series of the one go, those of the other come, once each.
func TestAddressesOfAGoneNamespace(t *testing.T) {
	set := func(first int) collector.Reading {
		s := collector.AddressSet{Tag: "t", Direction: tag.Out, Family: family.IPv4, Where: "inet t set s", Handle: 1}
		for i := first; i < first+100; i++ {
			s.Elements = append(s.Elements, addr(fmt.Sprintf("192.0.2.%d", i), 1, 10))
		}
		return collector.Reading{Sets: []collector.AddressSet{s}}
	}
	a := Collector{Name: "nftables", NetNS: "a", Collector: &fakeBackend{reading: set(0)}}
	b := Collector{Name: "nftables", NetNS: "b", Collector: &fakeBackend{reading: set(100)}}
	listed := []Collector{a}
	e := NewForNamespaces(slog.New(slog.DiscardHandler), 0, func() []Collector { return listed })
	for step, l := range [][]Collector{{a}, {b}, {b}} {
		listed = l
		fams, err := e.Gather()
		if err != nil {
			t.Fatal(err)
		}
		checked, err := prometheus.Gatherers{staticGatherer(fams)}.Gather()
		if err != nil {
			t.Fatalf("step %d: the registry refuses the answer: %v", step, err)
		}
		for _, f := range checked {
			if f.GetName() != ipBytesName {
				continue
			}
			for _, m := range f.Metric {
				if ns := labelValue(m, netnsLabel); ns != l[0].NetNS || len(f.Metric) != 100 {
					t.Fatalf("step %d: %d address series, one of netns %s; want the 100 of %s", step, len(f.Metric), ns, l[0].NetNS)
				}
			}
		}
	}
}

// labelValue is the value of a series' label, "" when it has none.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
