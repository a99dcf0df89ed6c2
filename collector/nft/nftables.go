// Package nftables reads tagged counters from the kernel's nftables ruleset
// over netlink: every table of every family, so also the tables that
// iptables-nft writes. A rule is read when its comment carries a tag; the
// comment is the rule's user data (native nft rules) or an xt "comment"
// match (iptables-nft's -m comment). Named counter objects whose comment
// carries a tag are read too.
//
// It decodes only what it needs (table, chain, comment, the first counter)
// from one dump of all rules, instead of decoding every expression with
// google/nftables and asking chain by chain: that is what makes a scrape of
// 10,000 rules cost about what the kernel's own dump costs. Nothing here
// writes to the kernel: no rule, counter or object is changed or reset.
package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

// DefaultDumpBufferSize is the receive buffer for dumps. The kernel makes
// dump chunks as large as the receive buffer, up to 32 KiB; the extra room
// is for a chunk's overhead.
const DefaultDumpBufferSize = 64 << 10

// dumpRetries bounds how often a read starts again when the ruleset changes
// under it.
const dumpRetries = 3

// Options configures a Collector.
type Options struct {
	// NetNS is the path of the network namespace to read; empty for the
	// exporter's own.
	NetNS string
	// Filter narrows the tables and chains read.
	Filter collector.Filter
	// DumpBufferSize is the receive buffer in bytes; 0 means
	// DefaultDumpBufferSize. A smaller buffer makes smaller dump chunks:
	// benchmarks use it to show the difference.
	DumpBufferSize int
}

// Collector reads nftables counters. It keeps no socket between reads;
// it keeps how many records each table and elements each set had in the
// last read, and the contents of the tables' tagged rules.
type Collector struct {
	opts       Options
	tableSizes lastSizes[tableKey]
	setSizes   lastSizes[setKey]
	memos      ruleMemos
}

// New returns a Collector.
func New(opts Options) *Collector {
	if opts.DumpBufferSize <= 0 {
		opts.DumpBufferSize = DefaultDumpBufferSize
	}
	return &Collector{opts: opts}
}

// Read dumps the rules of all tables in the kernel's order, then the named
// counters, then the tagged sets of addresses and their elements. When the ruleset changes during the dump the kernel says so, and
// Read starts again, so that no scrape mixes two rulesets.
func (b *Collector) Read(ctx context.Context) (collector.Reading, error) {
	for attempt := 1; ; attempt++ {
		r, err := b.read(ctx, attempt == dumpRetries)
		if errors.Is(err, errDumpInterrupted) && attempt < dumpRetries {
			continue
		}
		return r, err
	}
}

func (b *Collector) read(ctx context.Context, lastTry bool) (collector.Reading, error) {
	var reading collector.Reading
	ns, err := netns.Open(b.opts.NetNS)
	if err != nil {
		return reading, err
	}
	defer ns.Close()
	ds, err := openDumpers(ns.Fd(), b.opts.DumpBufferSize, nfdump.Sockets(), b.opts.Filter)
	if err != nil {
		return reading, explain("opening a netlink socket", err)
	}
	defer ds.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := ds.SetDeadline(dl); err != nil {
			return reading, err
		}
	}

	overflow, err := b.readRules(ds, &reading)
	if err != nil {
		return reading, explain("dumping rules", err)
	}

	d := ds[0]
	err = d.Dump(nfdump.Counters(), func(family uint8, attrs []byte) error {
		o, err := parseCounterObject(attrs)
		if err != nil {
			return fmt.Errorf("decoding a named counter: %w", err)
		}
		fam := tableFamily(family)
		if o.typ != unix.NFT_OBJECT_COUNTER || !o.hasComment || !b.opts.Filter.Table(fam, string(o.table)) {
			return nil
		}
		where := string(fam) + " " + string(o.table) + " counter " + string(o.name)
		reading.Add(where, collector.ParseComment(string(o.comment)), collector.Record{Family: fam, Packets: o.packets, Bytes: o.bytes,
			ID: collector.ID(where), Handle: d.objectHandle(family, o.table, o.handle), MadeAtZero: b.opts.Filter.IsManaged(fam, string(o.table))})
		return nil
	})
	if err != nil {
		return reading, explain("dumping named counters", err)
	}
	if err := b.readSets(ds, &reading, overflow, lastTry); err != nil {
		return reading, err
	}
	if !ds.sameRuleset() {
		return reading, errDumpInterrupted
	}
	return reading, nil
}

