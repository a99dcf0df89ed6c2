package exporter

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// counted is a rule as a collector reads it: its identity, handle and bytes
// (packets are bytes/100 in these tests).
type counted struct {
	id     string
	handle uint64
	bytes  uint64
}

func svc(rules ...counted) collector.Reading {
	var r collector.Reading
	for _, c := range rules {
		r.Records = append(r.Records, collector.Record{Tag: "svc", Direction: tag.Out, Family: family.IP,
			Packets: c.bytes / 100, Bytes: c.bytes, ID: collector.ID(c.id), Handle: c.handle})
	}
	return r
}

// promIncrease is what Prometheus adds between two samples of a counter:
// the difference, or the whole new value after a decrease (a reset).
func promIncrease(prev, cur float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// served returns the value of the named family's series with the label
// value, and whether it is there.
func served(t *testing.T, e *Exporter, name, label, value string) (float64, bool) {
	t.Helper()
	fams, err := e.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return find(fams, name, label, value)
}

func find(fams []*dto.MetricFamily, name, label, value string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestTrackedTagSeries walks one summed tag through what operators do to
// its rules between two scrapes, and checks each step the way Prometheus
// reads it: the increase must equal the traffic the kernel counted.
func TestTrackedTagSeries(t *testing.T) {
	steps := []struct {
		name    string
		reading collector.Reading
		traffic float64 // counted by the kernel since the last scrape
		kernel  bool    // the served value equals the kernel's sum
	}{
		{"start", svc(counted{"a", 1, 5000}, counted{"b", 2, 1000}), 0, true},
		{"both count", svc(counted{"a", 1, 5100}, counted{"b", 2, 1100}), 200, true},
		{"b deleted after counting 50 more", svc(counted{"a", 1, 5200}), 100, false},
		{"b added again, new", svc(counted{"a", 1, 5200}, counted{"b", 3, 70}), 70, false},
		{"a zeroed in place (nft reset, iptables -Z)", svc(counted{"a", 1, 30}, counted{"b", 3, 70}), 30, false},
		{"a replaced by an identical rule, fresh", svc(counted{"a", 4, 10}, counted{"b", 3, 80}), 20, false},
		{"a and b restored from a save taken before the last scrape", svc(counted{"a", 5, 10}, counted{"b", 6, 75}), 0, false},
		{"both count again", svc(counted{"a", 5, 40}, counted{"b", 6, 95}), 50, false},
		{"whole ruleset loaded fresh", svc(counted{"a", 7, 3}, counted{"b", 8, 4}), 7, false},
		{"a new rule beside them", svc(counted{"a", 7, 3}, counted{"b", 8, 4}, counted{"c", 9, 500}), 500, false},
	}
	b := &fakeBackend{}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	var prev float64
	for i, s := range steps {
		b.reading = s.reading
		v, ok := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
		if !ok {
			t.Fatalf("%s: series not served", s.name)
		}
		if i > 0 {
			if got := promIncrease(prev, v); got != s.traffic {
				t.Errorf("%s: Prometheus' increase %v (from %v to %v), want the traffic, %v", s.name, got, prev, v, s.traffic)
			}
		}
		var kernel float64
		for _, r := range s.reading.Records {
			kernel += float64(r.Bytes)
		}
		if s.kernel && v != kernel {
			t.Errorf("%s: served %v, want the kernel's sum %v", s.name, v, kernel)
		}
		prev = v
	}
}

// TestWithheldUntilEveryCollectorRead: a collector that fails at start would
// leave its part out of a sum, which would then jump when it reads: the
// namespace's series wait for every collector's first read.
func TestWithheldUntilEveryCollectorRead(t *testing.T) {
	nft := &fakeBackend{reading: svc(counted{"a", 1, 411200})}
	legacy := &fakeBackend{reading: svc(counted{"b", 0, 205600}), err: errors.New("xtables lock held")}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: nft}, Collector{Name: "iptables", Collector: legacy})
	if v, ok := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); ok {
		t.Errorf("served %v before iptables' first read", v)
	}
	legacy.err = nil
	if v, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); v != 616800 {
		t.Errorf("served %v once both read, want 616800", v)
	}
	legacy.err = errors.New("xtables lock held")
	if v, ok := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); ok {
		t.Errorf("served %v while iptables fails", v)
	}
	legacy.err = nil
	legacy.reading = svc(counted{"b", 0, 205700})
	if v, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); v != 616900 {
		t.Errorf("served %v after recovery, want 616900", v)
	}
}

