package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ipacct/ipacct_exporter/bench"
	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/nft"
)

// caseResult is what one case measured.
type caseResult struct {
	kind   string // rules, addresses or sharded
	size   int
	tags   int // of a rules case
	probes map[string]*probe
	// peakRSS and rss are the exporter's VmHWM and VmRSS after the
	// measured scrapes, in bytes; bodyBytes the size of one answer,
	// uncompressed, and wireBytes as sent.
	peakRSS, rss         uint64
	bodyBytes, wireBytes int
	load                 time.Duration
	rounds               int // measured, after the warm-up
	steady               *steadyResult
	err                  error
}

// name names the case in the log.
func (r *caseResult) name() string {
	if r.kind == "rules" {
		return fmt.Sprintf("rules=%d,tags=%d", r.size, r.tags)
	}
	return fmt.Sprintf("%s=%d", r.kind, r.size)
}

// caseRun is a case being measured: its namespace, its exporter, and what
// every scrape must show.
type caseRun struct {
	cfg config
	r   *caseResult
	ns  *namespace
	ex  *exporterProc
	// wants are lines of every scrape; perAddress, for a set case, how
	// many per-address byte series it has.
	wants      []string
	perAddress int
	// shards is how many sets hold the addresses; tables and sets are
	// what the collector dumps (see caseTables).
	shards       int
	tables, sets []setRef
	// lastBody is the answer of the last scrape, as sent.
	lastBody []byte
	// collector reads the case in the suite's process, read after read, as
	// the exporter's own does: it keeps what a read takes from the last.
	collector *nft.Collector
}

func runCase(cfg config, kind string, n, tags int) *caseResult {
	r := &caseResult{kind: kind, size: n, tags: tags, probes: map[string]*probe{}}
	logf("%s: setting up", r.name())
	if err := measureCase(cfg, r); err != nil {
		logf("%s: %v", r.name(), err)
		r.err = err
	}
	return r
}

// measureCase sets the case up in a namespace of its own, starts the
// exporter on it, measures the probes, and, on the case the flags name,
// the exporter's memory over many scrapes.
func measureCase(cfg config, r *caseResult) error {
	ns, err := newNamespace()
	if err != nil {
		return err
	}
	defer ns.Close()
	c := &caseRun{cfg: cfg, r: r, ns: ns}
	if err := c.load(); err != nil {
		return err
	}
	if c.ex, err = startExporter(cfg, ns, c.collectors()); err != nil {
		return err
	}
	defer c.ex.stop()
	probes, err := c.probes()
	if err != nil {
		return err
	}
	scrapes, err := c.measure(probes)
	if err != nil {
		return err
	}
	if r.peakRSS, r.rss, err = procMemory(c.ex.cmd.Process.Pid); err != nil {
		return err
	}
	// The steady check runs on the layout the exporter's own rules make.
	layout := r.kind == "sharded" || r.kind == "addresses" && bench.SetShards(r.size) == 1
	if layout && r.size == cfg.steadyAddresses && cfg.steadyScrapes > 0 {
		if r.steady, err = steadyState(c.ex, scrapes, cfg.steadyScrapes, c.check); err != nil {
			return fmt.Errorf("steady state: %w", err)
		}
	}
	return nil
}

// load puts the case's rules or sets into its namespace, and waits until
// the kernel has settled a set.
func (c *caseRun) load() error {
	r := c.r
	run := bench.RunIn(c.ns.Path())
	t0 := time.Now()
	var err error
	c.shards = 1
	if r.kind == "rules" {
		err = bench.LoadRules(run, r.size, r.tags)
		c.wants = bench.RuleSeries(r.size, r.tags)
	} else {
		if r.kind == "sharded" {
			c.shards = bench.SetShards(r.size)
		}
		err = bench.LoadSet(run, c.cfg.tmp, r.size, c.shards)
		c.wants = []string{bench.SetSeries(r.size)}
		c.perAddress = r.size
	}
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	c.tables, c.sets = caseTables(r.kind, c.shards)
	r.load = time.Since(t0)
	logf("%s: loaded in %s", r.name(), r.load.Round(time.Millisecond))
	if r.kind == "rules" {
		return nil
	}
	// The kernel grows a large set's hash table in the background after
	// the load; a dump during a resize misses and repeats elements.
	// Measure once it has settled.
	return settle(c.ns.Path(), r.size, c.shards)
}

