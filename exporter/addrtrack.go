package exporter

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The per-address series can number millions, nearly all fed by one set
// element each. They are tracked by the rules of track.go in a compact
// form for that common case: each series is a slot of 48 bytes, in chunks
// that never move, found by its address in a map of its group's (4-byte
// keys for IPv4). A series fed by several sets (or whose set changed) has
// a full track beside its slot; one that carries what a zeroed or restored
// element counted has that count beside it. The slots are kept in the
// exposition's order, which a read merges the series it adds into: it
// sorts only what is new. An answer copies what it writes of each slot.

// addrGroupKey is what a per-address series shares with its tag's others.
type addrGroupKey struct {
	netns     string
	tag       string
	direction tag.Direction
}

// addrGroup is a group's series: its addresses' slots, and its label
// block around an address, whose family label is before it: the group
// holds the addresses of both families, and its slots do not spend bytes
// on the label.
type addrGroup struct {
	addrGroupKey
	index uint32
	v4    map[[4]byte]uint32
	v6    map[[16]byte]uint32
	// prefix is the label block up to the address's value, by family
	// (prefix4 for IPv4); suffix closes it. Never changed, so answers
	// share them.
	prefix4, prefix6, suffix []byte
	// wait is set, for a read, while its series wait for a collector's first
	// read.
	wait bool
	// dirRank and rank order the groups as the exposition orders their
	// series' labels: by direction, and by netns and tag.
	dirRank, rank int
}

// addrSlot is one per-address series. addr, group and created do not
// change while the slot lives.
type addrSlot struct {
	last    collector.Counter
	created int64
	addr    [16]byte // an IPv4 address in the first 4
	group   uint32   // the group's index, and slotIs4
	state   uint32   // the set's number (setBits) and the flags above it
}

const (
	slotIs4 = 1 << 31 // in addrSlot.group

	setBits             = 24
	slotLive     uint32 = 1 << (setBits + iota) // in use
	slotSeen                                    // in the read being applied
	slotShown                                   // served at least once
	slotWithheld                                // not served: a collector failed or waits
	slotMulti                                   // fed through a full track (addrTracks.multi)
	slotCarried                                 // with a carried count (addrTracks.carried)
)

// slotFamily is the family label of a series whose group field is group:
// IPv4 for slotIs4. An IPv4-mapped IPv6 address, which only a set of IPv6
// addresses holds, counts IPv6 packets: it is IPv6's, as its set is.
func slotFamily(group uint32) family.Address {
	if group&slotIs4 != 0 {
		return family.IPv4
	}
	return family.IPv6
}

func (s *addrSlot) set() uint32       { return s.state & (1<<setBits - 1) }
func (s *addrSlot) has(f uint32) bool { return s.state&f != 0 }

func (s *addrSlot) netip() netip.Addr {
	if s.group&slotIs4 != 0 {
		return netip.AddrFrom4([4]byte(s.addr[:4]))
	}
	return netip.AddrFrom16(s.addr)
}

// chunkBits sizes the chunks of slots: 4,096 of 48 bytes.
const chunkBits = 12

type slotChunk [1 << chunkBits]addrSlot

// slotOf finds a slot in chunks.
func slotOf(chunks []*slotChunk, i uint32) *addrSlot {
	return &chunks[i>>chunkBits][i&(1<<chunkBits-1)]
}

// addrSet is a set (of one collector) that feeds addresses. prev and cur are
// its kernel handle at the read before its last one and at its last one:
// an element that went down while the set kept its handle was zeroed.
type addrSet struct {
	partID
	prev, cur uint64
}

// addrTracks is the per-address series of an exporter.
type addrTracks struct {
	groups   []*addrGroup // by index; nil where a group was dropped
	groupIdx map[addrGroupKey]*addrGroup
	chunks   []*slotChunk
	used     uint32 // slots ever used: the chunks' high-water mark
	live     int
	free     []uint32 // slots to use again
	// freed are the slots freed since order was last brought up to date,
	// which may still be in it: they are used again after that.
	freed []uint32
	// order is the live slots in the exposition's order but for fresh,
	// the slots added since it was sorted.
	order []uint32
	fresh []uint32
	// ranked tells whether the groups' ranks are current.
	ranked bool

	sets    map[partID]uint32 // the numbers of sets, into setList
	setList []addrSet
	multi   map[uint32]*track
	carried map[uint32]collector.Counter
	// changed tells that what a series carries changed in this read.
	changed bool
}

func newAddrTracks() addrTracks {
	return addrTracks{groupIdx: make(map[addrGroupKey]*addrGroup), sets: make(map[partID]uint32),
		multi: make(map[uint32]*track), carried: make(map[uint32]collector.Counter)}
}

