package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

// errDumpInterrupted means the ruleset changed while the kernel dumped it;
// the reader starts again.
var errDumpInterrupted = nfdump.ErrInterrupted

// dumper runs the dumps of one read on one netlink socket (see package
// nfdump for why it receives into a buffer of its own).
type dumper struct {
	*nfdump.Conn
	// tables holds the handles of the tables that listTables listed.
	// A table made again gets a new handle, while the handles of the rules,
	// sets and objects in it start again from 1: only both together name
	// one kernel object across reads.
	tables map[tableKey]uint64
	// filter narrows the tables and sets read.
	filter collector.Filter
}

type tableKey struct {
	family uint8
	name   string
}

// objectHandle names a rule, set or object of a table across reads: its
// handle within the table, mixed with the table's. 0 when either is unknown.
func (d *dumper) objectHandle(family uint8, table []byte, handle uint64) uint64 {
	t := d.tables[tableKey{family, string(table)}]
	if t == 0 || handle == 0 {
		return 0
	}
	return t<<40 ^ handle
}

// nftaTableHandle is NFTA_TABLE_HANDLE, which x/sys/unix does not name.
const nftaTableHandle = 4

func newDumper(nsFd, bufSize int) (*dumper, error) {
	c, err := nfdump.Dial(nsFd, bufSize)
	if err != nil {
		return nil, err
	}
	return &dumper{Conn: c}, nil
}

// dumpers are the sockets of one read. Its dumps of several tables, or of
// several sets' elements, run on them at once, each socket in a thread of
// its own: the kernel walks a table or set for a dump in the thread that
// receives it, so two sockets on two cores take half the time of one.
type dumpers []*dumper

func openDumpers(nsFd, bufSize, n int, filter collector.Filter) (dumpers, error) {
	ds := make(dumpers, 0, n)
	for range n {
		d, err := newDumper(nsFd, bufSize)
		if err != nil {
			ds.Close()
			return nil, err
		}
		d.filter = filter
		ds = append(ds, d)
	}
	return ds, nil
}

func (ds dumpers) Close() {
	for _, d := range ds {
		d.Close()
	}
}

func (ds dumpers) SetDeadline(t time.Time) error {
	for _, d := range ds {
		if err := d.SetDeadline(t); err != nil {
			return err
		}
	}
	return nil
}

// run runs jobs 0 to n-1 on the sockets (see nfdump.Spread).
func (ds dumpers) run(n int, job func(d *dumper, i int) error) error {
	return nfdump.Spread(ds, n, job)
}

// sameRuleset tells whether every socket's replies were of one ruleset
// generation (each checks its own): otherwise the ruleset changed between
// two dumps of the read.
func (ds dumpers) sameRuleset() bool {
	first, seen := uint16(0), false
	for _, d := range ds {
		if gen, ok := d.Generation(); ok {
			if seen && gen != first {
				return false
			}
			first, seen = gen, true
		}
	}
	return true
}

// listTables lists the tables, and returns those that the filter reads,
// in the kernel's order. Their handles are kept for objectHandle, on every
// socket.
//
// A dump of all rules restarts its walk from the first rule of the first
// table for each chunk, so it costs the square of all the rules; one dump
// per table costs the sum of each table's square. With 10,000 rules in each
// of two tables (native nft and iptables-nft) that halves the kernel's
// work, and the two dumps run at once. One dump per chain would cut it
// further for many small chains, but costs a round trip per chain, and
// iptables-nft hosts have thousands.
func (ds dumpers) listTables() ([]tableKey, error) {
	var tables []tableKey
	handles := make(map[tableKey]uint64)
	err := ds[0].Dump(nfdump.Tables(), func(family uint8, b []byte) error {
		a := attrs{b: b}
		t := tableKey{family: family}
		var handle uint64
		for a.next() {
			switch a.typ {
			case unix.NFTA_TABLE_NAME:
				t.name = string(cstring(a.val))
			case nftaTableHandle:
				handle, _ = be64(a.val)
			}
		}
		handles[t] = handle
		if ds[0].filter.Table(tableFamily(t.family), t.name) {
			tables = append(tables, t) // not read: what matters on hosts with huge rulesets
		}
		return a.err
	})
	for _, d := range ds {
		d.tables = handles
	}
	return tables, err
}

// dumpRules dumps a table's rules.
func (d *dumper) dumpRules(t tableKey, fn func(family uint8, attrs []byte) error) error {
	err := d.Dump(nfdump.Rules(t.family, t.name), fn)
	if errors.Is(err, unix.ENOENT) {
		return errDumpInterrupted // the table went away since the list
	}
	return err
}

// attrs walks netlink attributes without copying or allocating.
type attrs struct {
	b   []byte
	typ uint16
	val []byte
	err error
}

func (a *attrs) next() bool {
	if len(a.b) < 4 {
		if len(a.b) != 0 {
			a.err = fmt.Errorf("%d stray bytes after the last attribute", len(a.b))
		}
		return false
	}
	l := int(binary.NativeEndian.Uint16(a.b[0:2]))
	if l < 4 || l > len(a.b) {
		a.err = fmt.Errorf("attribute of %d bytes in %d", l, len(a.b))
		return false
	}
	a.typ = binary.NativeEndian.Uint16(a.b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
	a.val = a.b[4:l]
	a.b = a.b[min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(a.b)):]
	return true
}

// cstring is a NUL-terminated attribute value without its NUL.
func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func be64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
