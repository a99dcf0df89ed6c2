package exporter

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// TestNamespacesKeptApart reads the same tag and address in two namespaces:
// they must stay two series each, told apart by the netns label, never
// summed; a namespace that vanishes mid-scrape leaves no trace.
func TestNamespacesKeptApart(t *testing.T) {
	reading := func(n uint64) collector.Reading {
		return collector.Reading{
			Records: []collector.Record{rec("web", tag.In, family.IP, "Web "+fmt.Sprint(n), n, 100*n)},
			Sets: []collector.AddressSet{{Tag: "tenants", Direction: tag.Out, Family: family.IPv4, Capacity: 10,
				Elements: []collector.AddressCount{{Addr: netip.MustParseAddr("192.0.2.1"), Packets: n, Bytes: 10 * n}}}},
		}
	}
	a, b := &fakeBackend{reading: reading(1)}, &fakeBackend{reading: reading(2)}
	gone := &fakeBackend{err: fmt.Errorf("opening /run/netns/c: %w", ErrCollectorGone)}
	listed := []Collector{{Name: "nftables", NetNS: "a", Collector: a}, {Name: "nftables", NetNS: "b", Collector: b}, {Name: "nftables", NetNS: "c", Collector: gone}}
	e := NewForNamespaces(slog.New(slog.DiscardHandler), 0, func() []Collector { return listed })

	want := `
# HELP ipacct_collector_success 1 if the collector read its counters in this scrape, 0 if it failed.
# TYPE ipacct_collector_success gauge
ipacct_collector_success{collector="nftables",netns="a"} 1
ipacct_collector_success{collector="nftables",netns="b"} 1
# HELP ipacct_ip_bytes_total Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.
# TYPE ipacct_ip_bytes_total counter
ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",netns="a",tag="tenants"} 10
ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",netns="b",tag="tenants"} 20
# HELP ipacct_ip_capacity Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit.
# TYPE ipacct_ip_capacity gauge
ipacct_ip_capacity{direction="out",family="ipv4",netns="a",tag="tenants"} 10
ipacct_ip_capacity{direction="out",family="ipv4",netns="b",tag="tenants"} 10
# HELP ipacct_tag_bytes_total Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family.
# TYPE ipacct_tag_bytes_total counter
ipacct_tag_bytes_total{direction="in",netns="a",table_family="ip",tag="web"} 100
ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 200
# HELP ipacct_tag_info The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order, else the tag. Always 1.
# TYPE ipacct_tag_info gauge
ipacct_tag_info{description="Web 1",netns="a",tag="web"} 1
ipacct_tag_info{description="Web 2",netns="b",tag="web"} 1
ipacct_tag_info{description="tenants",netns="a",tag="tenants"} 1
ipacct_tag_info{description="tenants",netns="b",tag="tenants"} 1
`
	names := []string{"ipacct_collector_success", "ipacct_ip_bytes_total", "ipacct_ip_capacity", "ipacct_tag_bytes_total", "ipacct_tag_info"}
	if err := testutil.GatherAndCompare(e, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// b fails, then vanishes: while it fails its tag series are withheld;
	// once it is no longer listed, nothing of it is remembered.
	b.err = fmt.Errorf("permission denied")
	if n, err := testutil.GatherAndCount(e, "ipacct_tag_bytes_total"); err != nil || n != 1 {
		t.Errorf("%d tag series while b fails, want a's alone", n)
	}
	listed = listed[:1]
	if n, err := testutil.GatherAndCount(e, "ipacct_collector_success"); err != nil || n != 1 {
		t.Errorf("%d success series after b vanished, want 1", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.srcIDs) != 1 || len(e.lastErr) != 0 || len(e.tags) != 1 {
		t.Errorf("remembered after b vanished: collectors %v, lastErr %v, tags %v", e.srcIDs, e.lastErr, e.tags)
	}
}
