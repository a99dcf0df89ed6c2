package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/family"
)

// This file builds a month of ipacct_* samples whose true increments are
// known, and works out the report they should give without the report's
// code.

// testMaxGap is the --max-gap the month is read with (the default).
const testMaxGap = 24 * time.Hour

// genSample is a sample and the increment its scrape saw: 0 for the first
// sample of a series or the first after a gap longer than testMaxGap, the
// value after a reset, the difference otherwise. The generator keeps it
// while making up the values; the report has to find it again from them.
type genSample struct {
	t    int64 // milliseconds
	v    float64
	seen float64
}

type genSeries struct {
	name   string // metric name
	labels string // OpenMetrics labels, inside the braces
	tag    string
	ip     string
	dir    string
	bytes  bool
	s      []genSample
}

// gap is a time without samples; with reset, the counter restarted at zero
// in it (an address set element that timed out and came back).
type gap struct {
	from, to time.Time
	reset    bool
}

// spec describes a counter and its packets twin.
type spec struct {
	metric             string // ipacct_ip or ipacct_tag
	tag, ip, dir       string
	extraLabels        string
	start, end         time.Time
	step, jitter, skew time.Duration
	extra              []time.Time // samples at exactly these times too
	gaps               []gap
	resets             []time.Time
	bytesPerSecond     float64
	initial            float64 // the first sample's value
	seed               uint64
}

// generate makes the samples of the bytes and packets series of sp.
func generate(t *testing.T, sp spec) []*genSeries {
	t.Helper()
	rng := rand.New(rand.NewPCG(sp.seed, 42))
	var times []int64
	for at := sp.start.Add(sp.skew); at.Before(sp.end); at = at.Add(sp.step) {
		ts := at.Add(time.Duration(rng.Int64N(int64(2*sp.jitter)+1)) - sp.jitter).Truncate(time.Millisecond)
		inGap := false
		for _, g := range sp.gaps {
			inGap = inGap || (!ts.Before(g.from) && ts.Before(g.to))
		}
		if !inGap && !ts.Before(sp.start) && ts.Before(sp.end) {
			times = append(times, ts.UnixMilli())
		}
	}
	for _, x := range sp.extra {
		times = append(times, x.UnixMilli())
	}
	slices.Sort(times)
	times = slices.Compact(times)

	labels := fmt.Sprintf(`tag=%q`, sp.tag)
	if sp.ip != "" {
		labels += fmt.Sprintf(`,family=%q,ip=%q`, family.Of(netip.MustParseAddr(sp.ip)), sp.ip)
	}
	labels += fmt.Sprintf(`,direction=%q`, sp.dir)
	if sp.metric == "ipacct_tag" && !strings.Contains(sp.extraLabels, "table_family=") {
		labels += `,table_family="ip"`
	}
	labels += `,job="ipacct"` + sp.extraLabels
	b := &genSeries{name: sp.metric + "_bytes_total", labels: labels, tag: sp.tag, ip: sp.ip, dir: sp.dir, bytes: true}
	p := &genSeries{name: sp.metric + "_packets_total", labels: labels, tag: sp.tag, ip: sp.ip, dir: sp.dir}

	resetIn := func(a, z int64) (int64, bool) {
		for _, r := range sp.resets {
			if r.UnixMilli() > a && r.UnixMilli() <= z {
				return r.UnixMilli(), true
			}
		}
		for _, g := range sp.gaps {
			if g.reset && g.to.UnixMilli() > a && g.to.UnixMilli() <= z {
				return g.to.UnixMilli() - 60_000, true // back a minute before the scrape
			}
		}
		return 0, false
	}
	for j, ts := range times {
		if j == 0 {
			b.s = append(b.s, genSample{t: ts, v: sp.initial})
			p.s = append(p.s, genSample{t: ts, v: math.Round(sp.initial / 700)})
			continue
		}
		prevB, prevP := b.s[j-1], p.s[j-1]
		if ts-prevB.t > testMaxGap.Milliseconds() {
			// A new series as far as the report is concerned: whatever it
			// holds was counted before this scrape.
			b.s = append(b.s, genSample{t: ts, v: 321})
			p.s = append(p.s, genSample{t: ts, v: 3})
			continue
		}
		from := prevB.t
		r, reset := resetIn(prevB.t, ts)
		if reset {
			from = r // what came before the reset is lost
		}
		// Traffic varies over the day, at random, with a burst now and then.
		hour := float64(ts%86_400_000) / 3_600_000
		rate := sp.bytesPerSecond * (1.1 + math.Sin(2*math.Pi*hour/24)) * (0.5 + rng.Float64())
		if rng.IntN(50) == 0 {
			rate *= 15
		}
		inc := math.Round(rate * float64(ts-from) / 1000)
		pinc := math.Ceil(inc / 700)
		if reset {
			if inc >= prevB.v || pinc >= prevP.v {
				t.Fatalf("%s %s: the reset at %s would not show", b.name, labels, time.UnixMilli(r).UTC())
			}
			b.s = append(b.s, genSample{t: ts, v: inc, seen: inc})
			p.s = append(p.s, genSample{t: ts, v: pinc, seen: pinc})
			continue
		}
		b.s = append(b.s, genSample{t: ts, v: prevB.v + inc, seen: inc})
		p.s = append(p.s, genSample{t: ts, v: prevP.v + pinc, seen: pinc})
	}
	if len(times) == 0 {
		t.Fatalf("%s: no samples", labels)
	}
	return []*genSeries{b, p}
}

