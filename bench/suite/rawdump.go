package main

import (
	"fmt"
	"sync/atomic"

	"github.com/ipacct/ipacct_exporter/bench"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

// rawDump makes the dumps of stages, one stage after the other and the
// dumps of a stage at once, on as many sockets as the nftables collector
// opens (nfdump.Sockets) and into buffers of its size, and decodes
// nothing: it counts the reply messages. Its time is what the kernel and
// the copy to user space cost, the floor of a scrape. Comparing it with
// the collector's Read gives the decode share.
func rawDump(nsPath string, bufSize int, stages ...[]nfdump.Request) (msgs int, err error) {
	ns, err := netns.Open(nsPath)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	var conns []*nfdump.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range nfdump.Sockets() {
		c, err := nfdump.Dial(ns.Fd(), bufSize)
		if err != nil {
			return 0, fmt.Errorf("netlink socket: %w", err)
		}
		conns = append(conns, c)
	}
	var n atomic.Int64
	count := func(uint8, []byte) error { n.Add(1); return nil }
	for _, reqs := range stages {
		err := nfdump.Spread(conns, len(reqs), func(c *nfdump.Conn, i int) error {
			return c.Dump(reqs[i], count)
		})
		if err != nil {
			return int(n.Load()), err
		}
	}
	return int(n.Load()), nil
}

// readDumps are the dumps of the collector's Read of a case, in its
// stages: the rules of each of the tables (one dump per table, at once),
// the named counters, the sets, and the elements of each of sets (at
// once). The collector lists the tables first; the suite knows them.
func readDumps(tables, sets []setRef) [][]nfdump.Request {
	var rules, elements []nfdump.Request
	for _, t := range tables {
		rules = append(rules, nfdump.Rules(t.nfproto(), t.table))
	}
	for _, s := range sets {
		elements = append(elements, nfdump.Elements(s.nfproto(), s.table, s.name))
	}
	return [][]nfdump.Request{rules, {nfdump.Counters()}, {nfdump.Sets()}, elements}
}

// ipRuleDump is the bare dump of all rules of the ip table family, which
// is all that iptables-nft-save asks the kernel for: the floor of its time.
func ipRuleDump() [][]nfdump.Request {
	return [][]nfdump.Request{{nfdump.Rules(uint8(family.IP.NFT()), "")}}
}

// setRef names a table, or a set for an element dump.
type setRef struct {
	family      family.Table
	table, name string
}

func (r setRef) nfproto() uint8 { return uint8(r.family.NFT()) }

// caseTables are the tables whose rules the collector dumps in a case of
// kind, and sets the sets whose elements it dumps.
func caseTables(kind string, shards int) (tables, sets []setRef) {
	tables = []setRef{{bench.SetFamily, bench.SetTable, ""}}
	if kind == "rules" {
		return append(tables, setRef{family.IP, "filter", ""}), nil
	}
	for _, name := range bench.SetNames(shards) {
		sets = append(sets, setRef{bench.SetFamily, bench.SetTable, name})
	}
	return tables, sets
}
