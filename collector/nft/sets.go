package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/nfdump"
	"github.com/ipacct/ipacct_exporter/tag"
)

// Attribute numbers that x/sys/unix does not name.
const (
	nftaSetHandle        = 16 // NFTA_SET_HANDLE
	nftaSetExpr          = 17 // NFTA_SET_EXPR: the set's one per-element expression
	nftaSetExpressions   = 18 // NFTA_SET_EXPRESSIONS: its list of them
	nftaSetElemExpr      = 7  // NFTA_SET_ELEM_EXPR
	nftaSetElemExprs     = 11 // NFTA_SET_ELEM_EXPRESSIONS: two or more expressions
	udataSetComment      = 7  // NFTNL_UDATA_SET_COMMENT in a set's user data
	nftTypeIPv4Addr      = 7  // nft's datatype ipv4_addr
	nftTypeIPv6Addr      = 8  // nft's datatype ipv6_addr
	setElemIntervalEnd   = 1  // NFT_SET_ELEM_INTERVAL_END
	setElemCatchall      = 2  // NFT_SET_ELEM_CATCHALL
	overflowCommentStart = "ipacct-overflow @"
)

// OverflowComment is the comment of a rule that counts the packets a
// per-address set could not take because it was full: it names the set,
// which must be in the rule's table. The rule sits right after the one
// that adds to the set, which stops the chain when the add succeeds.
func OverflowComment(set string) string { return overflowCommentStart + set }

// set is what the exporter needs of one NFT_MSG_NEWSET message.
type set struct {
	table, name []byte
	flags       uint32
	keyType     uint32
	keyLen      uint32
	size        uint32
	comment     []byte
	hasComment  bool
	handle      uint64
}

func parseSet(b []byte) (set, error) {
	var s set
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_SET_TABLE:
			s.table = cstring(a.val)
		case unix.NFTA_SET_NAME:
			s.name = cstring(a.val)
		case unix.NFTA_SET_FLAGS:
			s.flags = be32(a.val)
		case unix.NFTA_SET_KEY_TYPE:
			s.keyType = be32(a.val)
		case unix.NFTA_SET_KEY_LEN:
			s.keyLen = be32(a.val)
		case unix.NFTA_SET_DESC:
			d := attrs{b: a.val}
			for d.next() {
				if d.typ == unix.NFTA_SET_DESC_SIZE {
					s.size = be32(d.val)
				}
			}
			if d.err != nil {
				return s, d.err
			}
		case nftaSetHandle:
			s.handle, _ = be64(a.val)
		case unix.NFTA_SET_USERDATA:
			s.comment, s.hasComment = commentFromUserData(a.val, udataSetComment)
		}
	}
	return s, a.err
}