// collectors are the exporter's collector flags: a set case has no
// iptables rules to read.
func (c *caseRun) collectors() []string {
	if c.r.kind == "rules" {
		return []string{"--collector.nftables", "--collector.iptables"}
	}
	return []string{"--collector.nftables", "--no-collector.iptables"}
}

// read is the probe of the collector's Read, which must see the case.
func (c *caseRun) read() error {
	r := c.r
	if c.collector == nil {
		c.collector = nft.New(nft.Options{NetNS: c.ns.Path()})
	}
	rd, err := c.collector.Read(context.Background())
	switch {
	case err != nil:
		return err
	case r.kind == "rules" && len(rd.Records) != r.size:
		return fmt.Errorf("collector read %d records, want %d", len(rd.Records), r.size)
	case r.kind != "rules" && (len(rd.Sets) != c.shards || elements(rd.Sets) != r.size):
		return fmt.Errorf("collector read %d sets of %d addresses, want %d of %d", len(rd.Sets), elements(rd.Sets), c.shards, r.size)
	}
	return nil
}

// scrape is the probe of a scrape; it keeps the answer for check.
func (c *caseRun) scrape() error {
	body, err := c.ex.scrape()
	c.lastBody = body
	return err
}

// check tells whether an answer holds the case's series, and keeps its
// size.
func (c *caseRun) check(body []byte) error {
	text, err := decode(body)
	if err != nil {
		return err
	}
	c.r.bodyBytes, c.r.wireBytes = len(text), len(body)
	for _, w := range c.wants {
		if !bytes.Contains(text, []byte(w)) {
			return fmt.Errorf("the scrape lacks %s; it has %q (answer of %d bytes)\nexporter log:\n%.2000s", w, seriesLike(text, w), len(text), c.ex.log())
		}
	}
	if c.perAddress > 0 {
		if got := bytes.Count(text, []byte("\n"+bench.SetSample)); got != c.perAddress {
			return fmt.Errorf("the scrape has %d per-address byte series, want %d", got, c.perAddress)
		}
	}
	return nil
}

// seriesLike are the lines of text of the series of the line want, to say
// what value a scrape has instead.
func seriesLike(text []byte, want string) []string {
	series, _, _ := strings.Cut(want, "}")
	var like []string
	for line := range bytes.Lines(text) {
		if bytes.HasPrefix(line, []byte(series)) {
			like = append(like, strings.TrimSpace(string(line)))
		}
	}
	return like
}

// settle waits until two collector reads in a row see the n elements of
// the bench sets, for at most a minute or ten reads, whichever is longer.
func settle(nsPath string, n, shards int) error {
	start := time.Now()
	deadline := start.Add(time.Minute)
	good := 0
	for {
		t := time.Now()
		rd, err := nft.New(nft.Options{NetNS: nsPath}).Read(context.Background())
		if d := t.Add(10 * time.Since(t)); d.After(deadline) {
			deadline = d
		}
		got := -1
		if err == nil && len(rd.Sets) == shards {
			got = elements(rd.Sets)
		}
		if got == n {
			good++
		} else {
			good = 0
		}
		if good == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the set did not settle at %d elements: the last read saw %d (%v)", n, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// elements counts the addresses of all sets.
func elements(sets []collector.AddressSet) int {
	n := 0
	for _, s := range sets {
		n += len(s.Elements)
	}
	return n
}