// TestNewSeriesStartAtZero: a series that appears while the exporter runs
// has counted its first burst already, and Prometheus never counts a
// series' first sample: it is served at 0 once, with its created time.
func TestNewSeriesStartAtZero(t *testing.T) {
	set := func(elems ...collector.AddressCount) collector.Reading {
		return collector.Reading{Sets: []collector.AddressSet{{Tag: "rent", Direction: tag.Out, Family: family.IPv4,
			Where: "inet ipacct set rent", Handle: 1, Elements: elems}}}
	}
	b := &fakeBackend{reading: set(addr("192.0.2.1", 1, 100))}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	clock := time.Unix(1_800_000_000, 0)
	e.now = func() time.Time { return clock }
	fams, _ := e.Gather()
	if v, _ := find(fams, "ipacct_ip_bytes_total", "ip", "192.0.2.1"); v != 100 {
		t.Errorf("an address there at start: %v, want its kernel value 100", v)
	}
	if ct := createdOf(fams, "ipacct_ip_bytes_total", "192.0.2.1"); ct != nil {
		t.Errorf("an address there at start has created %v, want none: its value is history", ct.AsTime())
	}
	first := clock
	clock = clock.Add(time.Second)
	b.reading = set(addr("192.0.2.1", 1, 100), addr("192.0.2.2", 3, 2093))
	fams, _ = e.Gather()
	if v, ok := find(fams, "ipacct_ip_bytes_total", "ip", "192.0.2.2"); !ok || v != 0 {
		t.Errorf("a new address first: %v %v, want 0", v, ok)
	}
	if ct := createdOf(fams, "ipacct_ip_bytes_total", "192.0.2.2"); ct == nil || !ct.AsTime().Equal(first) {
		t.Errorf("a new address's created time %v, want the last read without it, %v", ct, first)
	}
	clock = clock.Add(time.Second)
	if v, _ := served(t, e, "ipacct_ip_bytes_total", "ip", "192.0.2.2"); v != 2093 {
		t.Errorf("a new address second: %v, want 2093", v)
	}
}

func createdOf(fams []*dto.MetricFamily, name, ip string) interface{ AsTime() time.Time } {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "ip" && l.GetValue() == ip && m.GetCounter().GetCreatedTimestamp() != nil {
					return m.GetCounter().GetCreatedTimestamp()
				}
			}
		}
	}
	return nil
}

// TestAddressInTwoSets: one address in two sets of a tag; one element
// times out. The series keeps what it had counted.
func TestAddressInTwoSets(t *testing.T) {
	sets := func(a, b uint64) collector.Reading {
		var r collector.Reading
		for i, v := range []uint64{a, b} {
			s := collector.AddressSet{Tag: "rent", Direction: tag.Out, Family: family.IPv4, Where: []string{"inet t set a", "inet t set b"}[i], Handle: uint64(i + 1)}
			if v > 0 {
				s.Elements = []collector.AddressCount{addr("192.0.2.1", v/100, v)}
			}
			r.Sets = append(r.Sets, s)
		}
		return r
	}
	b := &fakeBackend{reading: sets(1000, 3000)}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	v0, _ := served(t, e, "ipacct_ip_bytes_total", "ip", "192.0.2.1")
	b.reading = sets(1200, 0) // b's element timed out
	v1, _ := served(t, e, "ipacct_ip_bytes_total", "ip", "192.0.2.1")
	if got := promIncrease(v0, v1); got != 200 {
		t.Errorf("increase %v across a timed-out element (%v → %v), want 200", got, v0, v1)
	}
}

func TestIdenticalRulesToldApartByOrder(t *testing.T) {
	b := &fakeBackend{reading: svc(counted{"x", 0, 100}, counted{"x", 0, 200})}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "iptables", Collector: b})
	v0, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	b.reading = svc(counted{"x", 0, 150}, counted{"x", 0, 260})
	v1, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	if v0 != 300 || v1 != 410 {
		t.Errorf("served %v then %v, want 300 then 410", v0, v1)
	}
}

func TestTrackApplyKeepsStateWhileACollectorFails(t *testing.T) {
	tr := &track{shown: true}
	a, b := collector.ID("a"), collector.ID("b")
	tr.observe(a, 1, false, 0, collector.Counter{Bytes: 100})
	tr.observe(b, 0, false, 1, collector.Counter{Bytes: 50})
	tr.apply(func(int) bool { return false })
	// Collector 1 fails: a's growth waits, the series is withheld.
	tr.observe(a, 1, false, 0, collector.Counter{Bytes: 130})
	tr.apply(func(src int) bool { return src == 1 })
	if !tr.withheld || tr.value().Bytes != 150 {
		t.Errorf("while a collector fails: withheld %v, value %d; want withheld, 150", tr.withheld, tr.value().Bytes)
	}
	tr.observe(a, 1, false, 0, collector.Counter{Bytes: 140})
	tr.observe(b, 0, false, 1, collector.Counter{Bytes: 60})
	tr.apply(func(int) bool { return false })
	if tr.withheld || tr.value().Bytes != 200 {
		t.Errorf("after recovery: withheld %v, value %d; want 200", tr.withheld, tr.value().Bytes)
	}
	_ = netip.Addr{}
}