func be32(b []byte) uint32 {
	if len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// addressFamily says which address family a set's keys are, or why the set
// cannot count per address.
func (s set) addressFamily() (family.Address, error) {
	switch {
	case s.flags&unix.NFT_SET_MAP != 0 || s.flags&unix.NFT_SET_OBJECT != 0:
		return "", errors.New("the set is a map; per-address accounting needs a set of addresses")
	case s.flags&unix.NFT_SET_INTERVAL != 0:
		return "", errors.New("the set has flag interval: its elements are ranges, not addresses")
	case s.keyType == nftTypeIPv4Addr && s.keyLen == 4:
		return family.IPv4, nil
	case s.keyType == nftTypeIPv6Addr && s.keyLen == 16:
		return family.IPv6, nil
	}
	return "", errors.New("the set's type is not ipv4_addr or ipv6_addr")
}

// element is one set element: its key and its counter, if it has one.
type element struct {
	key            []byte
	packets, bytes uint64
	hasCounter     bool
	skip           bool // an interval end or the catch-all element
}

// parseElements calls fn for each element of an NFT_MSG_NEWSETELEM message.
// An element's counter is its NFTA_SET_ELEM_EXPR when it has one stateful
// expression, or one of its NFTA_SET_ELEM_EXPRESSIONS when it has several
// (a counter beside a quota or a limit, say).
func parseElements(b []byte, fn func(element)) error {
	a := attrs{b: b}
	for a.next() {
		if a.typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		list := attrs{b: a.val}
		for list.next() {
			if list.typ != unix.NFTA_LIST_ELEM {
				continue
			}
			e, err := parseElement(list.val)
			if err != nil {
				return err
			}
			fn(e)
		}
		if list.err != nil {
			return list.err
		}
	}
	return a.err
}

func parseElement(b []byte) (element, error) {
	var e element
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_SET_ELEM_KEY:
			k := attrs{b: a.val}
			for k.next() {
				if k.typ == unix.NFTA_DATA_VALUE {
					e.key = k.val
				}
			}
			if k.err != nil {
				return e, k.err
			}
		case unix.NFTA_SET_ELEM_FLAGS:
			e.skip = be32(a.val)&(setElemIntervalEnd|setElemCatchall) != 0
		case nftaSetElemExpr:
			if err := e.counterFrom(a.val); err != nil {
				return e, err
			}
		case nftaSetElemExprs:
			list := attrs{b: a.val}
			for list.next() {
				if list.typ == unix.NFTA_LIST_ELEM {
					if err := e.counterFrom(list.val); err != nil {
						return e, err
					}
				}
			}
			if list.err != nil {
				return e, list.err
			}
		}
	}
	return e, a.err
}

// counterFrom takes the counter out of an expression (NFTA_EXPR_NAME and
// NFTA_EXPR_DATA), if it is one and the element has none yet.
func (e *element) counterFrom(b []byte) error {
	name, data, err := parseExpr(b)
	if err != nil {
		return err
	}
	if string(name) == "counter" && !e.hasCounter {
		e.packets, e.bytes, e.hasCounter = parseCounter(data)
	}
	return nil
}

// setKey identifies a set, or the set an overflow rule names.
type setKey struct {
	family      uint8
	table, name string
}

