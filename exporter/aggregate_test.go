package exporter

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The rules of aggregate (docs/counters.md), read by read: which series a
// read serves, withholds or drops, and the value of each. aggregate does
// no I/O: the tables give it the collectors' results as a read would, and
// read what emit serves after it.

// aggStep is one read of a table.
type aggStep struct {
	name string
	// reads are the results of the collectors listed in this read, by
	// "name" or "netns/name"; a collector of the table not here is not
	// listed.
	reads map[string]result
	// served are the counter series served, as "name{labels} value", in
	// the exposition's order; a series withheld or gone is not.
	served []string
	// waiting are the collectors whose first read series wait for.
	waiting []string
}

// Sources of the tables: nftables feeds every series, iptables-legacy
// only tag series of the table families ip and ip6.
var (
	nftCollector    = Collector{Name: "nftables"}
	legacyCollector = Collector{Name: "iptables", Feeds: Feeds{TagFamilies: []family.Table{family.IP, family.IP6}, NoSets: true}}
)

func inNetNS(netns string, c Collector) Collector {
	c.NetNS = netns
	return c
}

// counter is a tagged kernel counter of the series "tag direction
// table_family", with its identity, handle and bytes (packets: bytes/100).
func counter(series, id string, handle, bytes uint64) collector.Record {
	f := strings.Fields(series)
	return collector.Record{Tag: f[0], Direction: tag.Direction(f[1]), Family: family.Table(f[2]),
		ID: collector.ID(id), Handle: handle, Bytes: bytes, Packets: bytes / 100}
}

// tenantSet is a set of tenant rent's IPv4 addresses, out.
func tenantSet(where string, handle uint64, elements ...collector.AddressCount) collector.AddressSet {
	return collector.AddressSet{Tag: "rent", Direction: tag.Out, Family: family.IPv4, Where: where, Handle: handle, Elements: elements}
}

func readOf(records []collector.Record, sets ...collector.AddressSet) result {
	return result{reading: collector.Reading{Records: records, Sets: sets}}
}

func failing(msg string) result { return result{err: errors.New(msg)} }

func recs(r ...collector.Record) []collector.Record { return r }