// readRules dumps the rules of every table the filter reads, several at
// once, into the reading in the kernel's order of tables, and returns the
// counters of the sets' overflow rules.
func (b *Collector) readRules(ds dumpers, reading *collector.Reading) (map[setKey]*collector.Counter, error) {
	tables, err := ds.listTables()
	if err != nil {
		return nil, err
	}
	// Each table's records go into its part of one slice, as large as the
	// table had in the last read: when none has changed its count, the
	// parts make the reading's records as they are.
	parts := make([]collector.Reading, len(tables))
	want := make([]int, len(tables))
	for i, t := range tables {
		want[i] = b.tableSizes.get(t)
	}
	all := make([]collector.Record, 0, sum(want))
	for i, off := 0, 0; i < len(tables); i++ {
		parts[i].Records = all[off : off : off+want[i]]
		off += want[i]
	}
	overflows := make([]map[setKey]*collector.Counter, len(tables))
	memos := make([]*ruleMemo, len(tables))
	for i, t := range tables {
		memos[i] = b.memos.take(t)
	}
	err = ds.run(len(tables), func(d *dumper, i int) error {
		overflows[i] = map[setKey]*collector.Counter{}
		rr := &ruleReader{reading: &parts[i], loc: location{filter: b.opts.Filter}, d: d, overflow: overflows[i], memo: memos[i]}
		return d.dumpRules(tables[i], rr.rule)
	})
	if err != nil {
		return nil, err
	}
	b.memos.put(tables, memos)
	sizes := make(map[tableKey]int, len(tables))
	got := make([]int, len(tables))
	for i, p := range parts {
		got[i] = len(p.Records)
		sizes[tables[i]] = got[i]
	}
	b.tableSizes.set(sizes)
	if slices.Equal(got, want) {
		reading.Records = all[:sum(got)]
	} else {
		reading.Records = make([]collector.Record, 0, sum(got))
		for _, p := range parts {
			reading.Records = append(reading.Records, p.Records...)
		}
	}
	overflow := map[setKey]*collector.Counter{}
	for i, p := range parts {
		reading.Invalid = append(reading.Invalid, p.Invalid...)
		for k, c := range overflows[i] {
			overflow[k] = c // a table's sets' overflow rules are in the table
		}
	}
	return overflow, nil
}

func sum(n []int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// ruleReader turns the messages of a rule dump into a reading's records,
// invalid comments and overflow counters.
type ruleReader struct {
	reading  *collector.Reading
	loc      location
	d        *dumper
	overflow map[setKey]*collector.Counter
	memo     *ruleMemo
}

func (rr *ruleReader) rule(family uint8, attrs []byte) error {
	r, err := parseRule(attrs)
	if err != nil {
		return fmt.Errorf("decoding a rule: %w", err)
	}
	if !r.hasComment {
		return nil
	}
	where, fam, read := rr.loc.of(family, r.table, r.chain)
	if !read {
		return nil
	}
	if set, ok := bytes.CutPrefix(r.comment, []byte(overflowCommentStart)); ok && r.hasCounter {
		k := setKey{family, string(r.table), string(set)}
		c := rr.overflow[k]
		if c == nil {
			c = &collector.Counter{}
			rr.overflow[k] = c
		}
		c.Packets += r.packets
		c.Bytes += r.bytes
		return nil
	}
	// The comment's one copy out of the receive buffer: the tag and the
	// description are parts of it.
	c := collector.ParseComment(string(r.comment))
	if !r.hasCounter && c.Err == nil {
		// A tagged rule without a counter counts nothing: say so, so
		// that the operator adds "counter".
		rr.reading.Invalid = append(rr.reading.Invalid, collector.InvalidComment{
			Where: where, Comment: c.Text, Err: errors.New("the rule has no counter expression"),
		})
		return nil
	}
	rec := collector.Record{Family: fam, Packets: r.packets, Bytes: r.bytes,
		Handle: rr.d.objectHandle(family, r.table, r.handle), MadeAtZero: rr.loc.managed}
	// Only a tagged rule is a Record: a comment without a tag, or with a
	// broken one, needs no identity, nor a place in the memo.
	if c.Err == nil {
		rec.ID = rr.loc.id(rr.memo.content(&r))
	}
	rr.reading.Add(where, c, rec)
	return nil
}

// location names where a rule is, converting the table and chain names to
// strings, and deciding whether the filter reads the chain, once per chain
// rather than once per rule.
type location struct {
	filter       collector.Filter
	family       uint8
	table, chain string
	fam          family.Table
	where        string
	read         bool
	managed      bool // the exporter's own table
	// idWhere is the hash of "where #", which a rule's ID goes on from.
	idWhere uint64
}

func (l *location) of(family uint8, table, chain []byte) (where string, fam family.Table, read bool) {
	if l.where == "" || family != l.family || string(table) != l.table || string(chain) != l.chain {
		l.family, l.table, l.chain = family, string(table), string(chain)
		l.fam = tableFamily(family)
		l.where = string(l.fam) + " " + l.table + " " + l.chain
		l.read = l.filter.Chain(l.fam, l.table, l.chain)
		l.managed = l.filter.IsManaged(l.fam, l.table)
		l.idWhere = collector.ID(l.where + " #")
	}
	return l.where, l.fam, l.read
}

// id is the Record.ID of the rule of content (contentOf's hash) at the
// location: ID("where #content-in-hex"), the string it hashes never made.
func (l *location) id(content uint64) uint64 {
	var hex [16]byte
	return collector.HashMore(l.idWhere, strconv.AppendUint(hex[:0], content, 16))
}

// tableFamily is the table family of its number in a netlink message; a
// number netfilter does not define (none does today) keeps it in the name.
func tableFamily(n uint8) family.Table {
	if t, ok := family.FromNFT(nftables.TableFamily(n)); ok {
		return t
	}
	return family.Table(fmt.Sprintf("family%d", n))
}

// explain turns the kernel's refusal into the sentence an operator needs.
func explain(what string, err error) error {
	return fmt.Errorf("%s: %w", what, netns.Explain(err, "reading nftables"))
}
