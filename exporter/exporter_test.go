package exporter

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// fakeBackend returns what the test sets, as a kernel would.
type fakeBackend struct {
	reading collector.Reading
	err     error
	panics  bool
}

func (f *fakeBackend) Read(context.Context) (collector.Reading, error) {
	if f.panics {
		panic("odd kernel data")
	}
	return f.reading, f.err
}

func rec(t string, d tag.Direction, fam family.Table, desc string, p, b uint64) collector.Record {
	return collector.Record{Tag: t, Direction: d, Family: fam, Description: desc, Packets: p, Bytes: b}
}

// tagMetrics are the metric names whose values do not depend on time.
var tagMetrics = []string{"ipacct_tag_bytes_total", "ipacct_tag_packets_total", "ipacct_tag_rules", "ipacct_tag_info", "ipacct_invalid_tag_comments", "ipacct_collector_success"}

func TestSumsAndDescriptions(t *testing.T) {
	nft := &fakeBackend{reading: collector.Reading{Records: []collector.Record{
		rec("web4", tag.In, family.IP, "", 1, 100),
		rec("web4", tag.In, family.IP, "Combined web traffic", 2, 200),
		rec("web4", tag.Out, family.IP, "dummy", 3, 300),
		rec("web4", tag.In, family.Inet, "later", 4, 400),
		rec("ssh", tag.None, family.IP6, "", 5, 500),
	}}}
	legacy := &fakeBackend{reading: collector.Reading{
		Records: []collector.Record{rec("web4", tag.In, family.IP, "from legacy", 10, 1000)},
		Invalid: []collector.InvalidComment{{Where: "ip filter INPUT", Comment: "=bad tag=", Err: errors.New("bad")}},
	}}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: nft}, Collector{Name: "iptables", Collector: legacy})
	want := `
# HELP ipacct_collector_success 1 if the collector read its counters in this scrape, 0 if it failed.
# TYPE ipacct_collector_success gauge
ipacct_collector_success{collector="iptables"} 1
ipacct_collector_success{collector="nftables"} 1
# HELP ipacct_invalid_tag_comments Rules, counters and sets whose comment opens a tag token that does not parse, or that cannot count (a tagged rule without a counter, a tagged set that is not of addresses); they are not counted.
# TYPE ipacct_invalid_tag_comments gauge
ipacct_invalid_tag_comments{collector="iptables"} 1
ipacct_invalid_tag_comments{collector="nftables"} 0
# HELP ipacct_tag_bytes_total Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family.
# TYPE ipacct_tag_bytes_total counter
ipacct_tag_bytes_total{direction="in",table_family="inet",tag="web4"} 400
ipacct_tag_bytes_total{direction="in",table_family="ip",tag="web4"} 1300
ipacct_tag_bytes_total{direction="none",table_family="ip6",tag="ssh"} 500
ipacct_tag_bytes_total{direction="out",table_family="ip",tag="web4"} 300
# HELP ipacct_tag_info The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order, else the tag. Always 1.
# TYPE ipacct_tag_info gauge
ipacct_tag_info{description="ssh",tag="ssh"} 1
ipacct_tag_info{description="Combined web traffic",tag="web4"} 1
# HELP ipacct_tag_packets_total Packets counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family.
# TYPE ipacct_tag_packets_total counter
ipacct_tag_packets_total{direction="in",table_family="inet",tag="web4"} 4
ipacct_tag_packets_total{direction="in",table_family="ip",tag="web4"} 13
ipacct_tag_packets_total{direction="none",table_family="ip6",tag="ssh"} 5
ipacct_tag_packets_total{direction="out",table_family="ip",tag="web4"} 3
# HELP ipacct_tag_rules Number of kernel counters (rules and named counters) summed into the tag's series.
# TYPE ipacct_tag_rules gauge
ipacct_tag_rules{direction="in",table_family="inet",tag="web4"} 1
ipacct_tag_rules{direction="in",table_family="ip",tag="web4"} 3
ipacct_tag_rules{direction="none",table_family="ip6",tag="ssh"} 1
ipacct_tag_rules{direction="out",table_family="ip",tag="web4"} 1
`
	if err := testutil.GatherAndCompare(e, strings.NewReader(want), tagMetrics...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(e); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestFailingCollectorLeavesOthersAndWithholdsItsSums(t *testing.T) {
	nft := &fakeBackend{reading: collector.Reading{Records: []collector.Record{
		rec("web4", tag.In, family.IP, "d", 1, 100),
		rec("dns", tag.None, family.IP, "d", 7, 700),
	}}}
	legacy := &fakeBackend{reading: collector.Reading{Records: []collector.Record{rec("web4", tag.In, family.IP, "d", 10, 1000)}}}
	var logs bytes.Buffer
	e := New(slog.New(slog.NewTextHandler(&logs, nil)), 0, Collector{Name: "nftables", Collector: nft}, Collector{Name: "iptables", Collector: legacy})
	reg := e
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}

	// iptables fails: web4 in ip would drop from 1100 to 100, a fake reset,
	// so it is left out; dns, which iptables never fed, stays.
	legacy.err = errors.New("iptables-legacy: permission denied")
	want := `
# HELP ipacct_collector_success 1 if the collector read its counters in this scrape, 0 if it failed.
# TYPE ipacct_collector_success gauge
ipacct_collector_success{collector="iptables"} 0
ipacct_collector_success{collector="nftables"} 1
# HELP ipacct_tag_bytes_total Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family.
# TYPE ipacct_tag_bytes_total counter
ipacct_tag_bytes_total{direction="none",table_family="ip",tag="dns"} 700
`
	for i := 0; i < 3; i++ {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ipacct_collector_success", "ipacct_tag_bytes_total"); err != nil {
			t.Error(err)
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("a repeated failure should log once at error level, got %d:\n%s", n, logs.String())
	}

	// A panicking collector is a failure, not a crash.
	legacy.err, legacy.panics = nil, true
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ipacct_collector_success", "ipacct_tag_bytes_total"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(logs.String(), "odd kernel data") {
		t.Errorf("panic not logged:\n%s", logs.String())
	}

	legacy.panics = false
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ipacct_tag_bytes_total Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family.
# TYPE ipacct_tag_bytes_total counter
ipacct_tag_bytes_total{direction="in",table_family="ip",tag="web4"} 1100
ipacct_tag_bytes_total{direction="none",table_family="ip",tag="dns"} 700
`), "ipacct_tag_bytes_total"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(logs.String(), "collector recovered") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestInvalidCommentsLoggedOnce(t *testing.T) {
	b := &fakeBackend{reading: collector.Reading{Invalid: []collector.InvalidComment{
		{Where: "ip filter INPUT", Comment: "=a b=", Err: errors.New("bad")},
		{Where: "ip filter OUTPUT", Comment: "=a b=", Err: errors.New("bad")},
		{Where: "ip filter OUTPUT", Comment: "=c!=", Err: errors.New("bad")},
	}}}
	var logs bytes.Buffer
	e := New(slog.New(slog.NewTextHandler(&logs, nil)), 0, Collector{Name: "nftables", Collector: b})
	for i := 0; i < 3; i++ {
		if got := gauge(t, e, "ipacct_invalid_tag_comments"); got != 3 {
			t.Errorf("invalid comments gauge %v, want 3 (rules)", got)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("want one warning per distinct comment (2), got %d:\n%s", n, logs.String())
	}
}

// gauge gathers g and returns the value of the family's one series.
func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.Metric) == 1 {
			return f.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no family %s with one series", name)
	return 0
}