func TestAggregate(t *testing.T) {
	gone := result{err: fmt.Errorf("opening /run/netns/b: %w", ErrCollectorGone)}
	for _, c := range []struct {
		name       string
		withNS     bool
		collectors []Collector
		steps      []aggStep
	}{
		{
			name:       "series wait for every collector that can feed them, and a failing one withholds what it fed",
			collectors: []Collector{nftCollector, legacyCollector},
			steps: []aggStep{
				{
					name: "iptables fails at start: the ip series wait, inet and per-address ones do not",
					reads: map[string]result{
						"nftables": readOf(recs(counter("web in ip", "a", 1, 1000), counter("web in inet", "b", 2, 500), counter("dns none ip", "d", 3, 70)),
							tenantSet("inet t set s", 1, addr("192.0.2.1", 1, 100))),
						"iptables": failing("iptables-legacy not found"),
					},
					served: []string{
						`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 100`,
						`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 500`,
					},
					waiting: []string{"iptables"},
				},
				{
					name: "both read: the sums come whole, at their value",
					reads: map[string]result{
						"nftables": readOf(recs(counter("web in ip", "a", 1, 1100), counter("web in inet", "b", 2, 600), counter("dns none ip", "d", 3, 80)),
							tenantSet("inet t set s", 1, addr("192.0.2.1", 1, 150))),
						"iptables": readOf(recs(counter("web in ip", "c", 0, 2000))),
					},
					served: []string{
						`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 150`,
						`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 600`,
						`ipacct_tag_bytes_total{direction="in",table_family="ip",tag="web"} 3100`,
						`ipacct_tag_bytes_total{direction="none",table_family="ip",tag="dns"} 80`,
					},
				},
				{
					name: "iptables fails: the series it fed are withheld, the others served",
					reads: map[string]result{
						"nftables": readOf(recs(counter("web in ip", "a", 1, 1200), counter("web in inet", "b", 2, 700), counter("dns none ip", "d", 3, 90)),
							tenantSet("inet t set s", 1, addr("192.0.2.1", 1, 200))),
						"iptables": failing("xtables lock held"),
					},
					served: []string{
						`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 200`,
						`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 700`,
						`ipacct_tag_bytes_total{direction="none",table_family="ip",tag="dns"} 90`,
					},
				},
				{
					name: "iptables reads again: what both counted meanwhile is there",
					reads: map[string]result{
						"nftables": readOf(recs(counter("web in ip", "a", 1, 1300), counter("web in inet", "b", 2, 800), counter("dns none ip", "d", 3, 100)),
							tenantSet("inet t set s", 1, addr("192.0.2.1", 1, 250))),
						"iptables": readOf(recs(counter("web in ip", "c", 0, 2500))),
					},
					served: []string{
						`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 250`,
						`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 800`,
						`ipacct_tag_bytes_total{direction="in",table_family="ip",tag="web"} 3800`,
						`ipacct_tag_bytes_total{direction="none",table_family="ip",tag="dns"} 100`,
					},
				},
			},
		},
		{
			name:       "a new namespace waits for its own collectors, not the others'",
			withNS:     true,
			collectors: []Collector{inNetNS("a", nftCollector), inNetNS("b", nftCollector), inNetNS("b", legacyCollector)},
			steps: []aggStep{
				{
					name:   "a alone",
					reads:  map[string]result{"a/nftables": readOf(recs(counter("web in inet", "w", 1, 100)))},
					served: []string{`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 100`},
				},
				{
					name: "b comes, its iptables failing: b's ip series wait; its inet series is history, served at its value",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 150))),
						"b/nftables": readOf(recs(counter("web in inet", "w", 1, 1000), counter("web in ip", "x", 2, 40))),
						"b/iptables": failing("xtables lock held"),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 150`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="inet",tag="web"} 1000`,
					},
					waiting: []string{"b/iptables"},
				},
				{
					name: "b's iptables reads: b's ip series come at their value",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 200))),
						"b/nftables": readOf(recs(counter("web in inet", "w", 1, 1100), counter("web in ip", "x", 2, 50))),
						"b/iptables": readOf(recs(counter("web in ip", "y", 0, 7))),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 200`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="inet",tag="web"} 1100`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 57`,
					},
				},
				{
					name: "a tag new in b once b is read whole starts at zero",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 200))),
						"b/nftables": readOf(recs(counter("web in inet", "w", 1, 1100), counter("web in ip", "x", 2, 50), counter("mail out inet", "m", 3, 300))),
						"b/iptables": readOf(recs(counter("web in ip", "y", 0, 7))),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 200`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="inet",tag="web"} 1100`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 57`,
						`ipacct_tag_bytes_total{direction="out",netns="b",table_family="inet",tag="mail"} 0`,
					},
				},
			},
		},
		{
			name:       "a collector gone mid-read is as if not listed: its series are withheld while its namespace is listed, and go with it",
			withNS:     true,
			collectors: []Collector{inNetNS("a", nftCollector), inNetNS("b", nftCollector), inNetNS("b", legacyCollector)},
			steps: []aggStep{
				{
					name: "all read",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 100))),
						"b/nftables": readOf(recs(counter("web in ip", "x", 1, 200))),
						"b/iptables": readOf(recs(counter("web in ip", "y", 0, 50))),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 100`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 250`,
					},
				},
				{
					name: "b's iptables gone during the read: what it fed is withheld",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 110))),
						"b/nftables": readOf(recs(counter("web in ip", "x", 1, 210))),
						"b/iptables": gone,
					},
					served: []string{`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 110`},
				},
				{
					name: "read again: the series kept its counters",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 120))),
						"b/nftables": readOf(recs(counter("web in ip", "x", 1, 220))),
						"b/iptables": readOf(recs(counter("web in ip", "y", 0, 60))),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 120`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 280`,
					},
				},
				{
					name: "b vanishes during the read: its series go",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 130))),
						"b/nftables": gone,
						"b/iptables": gone,
					},
					served: []string{`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 130`},
				},
				{
					name: "b comes again: a new namespace, whose series carry nothing from before",
					reads: map[string]result{
						"a/nftables": readOf(recs(counter("web in inet", "w", 1, 140))),
						"b/nftables": readOf(recs(counter("web in ip", "x", 1, 5))),
						"b/iptables": readOf(recs(counter("web in ip", "y", 0, 1))),
					},
					served: []string{
						`ipacct_tag_bytes_total{direction="in",netns="a",table_family="inet",tag="web"} 140`,
						`ipacct_tag_bytes_total{direction="in",netns="b",table_family="ip",tag="web"} 6`,
					},
				},
			},
		},
		{
			name:       "a series ends with its last counter and starts again at zero",
			collectors: []Collector{nftCollector},
			steps: []aggStep{
				{
					name:   "two counters",
					reads:  map[string]result{"nftables": readOf(recs(counter("web in inet", "a", 1, 100), counter("web in inet", "b", 2, 200)))},
					served: []string{`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 300`},
				},
				{
					name:   "one vanishes: what it counted stays",
					reads:  map[string]result{"nftables": readOf(recs(counter("web in inet", "b", 2, 250)))},
					served: []string{`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 350`},
				},
				{
					name:  "the other too: the series ends",
					reads: map[string]result{"nftables": readOf(nil)},
				},
				{
					name:   "a counter of the tag again: a new series, served at 0 first",
					reads:  map[string]result{"nftables": readOf(recs(counter("web in inet", "c", 3, 40)))},
					served: []string{`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 0`},
				},
				{
					name:   "then at its value, nothing carried from the old one",
					reads:  map[string]result{"nftables": readOf(recs(counter("web in inet", "c", 3, 60)))},
					served: []string{`ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web"} 60`},
				},
			},
		},
		{
			name:       "an address's element zeroed in its set, then its set restored from a save",
			collectors: []Collector{nftCollector},
			steps: []aggStep{
				{
					name:   "counting",
					reads:  map[string]result{"nftables": readOf(nil, tenantSet("inet t set s", 1, addr("192.0.2.1", 10, 1000)))},
					served: []string{`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 1000`},
				},
				{
					name:   "zeroed, the set kept its handle: all of its new value counts",
					reads:  map[string]result{"nftables": readOf(nil, tenantSet("inet t set s", 1, addr("192.0.2.1", 1, 30)))},
					served: []string{`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 1030`},
				},
				{
					name:   "the set recreated with its element at 20, at least half of 30: restored, the series holds",
					reads:  map[string]result{"nftables": readOf(nil, tenantSet("inet t set s", 2, addr("192.0.2.1", 1, 20)))},
					served: []string{`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 1030`},
				},
				{
					name: "its growth counts; an IPv6 address beside it, new, starts at 0",
					reads: map[string]result{"nftables": readOf(nil, tenantSet("inet t set s", 2, addr("192.0.2.1", 1, 25)),
						collector.AddressSet{Tag: "rent", Direction: tag.Out, Family: family.IPv6, Where: "inet t set s6", Handle: 3, Elements: []collector.AddressCount{addr("2001:db8::1", 1, 80)}})},
					served: []string{
						`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 1035`,
						`ipacct_ip_bytes_total{direction="out",family="ipv6",ip="2001:db8::1",tag="rent"} 0`,
					},
				},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newExporter(slog.New(slog.DiscardHandler), 0, c.withNS, nil)
			now := time.Unix(1_800_000_000, 0)
			for _, s := range c.steps {
				now = now.Add(15 * time.Second)
				var collectors []Collector
				var results []result
				for _, src := range c.collectors {
					name := src.Name
					if src.NetNS != "" {
						name = src.NetNS + "/" + name
					}
					if r, ok := s.reads[name]; ok {
						collectors = append(collectors, src)
						results = append(results, r)
					}
				}
				agg := e.aggregate(collectors, results, now)
				var waiting []string
				for _, w := range agg.waiting {
					waiting = append(waiting, strings.TrimPrefix(w.NetNS+"/"+w.Name, "/"))
				}
				if !slices.Equal(waiting, s.waiting) {
					t.Errorf("%s: waiting for %q, want %q", s.name, waiting, s.waiting)
				}
				if got := servedCounters(e.emit(collectors, results, agg.sets)); !slices.Equal(got, s.served) {
					t.Errorf("%s: served\n\t%s\nwant\n\t%s", s.name, strings.Join(got, "\n\t"), strings.Join(s.served, "\n\t"))
				}
			}
		})
	}
}