// testMonth is October 2026 in Berlin: 745 hours, as the clocks go back on
// the 25th.
func testMonth(t *testing.T) Period {
	loc := berlin(t)
	return Period{From: time.Date(2026, 10, 1, 0, 0, 0, 0, loc), To: time.Date(2026, 11, 1, 0, 0, 0, 0, loc)}
}

// monthData is the test month's data, and two days either side.
func monthData(t *testing.T) []*genSeries {
	p := testMonth(t)
	from, to := p.From.UTC(), p.To.UTC()
	start, end := from.Add(-48*time.Hour), to.Add(48*time.Hour)
	day := func(d, h, m int) time.Time { return time.Date(2026, 10, d, h, m, 0, 0, time.UTC) }
	gw1, gw2 := `,instance="gw1:10427"`, `,instance="gw2:10427",netns="tenant"`
	specs := []spec{
		// acme's addresses. 192.0.2.1, seen by two gateways (summed); gw1
		// scrapes at exactly the start and the end of the month too, and its
		// counters are reset on the 18th.
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.1", dir: "in", extraLabels: gw1, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, skew: 7 * time.Second, extra: []time.Time{from, to},
			resets: []time.Time{day(18, 3, 0)}, bytesPerSecond: 120e3, initial: 5e9, seed: 1},
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.1", dir: "out", extraLabels: gw1, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, skew: 11 * time.Second, extra: []time.Time{from, to},
			resets: []time.Time{day(18, 3, 0)}, bytesPerSecond: 30e3, initial: 1e9, seed: 2},
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.1", dir: "in", extraLabels: gw2, start: start, end: end,
			step: 45 * time.Second, jitter: 2 * time.Second, bytesPerSecond: 40e3, initial: 7e8, seed: 3},
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.1", dir: "out", extraLabels: gw2, start: start, end: end,
			step: 45 * time.Second, jitter: 2 * time.Second, bytesPerSecond: 10e3, initial: 2e8, seed: 4},
		// An address that goes away in the middle of the month.
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.2", dir: "in", extraLabels: gw1, start: start, end: day(20, 8, 0),
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 50e3, initial: 1e6, seed: 5},
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.2", dir: "out", extraLabels: gw1, start: start, end: day(20, 8, 0),
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 5e3, initial: 1e6, seed: 6},
		// One that appears in the middle of the month, with traffic it
		// counted before its first scrape.
		{metric: "ipacct_ip", tag: "acme", ip: "2001:db8::1", dir: "in", extraLabels: gw1, start: day(10, 12, 0), end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 80e3, initial: 987654, seed: 7},
		{metric: "ipacct_ip", tag: "acme", ip: "2001:db8::1", dir: "out", extraLabels: gw1, start: day(10, 12, 0), end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 8e3, initial: 98765, seed: 8},
		// One whose set element times out twice: for two days (longer than
		// --max-gap: a new series), and for three hours, coming back at zero.
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.3", dir: "in", extraLabels: gw1, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 20e3, initial: 4e6, seed: 9,
			gaps: []gap{{from: day(5, 0, 0), to: day(7, 0, 0)}, {from: day(12, 10, 0), to: day(12, 13, 0), reset: true}}},
		{metric: "ipacct_ip", tag: "acme", ip: "192.0.2.3", dir: "out", extraLabels: gw1, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 2e3, initial: 4e6, seed: 10,
			gaps: []gap{{from: day(5, 0, 0), to: day(7, 0, 0)}, {from: day(12, 10, 0), to: day(12, 13, 0), reset: true}}},
		// acme's tag counters: not used, acme has addresses.
		{metric: "ipacct_tag", tag: "acme", dir: "in", extraLabels: gw1, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 1e6, initial: 0, seed: 11},

		// beta has only tag counters. Its gateway was down across the start of
		// the month (the counters went on), and for five hours on the 22nd.
		{metric: "ipacct_tag", tag: "beta", dir: "in", extraLabels: gw1 + `,table_family="ip"`, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 60e3, initial: 3e9, seed: 12,
			gaps: []gap{{from: from.Add(-3 * time.Hour), to: from.Add(20 * time.Minute)}, {from: day(22, 2, 0), to: day(22, 7, 0)}}},
		{metric: "ipacct_tag", tag: "beta", dir: "in", extraLabels: gw1 + `,table_family="ip6"`, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 25e3, initial: 3e9, seed: 13,
			resets: []time.Time{day(8, 12, 0)}},
		// Down across the end of the month.
		{metric: "ipacct_tag", tag: "beta", dir: "out", extraLabels: gw1 + `,table_family="ip"`, start: start, end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 15e3, initial: 3e9, seed: 14,
			gaps: []gap{{from: to.Add(-10 * time.Minute), to: to.Add(2 * time.Hour)}}},
		// ssh: no direction.
		{metric: "ipacct_tag", tag: "ssh", dir: "none", extraLabels: gw1, start: start, end: end,
			step: 300 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 500, initial: 10, seed: 15},
		// Tags without samples in the month.
		{metric: "ipacct_ip", tag: "old", ip: "198.51.100.9", dir: "in", extraLabels: gw1, start: start, end: from.Add(-time.Hour),
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 1e3, initial: 0, seed: 16},
		{metric: "ipacct_tag", tag: "late", dir: "in", extraLabels: gw1, start: to.Add(time.Hour), end: end,
			step: 120 * time.Second, jitter: 5 * time.Second, bytesPerSecond: 1e3, initial: 0, seed: 17},
	}
	var all []*genSeries
	for _, sp := range specs {
		all = append(all, generate(t, sp)...)
	}
	return all
}

