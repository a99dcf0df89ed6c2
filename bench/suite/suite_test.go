package main

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/bench"
	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

func TestParseSizes(t *testing.T) {
	for in, want := range map[string][]int{
		"1k,20k": {1000, 20000}, " 7 , 1M,": {7, 1000000}, "2m": {2000000}, "": nil,
	} {
		if got, err := parseSizes(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("parseSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1k", "k", "1G"} {
		if got, err := parseSizes(in); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", in, got)
		}
	}
}

func TestMedian(t *testing.T) {
	p := &probe{samples: []time.Duration{5, 1, 3}}
	if p.median() != 3 || p.min() != 1 {
		t.Errorf("median %v, min %v of %v", p.median(), p.min(), p.samples)
	}
	p.samples = append(p.samples, 9)
	if p.median() != 4 {
		t.Errorf("median %v of %v, want 4", p.median(), p.samples)
	}
}

// TestReadDumps checks that the raw dump of a case asks for what the
// collector's read does: the rules of both tables of a rules case, and
// the elements of every shard of a set case.
func TestReadDumps(t *testing.T) {
	count := func(stages [][]nfdump.Request, typ uint16) int {
		n := 0
		for _, s := range stages {
			for _, r := range s {
				if r.Type == typ {
					n++
				}
			}
		}
		return n
	}
	rules := readDumps(caseTables("rules", 1))
	if n := count(rules, unix.NFT_MSG_GETRULE); n != 2 {
		t.Errorf("a rules case dumps the rules of %d tables, want 2", n)
	}
	if n := count(rules, unix.NFT_MSG_GETSETELEM); n != 0 {
		t.Errorf("a rules case dumps the elements of %d sets, want 0", n)
	}
	shards := bench.SetShards(100000)
	sets := readDumps(caseTables("sharded", shards))
	if n := count(sets, unix.NFT_MSG_GETSETELEM); n != shards || shards != 8 {
		t.Errorf("100k addresses in %d sets: the elements of %d sets dumped", shards, n)
	}
	for _, typ := range []uint16{unix.NFT_MSG_GETOBJ, unix.NFT_MSG_GETSET} {
		if count(rules, typ) != 1 || count(sets, typ) != 1 {
			t.Errorf("message type %d: not dumped once in each case", typ)
		}
	}
}

// TestRawDump counts the messages of the raw dump on rules the bench
// loads: one a rule.
func TestRawDump(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-nft-restore")
	ns := netnstest.New(t)
	if err := bench.LoadRules(bench.RunIn(ns.Path()), 100, 10); err != nil {
		t.Fatal(err)
	}
	if n, err := rawDump(ns.Path(), nft.DefaultDumpBufferSize, readDumps(caseTables("rules", 1))...); err != nil || n != 100 {
		t.Errorf("raw dump of 100 rules: %d messages, %v", n, err)
	}
	if n, err := rawDump(ns.Path(), nft.DefaultDumpBufferSize, ipRuleDump()...); err != nil || n != 50 {
		t.Errorf("raw dump of the 50 rules of table family ip: %d messages, %v", n, err)
	}
}
