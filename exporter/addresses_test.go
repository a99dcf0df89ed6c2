package exporter

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

func addr(s string, p, b uint64) backends.AddressCount {
	return backends.AddressCount{Addr: netip.MustParseAddr(s), Packets: p, Bytes: b}
}

func TestAddressSets(t *testing.T) {
	nft := &fakeBackend{reading: backends.Reading{Sets: []backends.AddressSet{
		{Tag: "rent31", Direction: tag.Out, Family: "ipv4", Description: "Tenant 31", Capacity: 2,
			Elements: []backends.AddressCount{addr("192.0.2.1", 1, 100), addr("192.0.2.2", 2, 200)},
			Overflow: &backends.Counter{Packets: 3, Bytes: 300}},
		{Tag: "rent31", Direction: tag.Out, Family: "ipv6", Elements: []backends.AddressCount{addr("2001:db8::1", 4, 400)}},
		// Two sets of one tag, family and direction (two tables, say): the
		// addresses they share are summed, the gauges too.
		{Tag: "srv", Direction: tag.In, Family: "ipv4", Capacity: 10, Elements: []backends.AddressCount{addr("198.51.100.1", 5, 500)}},
		{Tag: "srv", Direction: tag.In, Family: "ipv4", Description: "Servers", Capacity: 10,
			Elements: []backends.AddressCount{addr("198.51.100.1", 1, 10), addr("198.51.100.2", 6, 600)}},
		{Tag: "empty", Direction: tag.In, Family: "ipv6"},
	}}}
	e := New(slog.New(slog.DiscardHandler), 0, Source{Name: "nftables", Backend: nft})
	want := `
# HELP ipacct_ip_addresses Addresses now in the tag's sets.
# TYPE ipacct_ip_addresses gauge
ipacct_ip_addresses{direction="in",family="ipv4",tag="srv"} 3
ipacct_ip_addresses{direction="in",family="ipv6",tag="empty"} 0
ipacct_ip_addresses{direction="out",family="ipv4",tag="rent31"} 2
ipacct_ip_addresses{direction="out",family="ipv6",tag="rent31"} 1
# HELP ipacct_ip_bytes_total Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.
# TYPE ipacct_ip_bytes_total counter
ipacct_ip_bytes_total{direction="in",ip="198.51.100.1",tag="srv"} 510
ipacct_ip_bytes_total{direction="in",ip="198.51.100.2",tag="srv"} 600
ipacct_ip_bytes_total{direction="out",ip="192.0.2.1",tag="rent31"} 100
ipacct_ip_bytes_total{direction="out",ip="192.0.2.2",tag="rent31"} 200
ipacct_ip_bytes_total{direction="out",ip="2001:db8::1",tag="rent31"} 400
# HELP ipacct_ip_capacity Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit.
# TYPE ipacct_ip_capacity gauge
ipacct_ip_capacity{direction="in",family="ipv4",tag="srv"} 20
ipacct_ip_capacity{direction="out",family="ipv4",tag="rent31"} 2
# HELP ipacct_ip_overflow_packets_total Packets of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).
# TYPE ipacct_ip_overflow_packets_total counter
ipacct_ip_overflow_packets_total{direction="out",family="ipv4",tag="rent31"} 3
# HELP ipacct_ip_packets_total Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.
# TYPE ipacct_ip_packets_total counter
ipacct_ip_packets_total{direction="in",ip="198.51.100.1",tag="srv"} 6
ipacct_ip_packets_total{direction="in",ip="198.51.100.2",tag="srv"} 6
ipacct_ip_packets_total{direction="out",ip="192.0.2.1",tag="rent31"} 1
ipacct_ip_packets_total{direction="out",ip="192.0.2.2",tag="rent31"} 2
ipacct_ip_packets_total{direction="out",ip="2001:db8::1",tag="rent31"} 4
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