// openMetricsByDay writes the series as OpenMetrics text with timestamps,
// one document per UTC day: promtool reads its whole input once for every
// two-hour block it writes, so one file for the month takes minutes.
func openMetricsByDay(series []*genSeries) map[string]string {
	days := map[string]*strings.Builder{}
	for _, s := range series {
		for _, x := range s.s {
			d := time.UnixMilli(x.t).UTC().Format("2006-01-02")
			b := days[d]
			if b == nil {
				b = &strings.Builder{}
				days[d] = b
			}
			fmt.Fprintf(b, "%s{%s} %.0f %d.%03d\n", s.name, s.labels, x.v, x.t/1000, x.t%1000)
		}
	}
	out := map[string]string{}
	for d, b := range days {
		out[d] = b.String() + "# EOF\n"
	}
	return out
}

// truth is what the report should say, worked out from the generator's own
// increments: per tag, the totals, the addresses' totals and the 95th
// percentiles.
type truth struct {
	metric    string
	bytes     map[string]uint64            // direction
	packets   map[string]uint64            // direction
	addresses map[string]map[string]uint64 // ip → "in bytes", "out packets", …
	p95       map[string]float64           // direction
}

func monthTruth(series []*genSeries, p Period) map[string]*truth {
	from, to := p.From.UnixMilli(), p.To.UnixMilli()
	// A tag is reported from its addresses when it has address samples in
	// the period.
	metric := map[string]string{}
	for _, s := range series {
		in := slices.ContainsFunc(s.s, func(x genSample) bool { return x.t > from && x.t <= to })
		if !in {
			continue
		}
		if s.ip != "" {
			metric[s.tag] = MetricAddresses
		} else if metric[s.tag] == "" {
			metric[s.tag] = MetricTag
		}
	}
	out := map[string]*truth{}
	bytesSeries := map[string][]*genSeries{} // tag and direction
	for _, s := range series {
		src := metric[s.tag]
		if src == "" || (src == MetricAddresses) != (s.ip != "") {
			continue
		}
		tr := out[s.tag]
		if tr == nil {
			tr = &truth{metric: src, bytes: map[string]uint64{}, packets: map[string]uint64{},
				addresses: map[string]map[string]uint64{}, p95: map[string]float64{}}
			out[s.tag] = tr
		}
		var sum float64
		for _, x := range s.s {
			if x.t > from && x.t <= to {
				sum += x.seen
			}
		}
		what := " packets"
		if s.bytes {
			what = " bytes"
			tr.bytes[s.dir] += uint64(sum)
			bytesSeries[s.tag+" "+s.dir] = append(bytesSeries[s.tag+" "+s.dir], s)
		} else {
			tr.packets[s.dir] += uint64(sum)
		}
		if s.ip != "" {
			if tr.addresses[s.ip] == nil {
				tr.addresses[s.ip] = map[string]uint64{}
			}
			tr.addresses[s.ip][s.dir+what] += uint64(sum)
		}
	}
	for k, ss := range bytesSeries {
		tag, dir, _ := strings.Cut(k, " ")
		out[tag].p95[dir] = p95ByCumulative(ss, from, to)
	}
	return out
}