// readSets reads every set whose comment carries a tag, with its elements'
// counters, into r, the elements of several sets at once. overflow holds
// the overflow rules' counters by set.
//
// The kernel walks a set's hash table again for each dump chunk, skipping
// what it sent before. When the table is resized between two chunks (it
// grows and shrinks on its own as addresses come and go) the order
// changes, and the dump repeats some elements and misses others, without
// the flag that marks an interrupted dump. A repeated address is the sign:
// the read starts again, and on its last try keeps one copy of each.
func (b *Collector) readSets(ds dumpers, r *collector.Reading, overflow map[setKey]*collector.Counter, lastTry bool) error {
	// What is kept of a set past its dump: the parsed set's slices point
	// into the receive buffer, which the next chunk overwrites.
	type tagged struct {
		key            setKey
		where, comment string
		size, keyLen   uint32
		tag            tag.Tag
		addrFamily     family.Address
		handle         uint64
		managed        bool
	}
	var sets []tagged
	d := ds[0]
	err := d.Dump(nfdump.Sets(), func(nfFamily uint8, attrs []byte) error {
		s, err := parseSet(attrs)
		if err != nil {
			return fmt.Errorf("decoding a set: %w", err)
		}
		fam := tableFamily(nfFamily)
		if !s.hasComment || s.flags&unix.NFT_SET_ANONYMOUS != 0 || !d.filter.Table(fam, string(s.table)) {
			return nil
		}
		t, err := tag.Parse(string(s.comment))
		if errors.Is(err, tag.ErrNoTag) {
			return nil
		}
		where := string(fam) + " " + string(s.table) + " set " + string(s.name)
		if err == nil {
			var addrFamily family.Address
			if addrFamily, err = s.addressFamily(); err == nil {
				key := setKey{nfFamily, string(s.table), string(s.name)}
				sets = append(sets, tagged{key, where, string(s.comment), s.size, s.keyLen, t, addrFamily, d.objectHandle(nfFamily, s.table, s.handle),
					d.filter.IsManaged(fam, string(s.table))})
				return nil
			}
		}
		r.Invalid = append(r.Invalid, collector.InvalidComment{Where: where, Comment: string(s.comment), Err: err})
		return nil
	})
	if err != nil {
		return explain("dumping sets", err)
	}

	type dumped struct {
		as        collector.AddressSet
		uncounted int
		gone      bool // deleted since the set dump
	}
	results := make([]dumped, len(sets))
	err = ds.run(len(sets), func(d *dumper, i int) error {
		ts, res := sets[i], &results[i]
		keyLen := int(ts.keyLen)
		res.as.Elements = make([]collector.AddressCount, 0, b.setSizes.get(ts.key))
		err := d.Dump(nfdump.Elements(ts.key.family, ts.key.table, ts.key.name), func(_ uint8, attrs []byte) error {
			return parseElements(attrs, func(e element) {
				switch {
				case e.skip:
				case len(e.key) != keyLen:
				case !e.hasCounter:
					res.uncounted++
				default:
					addr, _ := netip.AddrFromSlice(e.key)
					res.as.Elements = append(res.as.Elements, collector.AddressCount{Addr: addr, Packets: e.packets, Bytes: e.bytes})
				}
			})
		})
		if errors.Is(err, unix.ENOENT) {
			res.gone = true
			return nil
		}
		if err != nil {
			return explain("dumping the elements of "+ts.where, err)
		}
		return nil
	})
	if err != nil {
		return err
	}

	var seen map[netip.Addr]struct{}
	sizes := make(map[setKey]int, len(sets))
	for i, ts := range sets {
		res := results[i]
		if res.gone {
			continue
		}
		as := res.as
		as.Tag, as.Direction, as.Description = ts.tag.Name, ts.tag.Direction, ts.tag.Description
		as.Family, as.Where, as.Handle, as.Capacity, as.Overflow = ts.addrFamily, ts.where, ts.handle, ts.size, overflow[ts.key]
		as.MadeAtZero = ts.managed
		if seen == nil {
			seen = make(map[netip.Addr]struct{}, len(as.Elements))
		}
		if repeated := dedupe(&as, seen); repeated && !lastTry {
			return errDumpInterrupted
		}
		sizes[ts.key] = len(as.Elements)
		if res.uncounted > 0 {
			r.Invalid = append(r.Invalid, collector.InvalidComment{Where: ts.where, Comment: ts.comment,
				Err: fmt.Errorf("%d elements have no counter and are not counted: give the set the counter flag, or add \"counter\" to the statement that adds them", res.uncounted)})
			if len(as.Elements) == 0 {
				continue // nothing in it counts: not a per-address set
			}
		}
		r.Sets = append(r.Sets, as)
	}
	b.setSizes.set(sizes)
	return nil
}

// lastSizes are how many records each table, or elements each set, had
// in the last read: a read makes its slices that large at once, instead of
// growing them by doubling.
type lastSizes[K comparable] struct {
	mu sync.Mutex
	m  map[K]int
}

func (s *lastSizes[K]) get(k K) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

func (s *lastSizes[K]) set(m map[K]int) {
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

// dedupe removes repeated addresses from a set's elements, keeping the
// first, and reports whether there were any. seen is a map to use, left
// empty: one serves every set of a read.
func dedupe(as *collector.AddressSet, seen map[netip.Addr]struct{}) bool {
	if len(as.Elements) < 2 {
		return false
	}
	defer clear(seen)
	out := as.Elements[:0]
	for _, e := range as.Elements {
		if _, dup := seen[e.Addr]; dup {
			continue
		}
		seen[e.Addr] = struct{}{}
		out = append(out, e)
	}
	repeated := len(out) < len(as.Elements)
	as.Elements = out
	return repeated
}