// TestStateAcrossRestart: a restart after a partial change must not drop
// the served value, and with the state file it does not.
func TestStateAcrossRestart(t *testing.T) {
	path := t.TempDir() + "/state.json"
	b := &fakeBackend{reading: svc(counted{"a", 1, 5000}, counted{"b", 2, 1000})}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	b.reading = svc(counted{"a", 1, 5100}) // b deleted
	before, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	if err := e.SaveState(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v; want 0600", err, fi.Mode())
	}

	// While the exporter is down, a counts 40 more.
	b.reading = svc(counted{"a", 1, 5140})
	without := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	if v, _ := served(t, without, "ipacct_tag_bytes_total", "tag", "svc"); promIncrease(before, v) == 40 {
		t.Errorf("without the state file the restart should look like a reset; got %v after %v", v, before)
	}
	restarted := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	if n, err := restarted.LoadState(path); err != nil || n != 1 {
		t.Fatalf("LoadState: %d series, %v; want 1", n, err)
	}
	if v, _ := served(t, restarted, "ipacct_tag_bytes_total", "tag", "svc"); promIncrease(before, v) != 40 {
		t.Errorf("with the state file: %v after %v, want an increase of 40", v, before)
	}
}

// TestStateFileVersion1: a state file of version 1, which named a part by
// the text its ID now hashes, loads, and its series carry on.
func TestStateFileVersion1(t *testing.T) {
	path := t.TempDir() + "/state.json"
	v1 := `{"version": 1, "saved": "2026-01-01T00:00:00Z", "series": [{"kind": "tag", "tag": "svc", "direction": "out", "family": "ip",
		"carried_packets": 1, "carried_bytes": 100, "parts": [{"id": "a", "source": "nftables", "handle": 1, "packets": 51, "bytes": 5100}]}]}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: &fakeBackend{reading: svc(counted{"a", 1, 5140})}})
	if n, err := e.LoadState(path); n != 1 || err != nil {
		t.Fatalf("LoadState: %d series, %v", n, err)
	}
	if v, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); v != 100+5140 {
		t.Errorf("served %v, want what was carried and the part's value, %v", v, 100+5140)
	}
}

// TestStateFileVersion2: a state file of version 2 as the exporter wrote
// it before the tag series' family label became table_family and the
// per-address counters got theirs loads, and its series carry on under the
// new labels: the file holds the families, not the label names.
func TestStateFileVersion2(t *testing.T) {
	path := t.TempDir() + "/state.json"
	id := func(s string) string { return strconv.FormatUint(collector.ID(s), 16) }
	v2 := `{"version":2,"saved":"2026-11-30T12:00:00Z","series":[
		{"kind":"tag","tag":"svc","direction":"out","family":"ip","carried_packets":1,"carried_bytes":100,
			"parts":[{"id":"` + id("a") + `","source":"nftables","handle":1,"packets":51,"bytes":5100}]},
		{"kind":"overflow","tag":"rent","direction":"out","family":"ipv4","carried_packets":0,"carried_bytes":10,
			"parts":[{"id":"` + id("inet t set s") + `","source":"nftables","packets":0,"bytes":50}]},
		{"kind":"ip","tag":"rent","direction":"out","ip":"192.0.2.1","carried_packets":0,"carried_bytes":7,"created_ms":1764500000000,
			"parts":[{"id":"` + id("inet t set s") + `","source":"nftables","handle":1,"packets":0,"bytes":20}]}]}`
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	r := svc(counted{"a", 1, 5140})
	r.Sets = []collector.AddressSet{{Tag: "rent", Direction: tag.Out, Family: family.IPv4, Where: "inet t set s", Handle: 1,
		Elements: []collector.AddressCount{addr("192.0.2.1", 0, 30)}, Overflow: &collector.Counter{Bytes: 60}}}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: &fakeBackend{reading: r}})
	if n, err := e.LoadState(path); n != 3 || err != nil {
		t.Fatalf("LoadState: %d series, %v; want 3", n, err)
	}
	ans, err := e.answer()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ipacct_ip_bytes_total{direction="out",family="ipv4",ip="192.0.2.1",tag="rent"} 37`,
		`ipacct_ip_overflow_bytes_total{direction="out",family="ipv4",tag="rent"} 70`,
		`ipacct_tag_bytes_total{direction="out",table_family="ip",tag="svc"} 5240`,
	}
	if got := servedCounters(ans); !slices.Equal(got, want) {
		t.Errorf("served\n\t%s\nwant what was carried and the parts' values\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestStateFileCorrupt(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":      "{not json",
		"version":      `{"version": 99, "series": []}`,
		"kind":         `{"version": 1, "series": [{"kind": "x", "tag": "a", "direction": "in", "parts": [{"id": "i", "source": "nftables"}]}]}`,
		"bad ip":       `{"version": 1, "series": [{"kind": "ip", "ip": "999.1.1.1", "tag": "a", "direction": "in", "parts": [{"id": "i", "source": "nftables"}]}]}`,
		"unknown item": `{"version": 1, "series": [], "extra": 1}`,
		"bad id":       `{"version": 2, "series": [{"kind": "tag", "tag": "a", "direction": "in", "parts": [{"id": "inet t c", "source": "nftables"}]}]}`,
	} {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: &fakeBackend{reading: svc(counted{"a", 1, 10})}})
		_, err := e.LoadState(path)
		if err == nil || !strings.Contains(err.Error(), "moved to "+path+".corrupt") {
			t.Errorf("%s: %v, want an error saying the file was moved aside", name, err)
		}
		if _, serr := os.Stat(path + ".corrupt"); serr != nil {
			t.Errorf("%s: not moved aside: %v", name, serr)
		}
		if v, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); v != 10 {
			t.Errorf("%s: served %v after a corrupt state file, want a fresh start (10)", name, v)
		}
	}
	if n, err := New(slog.New(slog.DiscardHandler), 0).LoadState(dir + "/missing"); n != 0 || err != nil {
		t.Errorf("a missing state file: %d, %v; want a fresh start without error", n, err)
	}
}