// p95ByCumulative works out the 95th percentile of the 5-minute rates of the
// series' sum another way than the report: from each series' cumulative
// seen traffic, interpolated linearly between its samples, evaluated at the
// bucket edges.
func p95ByCumulative(series []*genSeries, from, to int64) float64 {
	const width = int64(300_000)
	type curve struct{ t, cum []float64 }
	curves := make([]curve, len(series))
	for i, s := range series {
		var c float64
		for _, x := range s.s {
			c += x.seen
			curves[i].t = append(curves[i].t, float64(x.t))
			curves[i].cum = append(curves[i].cum, c)
		}
	}
	at := func(c curve, t float64) float64 {
		j := sort.SearchFloat64s(c.t, t) // first sample at or after t
		switch {
		case j == 0:
			return 0
		case j == len(c.t):
			return c.cum[len(c.cum)-1]
		}
		return c.cum[j-1] + (c.cum[j]-c.cum[j-1])*(t-c.t[j-1])/(c.t[j]-c.t[j-1])
	}
	var rates []float64
	for start := from; start < to; start += width {
		end := min(start+width, to)
		var bytes float64
		for _, c := range curves {
			bytes += at(c, float64(end)) - at(c, float64(start))
		}
		rates = append(rates, bytes*8/(float64(end-start)/1000))
	}
	sort.Float64s(rates)
	return rates[int(math.Ceil(0.95*float64(len(rates))))-1]
}
