// Package datapath measures what accounting costs forwarded traffic: the
// packets per second a router forwards with no accounting, with the
// exporter's per-address sets, and with one iptables rule per address
// (the seeds' approach). It needs root, ip, nft and iptables; bench/suite
// prints its table, and so does
//
//	IPACCT_BENCH_DATAPATH=1 go test -run TestDataPathFull -v ./bench/datapath
//
// # Topology
//
// Each case gets a lane of three namespaces of its own, joined by veth
// pairs and set up once, before anything is measured:
//
//	sender    10.1.0.2/24 and the sources 10.1.0.10-17
//	  | veth
//	router    10.1.0.1/24 | 10.2.0.1/24, forwarding; the accounting is here
//	  | veth
//	receiver  10.2.0.2/24; drops at ingress (nft netdev), after its
//	          interface counted the packet, so no ICMP comes back
//
// The traffic is UDP with 64-byte payloads (92-byte packets) from the 8
// sources to the receiver, from a Go sender that sends batches of 64 with
// sendmmsg (golang.org/x/net/ipv4 WriteBatch) on 8 connected sockets, one
// a source, from one OS thread. What is counted is what the receiver's
// interface received (rx_packets), not what the sender sent. MAC
// addresses and neighbours are fixed, so no packet waits for ARP.
//
// # CPUs, and what limits the rate
//
// On a veth pair the receiving side's work normally runs as softirq on the
// sending CPU: sender, router and receiver would share one core, and the
// accounting would be a small slice of a long per-packet path. Instead
// the router's ingress veth gets GRO, which gives it a NAPI ring (TSO goes
// off on the sender's veth, without which a veth bypasses the ring for
// packets that GRO cannot merge), and threaded NAPI. The sender's thread
// is pinned to the first CPU, the router's NAPI thread to the second, both
// at nice -15. The router thread does the forwarding, the accounting and
// the receiver's ingress drop; the sender thread only sends. The sender
// outruns the router in every case: the router's 256-packet ring
// overflows (the progress lines say how often), so the rate is the router
// core's. Forwarded UDP is not merged by GRO (rx-udp-gro-forwarding is
// off), and the accounting counters, which count packets, confirm it.
//
// PacketsPerSecond is that rate per second of the router thread's CPU
// time: the packets the receiver got, divided by the CPU time the router
// thread used meanwhile (its schedstat; this kernel has no IRQ time
// accounting, so the time includes the softirq work the thread did, the
// receiver's among it). On a quiet machine that is what the wall clock
// shows. On a shared one the router thread gets a varying share of its
// core (other work, in other sessions' autogroups, which nice does not
// reach), and the wall-clock rate wanders by a factor of several while
// the rate per CPU second varies by some 5 to 10 percent. The progress lines
// give both, with the share of the window each thread ran. Each case's
// receiver-side work is the same, so it dilutes the ratios a little,
// towards 1.
//
// With one CPU nothing is pinned, and the rate is per second of wall
// time, of sender, router and receiver together.
//
// # Cases
//
//   - no accounting: the router has no ruleset at all.
//   - per-address sets: the rules.yaml entry
//     {tag: bench, networks: [10.0.0.0/8], hooks: [forward], size: 262144},
//     parsed, built and applied by the project's own code (config.Parse,
//     managed.Build, managed.Apply), so the data path is whatever the
//     managed table is (at this writing: a set per direction, split into
//     shards by the address's lowest bits). Direction both: each packet
//     updates its source in the out sets and its destination in the in
//     sets. Before any measurement, traffic through the router fills the
//     sets of each direction to N addresses (fillers from 10.64.0.0/10 and
//     the lane's own addresses), so the updates hit sets of that size; the
//     data path itself puts each address where the managed table keeps it.
//   - iptables rule per address: Debian's default iptables (iptables-nft),
//     a FORWARD jump to a chain of N rules `-s ADDR -m comment --comment
//     =TAG=`, the test's 8 sources last. A rule without a target does not
//     end the walk, so every packet is compared with all N rules wherever
//     its address is: last is the worst case and the usual one. It counts
//     one direction where the sets count two.
//
// After every measurement the accounting is checked against the
// receiver: the set counters of the sources and of the receiver's
// address, or the counters of the sources' rules, must have grown by
// exactly what the receiver got (plus what the receiver's queue dropped,
// if anything). A case whose counters do not add up fails the run.
//
// # Repeats
//
// Each round measures every case once, in an order rotated from round to
// round, so that drift on a shared machine hits every case alike. A
// measurement runs the sender for a warm-up (500 ms), then counts for
// Options.Duration. A case's result is the median of its repeats, with
// their spread.
//
// Defaults: Duration 3 s and Repeats 5; with the set-up, a run takes 2 to
// 3 minutes. The sizes: sets of 10,000 and 100,000 addresses, chains of
// 100 and 1,000 rules.
//
// Not measured: traffic spread over many of the sets' addresses. The 8
// test addresses stay in the CPU's caches, so a set's size hardly shows;
// a gateway whose traffic comes from thousands of addresses at once pays
// cache misses on top. Nor IPv6, nor a NIC (veth has no interrupt, DMA or
// real ring).
package datapath

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Options: zero values mean the defaults (Duration 3 s, Repeats 5, no log).
type Options struct {
	Duration time.Duration // per measurement
	Repeats  int           // measurements per case; the result is the median
	Log      io.Writer     // progress lines; nil for none
}