// countingBackend counts its reads, each taking a while, as the kernel's do.
type countingBackend struct {
	reads atomic.Int64
}

func (c *countingBackend) Read(context.Context) (collector.Reading, error) {
	n := c.reads.Add(1)
	time.Sleep(20 * time.Millisecond)
	return svc(counted{"a", 1, uint64(100 * n)}), nil
}

// TestConcurrentScrapesShareReads: fifty scrapers at once cost about one
// read of the kernel each round, not fifty, and each gets a whole answer.
func TestConcurrentScrapesShareReads(t *testing.T) {
	b := &countingBackend{}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	const scrapers, rounds = 50, 4
	for range rounds {
		var wg sync.WaitGroup
		for range scrapers {
			wg.Go(func() {
				fams, err := e.Gather()
				if _, ok := find(fams, "ipacct_tag_bytes_total", "tag", "svc"); err != nil || !ok {
					t.Errorf("an answer without the series: %v", err)
				}
			})
		}
		wg.Wait()
	}
	if n := b.reads.Load(); n > 3*rounds {
		t.Errorf("%d scrapes made %d reads of the kernel, want at most %d", scrapers*rounds, n, 3*rounds)
	}
}

// TestPanicFailsOneScrape: a bug that panics while a scrape is built (here
// a label value that is not UTF-8) fails that scrape, and the next one
// answers.
func TestPanicFailsOneScrape(t *testing.T) {
	bad := "tenant\xff"
	list := []Collector{{Name: "nftables", NetNS: bad, Collector: &fakeBackend{reading: svc(counted{"a", 1, 10})}}}
	e := NewForNamespaces(slog.New(slog.DiscardHandler), 0, func() []Collector { return list })
	if _, err := e.Gather(); err == nil {
		t.Error("a scrape with an invalid label value did not fail")
	}
	list[0].NetNS = "tenant"
	if v, ok := served(t, e, "ipacct_tag_bytes_total", "tag", "svc"); !ok || v != 10 {
		t.Errorf("the next scrape: %v %v, want the series at 10", v, ok)
	}
}

// TestManagedCountersRecreated: in the exporter's own table every counter is
// made at zero, so one recreated (a repair after the table was deleted)
// counts all its value, even more than the old one had.
func TestManagedCountersRecreated(t *testing.T) {
	managed := func(handle, bytes uint64) collector.Reading {
		r := svc(counted{"inet ipacct web_in #1", handle, bytes})
		r.Records[0].MadeAtZero = true
		return r
	}
	b := &fakeBackend{reading: managed(1<<40|2, 3436)}
	e := New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: b})
	v0, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	b.reading = managed(2<<40|2, 6872) // the table made again, twice the traffic
	v1, _ := served(t, e, "ipacct_tag_bytes_total", "tag", "svc")
	if got := promIncrease(v0, v1); got != 6872 {
		t.Errorf("increase %v across the repair (%v → %v), want 6872", got, v0, v1)
	}
}