// group returns a group's state, making it when it is new.
func (a *addrTracks) group(k addrGroupKey, withNS bool) *addrGroup {
	g := a.groupIdx[k]
	if g != nil {
		return g
	}
	prefix := func(f family.Address) []byte {
		return append(labelBlock{}.add("direction", string(k.direction)).add("family", string(f)).b, `,ip="`...)
	}
	suffix := labelBlock{b: []byte{'"'}, n: 1} // closes the address's value
	if withNS {
		suffix = suffix.add(netnsLabel, k.netns)
	}
	g = &addrGroup{addrGroupKey: k, v4: make(map[[4]byte]uint32), v6: make(map[[16]byte]uint32),
		prefix4: prefix(family.IPv4), prefix6: prefix(family.IPv6), suffix: suffix.add("tag", k.tag).end()}
	g.index = uint32(len(a.groups))
	if i := slices.Index(a.groups, nil); i >= 0 {
		g.index = uint32(i)
		a.groups[i] = g
	} else {
		a.groups = append(a.groups, g)
	}
	a.groupIdx[k] = g
	a.ranked = false
	return g
}

// setIndex numbers a set, and records its handle in this read: the set's
// elements are observed next.
func (a *addrTracks) setIndex(id uint64, src int) uint32 {
	k := partID{id, src}
	i, ok := a.sets[k]
	if !ok {
		i = uint32(len(a.setList))
		a.sets[k] = i
		a.setList = append(a.setList, addrSet{partID: k})
	}
	return i
}

// readSet starts the observation of a set's elements in a read, and tells
// whether the set kept its kernel handle since its last read.
func (a *addrTracks) readSet(i uint32, handle uint64) (sameSet bool) {
	s := &a.setList[i]
	s.prev, s.cur = s.cur, handle
	return handle != 0 && s.prev == handle
}

// slot returns the slot of an address in a group, and false when there is
// none.
func (a *addrTracks) slot(g *addrGroup, addr netip.Addr) (uint32, bool) {
	if addr.Is4() {
		i, ok := g.v4[addr.As4()]
		return i, ok
	}
	i, ok := g.v6[addr.As16()]
	return i, ok
}

// add makes a slot for a new series.
func (a *addrTracks) add(g *addrGroup, addr netip.Addr, created int64, state uint32) (uint32, *addrSlot) {
	var i uint32
	if n := len(a.free); n > 0 {
		i = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		i = a.used
		a.used++
		if int(i>>chunkBits) == len(a.chunks) {
			a.chunks = append(a.chunks, new(slotChunk))
		}
	}
	s := slotOf(a.chunks, i)
	*s = addrSlot{created: created, group: g.index, state: state | slotLive}
	if addr.Is4() {
		s.group |= slotIs4
		a4 := addr.As4()
		copy(s.addr[:], a4[:])
		g.v4[a4] = i
	} else {
		s.addr = addr.As16()
		g.v6[s.addr] = i
	}
	a.live++
	a.fresh = append(a.fresh, i)
	return i, s
}

// remove frees a slot whose series is gone.
func (a *addrTracks) remove(i uint32) {
	s := slotOf(a.chunks, i)
	g := a.groups[s.group&^slotIs4]
	if s.group&slotIs4 != 0 {
		delete(g.v4, [4]byte(s.addr[:4]))
	} else {
		delete(g.v6, s.addr)
	}
	delete(a.multi, i)
	delete(a.carried, i)
	s.state = 0
	a.live--
	a.freed = append(a.freed, i)
}

// observe applies one element's value read now: at once when it is the
// series' one part, through a full track otherwise. madeAtZero is the
// set's (AddressSet.MadeAtZero).
func (a *addrTracks) observe(g *addrGroup, addr netip.Addr, born int64, set uint32, madeAtZero bool, v collector.Counter) {
	i, ok := a.slot(g, addr)
	if !ok {
		state := set | slotSeen
		if born == 0 {
			state |= slotShown
		}
		_, s := a.add(g, addr, born, state)
		s.last = v
		return
	}
	s := slotOf(a.chunks, i)
	p := a.setList[set]
	if !s.has(slotMulti) && s.set() == set && !s.has(slotSeen) {
		s.state = s.state&^slotWithheld | slotSeen
		if c := judge(s.last, v, p.prev, p.cur, madeAtZero); c != (collector.Counter{}) {
			a.carried[i] = add(a.carried[i], c)
			s.state |= slotCarried
			a.changed = true
		}
		s.last = v
		return
	}
	t := a.multi[i]
	if t == nil {
		t = a.full(i, s)
	}
	t.observe(p.id, p.cur, madeAtZero, p.src, v)
}