// servedCounters are an answer's tag, per-address and overflow byte
// series, as "name{labels} value".
func servedCounters(ans *answer) []string {
	var lines []string
	for _, f := range ans.fams {
		if n := f.name(); n != tagBytesName && n != ipBytesName && n != ipOverflowBytesName {
			continue
		}
		mf := f.toDTO()
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			lines = append(lines, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue()))
		}
	}
	return lines
}

// TestJudge: what a counter read again adds to its series' carried count,
// for each case of docs/counters.md's table.
func TestJudge(t *testing.T) {
	c := func(bytes uint64) collector.Counter { return collector.Counter{Packets: bytes / 100, Bytes: bytes} }
	for _, j := range []struct {
		name        string
		last, cur   uint64
		lastH, curH uint64
		madeAtZero  bool
		carried     uint64
	}{
		{"grew: its growth counts", 1000, 1200, 7, 7, false, 0},
		{"grew, recreated: its growth counts", 1000, 1200, 7, 8, false, 0},
		{"went down, same kernel object: zeroed", 1000, 900, 7, 7, false, 1000},
		{"went down, recreated, below half: zeroed", 1000, 499, 7, 8, false, 1000},
		{"went down, recreated, to half: restored", 1000, 500, 7, 8, false, 500},
		{"went down, recreated, above half: restored", 1000, 900, 7, 8, false, 100},
		{"went down, no handles (iptables-legacy), below half: zeroed", 1000, 10, 0, 0, false, 1000},
		{"went down, no handles, to half or more: restored", 1000, 600, 0, 0, false, 400},
		{"recreated in the exporter's own table, more than before: zeroed", 1000, 5000, 7, 8, true, 1000},
		{"recreated in the exporter's own table, to more than half: zeroed", 1000, 900, 7, 8, true, 1000},
		{"went down in the exporter's own table, same object: zeroed", 1000, 900, 7, 7, true, 1000},
	} {
		got := judge(c(j.last), c(j.cur), j.lastH, j.curH, j.madeAtZero)
		if got.Bytes != j.carried {
			t.Errorf("%s: carries %d more bytes, want %d", j.name, got.Bytes, j.carried)
		}
	}
}
