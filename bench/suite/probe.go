package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/ipacct/ipacct_exporter/collector/nft"
)

// probe is one thing measured in each round.
type probe struct {
	name string
	run  func() error
	// samples are the durations of the measured runs.
	samples []time.Duration
}

// Probe names that are not tools.
const (
	probeScrape = "scrape"
	probeRead   = "collector read"
	probeRaw    = "raw dump"
	// probeRawIP is the bare dump of the rules of the ip table family
	// alone, which is all that iptables-save reads: the floor of its time.
	probeRawIP = "raw dump, rules of table family ip"
)

// measure runs the probe once and keeps its time, if it succeeds.
func (p *probe) measure() error {
	t := time.Now()
	if err := p.run(); err != nil {
		return err
	}
	p.samples = append(p.samples, time.Since(t))
	return nil
}

func (p *probe) median() time.Duration {
	s := slices.Clone(p.samples)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (p *probe) min() time.Duration { return slices.Min(p.samples) }

// probes are the case's probes, in the order of a round: the scrape, the
// collector's Read, the raw dumps, and the tools.
func (c *caseRun) probes() ([]*probe, error) {
	dumps := readDumps(c.tables, c.sets)
	probes := []*probe{
		{name: probeScrape, run: c.scrape},
		{name: probeRead, run: c.read},
		{name: probeRaw, run: func() error {
			_, err := rawDump(c.ns.Path(), nft.DefaultDumpBufferSize, dumps...)
			return err
		}},
	}
	if c.r.kind == "rules" {
		probes = append(probes, &probe{name: probeRawIP, run: func() error {
			_, err := rawDump(c.ns.Path(), nft.DefaultDumpBufferSize, ipRuleDump()...)
			return err
		}})
	}
	tools, err := toolProbes(c.ns.Path(), toolsFor(c.r.kind))
	return append(probes, tools...), err
}

// measure runs a warm-up round, not measured, then the case's rounds, and
// checks every scrape. It returns how many scrapes it made.
func (c *caseRun) measure(probes []*probe) (scrapes int, err error) {
	for _, p := range probes {
		if err := p.run(); err != nil {
			return 0, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if err := c.check(c.lastBody); err != nil {
		return 0, err
	}
	scrapes = 1
	r := c.r
	r.rounds = c.cfg.rounds
	if r.size >= 1000000 {
		// Each probe takes tens of seconds to minutes there.
		r.rounds = min(r.rounds, 3)
	}
	for round := range r.rounds {
		// Each round starts at another probe, so that none always runs
		// right after the same other.
		for i := range probes {
			p := probes[(round+i)%len(probes)]
			if err := p.measure(); err != nil {
				return scrapes, fmt.Errorf("%s: %w", p.name, err)
			}
			if p.name == probeScrape {
				scrapes++
				if err := c.check(c.lastBody); err != nil {
					return scrapes, err
				}
			}
		}
		logf("%s: round %d/%d: scrape %s", r.name(), round+1, r.rounds, probes[0].samples[len(probes[0].samples)-1].Round(time.Millisecond))
	}
	for _, p := range probes {
		r.probes[p.name] = p
	}
	return scrapes, nil
}