// full gives a compact series a full track. Its part already seen in this
// read is seen in the full one, unchanged since.
func (a *addrTracks) full(i uint32, s *addrSlot) *track {
	p := a.setList[s.set()]
	seen := s.has(slotSeen)
	t := &track{carried: a.carried[i], created: s.created, shown: s.has(slotShown), observed: seen,
		parts: []part{{id: p.id, src: p.src, handle: p.cur, last: s.last, seen: seen, curHandle: p.cur, cur: s.last}}}
	a.multi[i] = t
	delete(a.carried, i)
	s.state = s.state&^slotCarried | slotMulti
	return t
}

// load puts a series read from the state file in place.
func (a *addrTracks) load(g *addrGroup, addr netip.Addr, t *track) {
	if i, ok := a.slot(g, addr); ok {
		a.remove(i)
	}
	if len(t.parts) != 1 {
		i, _ := a.add(g, addr, t.created, slotShown|slotMulti)
		a.multi[i] = t
		return
	}
	p := t.parts[0]
	set := a.setIndex(p.id, p.src)
	if a.setList[set].cur == 0 {
		a.setList[set].cur = p.handle
	}
	i, s := a.add(g, addr, t.created, set|slotShown)
	s.last = p.last
	if t.carried != (collector.Counter{}) {
		a.carried[i] = t.carried
		s.state |= slotCarried
	}
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// apply ends a read: series whose parts were not seen vanished, unless
// their collector failed or their group waits for a collector's first read
// (withheld).
func (a *addrTracks) apply(failed func(src int) bool) (carriedChanged bool) {
	for c, chunk := range a.chunks {
		for j := range chunk {
			s := &chunk[j]
			if !s.has(slotLive) {
				continue
			}
			i := uint32(c<<chunkBits + j)
			switch {
			case a.groups[s.group&^slotIs4].wait:
				s.state |= slotWithheld
				if s.has(slotMulti) {
					a.multi[i].withheld = true
				}
			case s.has(slotMulti):
				alive, changed := a.multi[i].apply(failed)
				a.changed = a.changed || changed
				if !alive {
					a.remove(i)
				}
			case s.has(slotSeen):
				s.state &^= slotSeen | slotWithheld
			case failed(a.setList[s.set()].src):
				s.state |= slotWithheld
			default:
				a.remove(i) // its one part vanished
			}
		}
	}
	if a.live == 0 {
		// The set numbers are few (sets, not addresses): renumber only
		// when nothing refers to them.
		clear(a.sets)
		a.setList = a.setList[:0]
	}
	carriedChanged, a.changed = a.changed, false
	return carriedChanged
}

// serve returns the value a scrape serves, and false when it is withheld.
// A series that appeared while the exporter ran is served at 0 first.
func (a *addrTracks) serve(i uint32, s *addrSlot) (collector.Counter, bool) {
	if s.has(slotMulti) {
		return a.multi[i].serve()
	}
	if s.has(slotWithheld) {
		return collector.Counter{}, false
	}
	if !s.has(slotShown) {
		s.state |= slotShown
		return collector.Counter{}, true
	}
	v := s.last
	if s.has(slotCarried) {
		v = add(v, a.carried[i])
	}
	return v, true
}

// forget drops the series and groups of namespaces no longer listed.
func (a *addrTracks) forget(listed map[string]bool) {
	dropped := false
	for _, g := range a.groups {
		if g != nil && !listed[g.netns] {
			dropped = true
		}
	}
	if !dropped {
		return
	}
	for c, chunk := range a.chunks {
		for j := range chunk {
			s := &chunk[j]
			if s.has(slotLive) && !listed[a.groups[s.group&^slotIs4].netns] {
				a.remove(uint32(c<<chunkBits + j))
			}
		}
	}
	for i, g := range a.groups {
		if g != nil && !listed[g.netns] {
			delete(a.groupIdx, g.addrGroupKey)
			a.groups[i] = nil
		}
	}
}

// kept calls fn with every series that the state file keeps: those fed
// through a full track, and those carrying a count.
func (a *addrTracks) kept(fn func(g *addrGroup, addr netip.Addr, t *track)) {
	for i, t := range a.multi {
		s := slotOf(a.chunks, i)
		fn(a.groups[s.group&^slotIs4], s.netip(), t)
	}
	for i, c := range a.carried {
		s := slotOf(a.chunks, i)
		p := a.setList[s.set()]
		t := &track{carried: c, created: s.created, withheld: s.has(slotWithheld),
			parts: []part{{id: p.id, src: p.src, handle: p.cur, last: s.last}}}
		fn(a.groups[s.group&^slotIs4], s.netip(), t)
	}
}

// sortOrder brings order up to date: without the slots freed, with the
// fresh ones merged in.
func (a *addrTracks) sortOrder() {
	if len(a.freed) > 0 {
		a.order = slices.DeleteFunc(a.order, func(i uint32) bool { return !slotOf(a.chunks, i).has(slotLive) })
		a.fresh = slices.DeleteFunc(a.fresh, func(i uint32) bool { return !slotOf(a.chunks, i).has(slotLive) })
		a.free = append(a.free, a.freed...)
		a.freed = a.freed[:0]
	}
	if len(a.fresh) == 0 {
		return
	}
	if !a.ranked {
		a.rankGroups()
	}
	keys := make([]orderKey, len(a.fresh))
	for n, i := range a.fresh {
		keys[n] = a.orderKey(i)
	}
	slices.SortFunc(keys, a.compare)
	if len(a.order) == 0 {
		a.order = slices.Grow(a.order[:0], len(keys))
		for _, k := range keys {
			a.order = append(a.order, k.slot)
		}
		a.fresh = a.fresh[:0]
		return
	}
	// Merge from the back, in place.
	n, m := len(a.order), len(keys)
	a.order = slices.Grow(a.order, m)[:n+m]
	for w := n + m - 1; m > 0; w-- {
		if n > 0 && a.compare(a.orderKey(a.order[n-1]), keys[m-1]) > 0 {
			a.order[w] = a.order[n-1]
			n--
		} else {
			a.order[w] = keys[m-1].slot
			m--
		}
	}
	a.fresh = a.fresh[:0]
}

// rankGroups orders the groups as the exposition orders their labels.
func (a *addrTracks) rankGroups() {
	var gs []*addrGroup
	for _, g := range a.groups {
		if g != nil {
			gs = append(gs, g)
		}
	}
	slices.SortFunc(gs, func(x, y *addrGroup) int { return cmp.Compare(x.direction, y.direction) })
	for n, g := range gs {
		g.dirRank = n
		if n > 0 && gs[n-1].direction == g.direction {
			g.dirRank = gs[n-1].dirRank
		}
	}
	slices.SortFunc(gs, func(x, y *addrGroup) int { return cmp.Or(cmp.Compare(x.netns, y.netns), cmp.Compare(x.tag, y.tag)) })
	for n, g := range gs {
		g.rank = n
	}
	a.ranked = true
}

// orderKey is what orders a slot: its labels' values in name order,
// direction, family (ipv4 first), ip, netns and tag. The text of an IPv4 address sorts as its
// octets' texts, each padded to three bytes with a byte below the digits
// (as the '.' that ends it is): v4 holds them.
type orderKey struct {
	slot          uint32
	dirRank, rank int
	is4           bool
	v4            [2]uint64
}

func (a *addrTracks) orderKey(i uint32) orderKey {
	s := slotOf(a.chunks, i)
	g := a.groups[s.group&^slotIs4]
	k := orderKey{slot: i, dirRank: g.dirRank, rank: g.rank}
	if s.group&slotIs4 != 0 {
		k.is4 = true
		k.v4 = [2]uint64{octetText[s.addr[0]]<<24 | octetText[s.addr[1]], octetText[s.addr[2]]<<24 | octetText[s.addr[3]]}
	}
	return k
}

func (a *addrTracks) compare(x, y orderKey) int {
	if c := cmp.Compare(x.dirRank, y.dirRank); c != 0 {
		return c
	}
	if x.is4 != y.is4 {
		if x.is4 {
			return -1 // "ipv4" < "ipv6"
		}
		return 1
	}
	var c int
	if x.is4 {
		c = cmp.Or(cmp.Compare(x.v4[0], y.v4[0]), cmp.Compare(x.v4[1], y.v4[1]))
	} else {
		var bx, by [64]byte
		c = bytes.Compare(slotOf(a.chunks, x.slot).netip().AppendTo(bx[:0]), slotOf(a.chunks, y.slot).netip().AppendTo(by[:0]))
	}
	return cmp.Or(c, cmp.Compare(x.rank, y.rank))
}

// octetText is each octet's decimal text in three bytes, left-aligned,
// padded with 0.
var octetText = func() (t [256]uint64) {
	for o := range t {
		var b [3]byte
		copy(b[:], strconv.Itoa(o))
		t[o] = uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
	}
	return t
}()