// Result is one case's measurement.
type Result struct {
	Case      string // "no accounting", "per-address sets", "iptables rule per address"
	Addresses int    // 0 for the baseline
	// PacketsPerSecond is the median of the forwarded packets, as the
	// receiver counts them, per second of the router thread's CPU time
	// (see the package doc).
	PacketsPerSecond float64
	Spread           float64 // (max-min)/median of the repeats, so noise is visible
}

// Case names.
const (
	caseBaseline = "no accounting"
	caseSets     = "per-address sets"
	caseRules    = "iptables rule per address"
)

const (
	defaultDuration = 3 * time.Second
	defaultRepeats  = 5
)

// plan is what Run measures; the smoke test shrinks it.
type plan struct {
	setSizes   []int
	ruleCounts []int
	warmup     time.Duration
	onEnv      func(*env) // for the test: sees the run's environment
}

var fullPlan = plan{
	setSizes:   []int{10000, 100000},
	ruleCounts: []int{100, 1000},
	warmup:     500 * time.Millisecond,
}

// Run measures, in this order, the baseline, the sets of 10k and 100k
// addresses, and the chains of 100 and 1,000 rules. It needs root, ip,
// nft and iptables. It removes every namespace it created, also when it
// fails.
func Run(opts Options) ([]Result, error) {
	return run(opts, fullPlan)
}

func run(opts Options, p plan) (results []Result, err error) {
	if opts.Duration <= 0 {
		opts.Duration = defaultDuration
	}
	if opts.Repeats <= 0 {
		opts.Repeats = defaultRepeats
	}
	log := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}

	cases := []*lane{{kind: caseBaseline}}
	for _, n := range p.setSizes {
		cases = append(cases, &lane{kind: caseSets, n: n})
	}
	for _, n := range p.ruleCounts {
		cases = append(cases, &lane{kind: caseRules, n: n})
	}

	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	if p.onEnv != nil {
		p.onEnv(env)
	}
	// Every namespace goes, whatever happens below, a panic included.
	defer func() {
		if cerr := env.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	log("datapath: sender on CPU %d, router on CPU %d (%s)", env.senderCPU, env.routerCPU, env.iptablesVersion)

	for i, c := range cases {
		start := time.Now()
		if err := env.setup(c, i); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name(), err)
		}
		log("datapath: set up %s in %.1fs", c.name(), time.Since(start).Seconds())
	}

	for r := 0; r < opts.Repeats; r++ {
		for k := range cases {
			c := cases[(k+r)%len(cases)]
			m, err := env.measure(c, p.warmup, opts.Duration)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name(), err)
			}
			c.pps = append(c.pps, m.pps)
			log("datapath: round %d/%d %-32s %8.0f pps of router CPU (%4.0f ns/packet); %8.0f pps of wall time, router busy %3.0f%%, sender busy %3.0f%%; ring full for %2.0f%% of sent; accounted %d of %d",
				r+1, opts.Repeats, c.name(), m.pps, m.routerNs, m.wallPPS, 100*m.routerBusy, 100*m.senderBusy, 100*m.dropShare, m.accounted, m.received)
		}
	}

	for _, c := range cases {
		med, spread := summarize(c.pps)
		results = append(results, Result{Case: c.kind, Addresses: c.n, PacketsPerSecond: med, Spread: spread})
	}
	return results, nil
}

func (c *lane) name() string {
	if c.kind == caseBaseline {
		return c.kind
	}
	return fmt.Sprintf("%s, %d", c.kind, c.n)
}

// summarize is the median of xs and their spread, (max-min)/median.
func summarize(xs []float64) (median, spread float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		median = s[len(s)/2]
	} else {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if median > 0 {
		spread = (s[len(s)-1] - s[0]) / median
	}
	return median, spread
}
