package exporter

import (
	"net/netip"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The per-address series can number millions, nearly all fed by one set
// element each. They are tracked by the rules of track.go, in a compact
// form for that common case: the element's state inline, in a map value
// with no pointer to follow. An address fed by several sets (or whose set
// changed) moves to a full track.

// addrGroup is what a per-address series shares with its tag's others.
type addrGroup struct {
	netns     string
	tag       string
	direction tag.Direction
}

// addrKey is one per-address series: its group, made canonical so that a
// pointer names it, and the address.
type addrKey struct {
	group *addrGroup
	addr  netip.Addr
}

// addrTrack is one per-address series' state.
type addrTrack struct {
	carried backends.Counter
	last    backends.Counter
	created int64
	handle  uint64
	set     uint32 // the element's set and source, numbered by setIndex
	flags   uint8
	// multi holds the state when several parts feed the series.
	multi *track
}

const (
	addrShown uint8 = 1 << iota
	addrWithheld
	addrSeen
)

// addrTracks is the per-address series of an exporter.
type addrTracks struct {
	m      map[addrKey]addrTrack
	groups map[addrGroup]*addrGroup
	// sets numbers the (set, source) pairs that feed addresses.
	sets    map[partID]uint32
	setList []partID
}

func newAddrTracks() addrTracks {
	return addrTracks{m: make(map[addrKey]addrTrack), groups: make(map[addrGroup]*addrGroup), sets: make(map[partID]uint32)}
}

// group returns the canonical group, for the keys of its series.
func (a *addrTracks) group(netns, tagName string, dir tag.Direction) *addrGroup {
	p := a.groups[addrGroup{netns, tagName, dir}]
	if p == nil {
		p = &addrGroup{netns, tagName, dir}
		a.groups[*p] = p
	}
	return p
}

func (a *addrTracks) setIndex(id uint64, src int) uint32 {
	k := partID{id, src}
	i, ok := a.sets[k]
	if !ok {
		i = uint32(len(a.setList))
		a.sets[k] = i
		a.setList = append(a.setList, k)
	}
	return i
}

// observe applies one element's value read now, at once when it is the
// series' one part, or through a full track otherwise.
func (a *addrTracks) observe(k addrKey, born int64, set uint32, handle uint64, v backends.Counter) {
	t, ok := a.m[k]
	switch {
	case !ok:
		t = addrTrack{last: v, created: born, handle: handle, set: set, flags: addrSeen}
		if born == 0 {
			t.flags |= addrShown
		}
	case t.multi == nil && t.set == set && t.flags&addrSeen == 0:
		t.flags = t.flags&^addrWithheld | addrSeen
		switch {
		case v.Bytes >= t.last.Bytes && v.Packets >= t.last.Packets:
		case handle != 0 && handle == t.handle, v.Bytes < t.last.Bytes/restoreDivisor:
			// Zeroed, and the one part: the series starts again.
			t.carried = backends.Counter{}
		default:
			// Restored from a save: hold the served value.
			t.carried = add(t.carried, backends.Counter{Packets: sub(t.last.Packets, v.Packets), Bytes: sub(t.last.Bytes, v.Bytes)})
		}
		t.last, t.handle = v, handle
	default:
		if t.multi == nil {
			t.multi = a.full(t)
		}
		p := a.setList[set]
		t.multi.observe(p.id, handle, p.src, v)
	}
	a.m[k] = t
}

// full turns a compact track into a full one. A part already seen in this
// read is seen in the full one, unchanged since.
func (a *addrTracks) full(t addrTrack) *track {
	p := a.setList[t.set]
	seen := t.flags&addrSeen != 0
	return &track{carried: t.carried, created: t.created, shown: t.flags&addrShown != 0, observed: seen,
		parts: []part{{id: p.id, src: p.src, handle: t.handle, last: t.last, seen: seen, curHandle: t.handle, cur: t.last}}}
}

// load puts a series read from the state file in place.
func (a *addrTracks) load(k addrKey, t *track) {
	if len(t.parts) != 1 {
		a.m[k] = addrTrack{multi: t}
		return
	}
	p := t.parts[0]
	a.m[k] = addrTrack{carried: t.carried, last: p.last, created: t.created, handle: p.handle,
		set: a.setIndex(p.id, p.src), flags: addrShown}
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// apply ends a read: series whose parts were not seen vanished, unless
// their source failed or waits for its first read (withheld).
func (a *addrTracks) apply(failed func(src int) bool, wait func(addrKey) bool) {
	for k, t := range a.m {
		switch {
		case wait(k):
			t.flags |= addrWithheld
			if t.multi != nil {
				t.multi.withheld = true
			}
		case t.multi != nil:
			if !t.multi.apply(failed) {
				delete(a.m, k)
				continue
			}
		case t.flags&addrSeen != 0:
			t.flags &^= addrSeen | addrWithheld
		case failed(a.setList[t.set].src):
			t.flags |= addrWithheld
		default:
			delete(a.m, k) // its one part vanished
			continue
		}
		a.m[k] = t
	}
}

// serve returns the value a scrape serves, and false when it is withheld.
func (a *addrTracks) serve(k addrKey, t addrTrack) (backends.Counter, int64, bool) {
	if t.multi != nil {
		v, ok := t.multi.serve()
		return v, t.multi.created, ok
	}
	if t.flags&addrWithheld != 0 {
		return backends.Counter{}, 0, false
	}
	if t.flags&addrShown == 0 {
		t.flags |= addrShown
		a.m[k] = t
		return backends.Counter{}, t.created, true
	}
	return add(t.carried, t.last), t.created, true
}

// forget drops the series and groups of namespaces no longer listed.
func (a *addrTracks) forget(listed map[string]bool) {
	for k := range a.m {
		if !listed[k.group.netns] {
			delete(a.m, k)
		}
	}
	for g := range a.groups {
		if !listed[g.netns] {
			delete(a.groups, g)
		}
	}
	// The set numbers are few (sets, not addresses): renumber only when
	// nothing refers to them.
	if len(a.m) == 0 {
		clear(a.sets)
		a.setList = a.setList[:0]
	}
}

// asTrack returns the series' state as a full track, for the state file.
func (a *addrTracks) asTrack(t addrTrack) *track {
	if t.multi != nil {
		return t.multi
	}
	f := a.full(t)
	f.withheld = t.flags&addrWithheld != 0
	return f
}
