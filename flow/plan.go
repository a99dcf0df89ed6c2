package flow

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// tableFamily labels the tag series counted from flows. It is the family
// of the managed table, so that a tag moved from the kernel to flows keeps
// its series.
const tableFamily = family.Inet

// plan is what a rules.yaml asks of flows: the address entries by their
// networks, the tag entries, and the exporters whose flows count.
type plan struct {
	v4, v6 lpm
	tags   []*tagMatcher
	// filters are the exporters of flows.exporters; nil: any exporter
	// counts, unfiltered.
	filters map[netip.Addr]*filter
	// sets and records are in file order, for Read.
	sets    []*addrSet
	records []*tagCounter
}

// addrEntry is an address entry in one family: the sets it counts into.
type addrEntry struct {
	in, out *addrSet // nil: the entry does not count that direction
}

// lpm finds the longest of a family's prefixes that holds an address.
// Address entries are few, and their prefixes have few distinct lengths:
// one map lookup a length, longest first.
type lpm struct {
	lengths []int // descending
	nets    map[netip.Prefix]*addrEntry
}

func (l *lpm) add(p netip.Prefix, e *addrEntry) {
	if l.nets == nil {
		l.nets = make(map[netip.Prefix]*addrEntry)
	}
	l.nets[p] = e
	if !slices.Contains(l.lengths, p.Bits()) {
		l.lengths = append(l.lengths, p.Bits())
		slices.SortFunc(l.lengths, func(a, b int) int { return b - a })
	}
}

func (l *lpm) lookup(a netip.Addr) *addrEntry {
	for _, bits := range l.lengths {
		p, _ := a.Prefix(bits)
		if e, ok := l.nets[p]; ok {
			return e
		}
	}
	return nil
}

func (p *plan) lookup(a netip.Addr) *addrEntry {
	switch {
	case a.Is4():
		return p.v4.lookup(a)
	case a.Is6():
		return p.v6.lookup(a)
	}
	return nil
}

// filter is an exporter's interface filters; an empty map passes any.
type filter struct {
	in, out map[uint32]bool
}

func (f *filter) passIn(fl *Flow) bool  { return f == nil || len(f.in) == 0 || f.in[fl.In] }
func (f *filter) passOut(fl *Flow) bool { return f == nil || len(f.out) == 0 || f.out[fl.Out] }

// addrSet counts per address, as a kernel set of one entry, family and
// direction does.
type addrSet struct {
	tag, description string
	family           family.Address
	direction        tag.Direction
	networks         []netip.Prefix
	capacity         int
	timeout          time.Duration
	elems            map[netip.Addr]*element
	overflow         collector.Counter
	lastSweep        time.Time
}

type element struct {
	packets, bytes uint64
	last           time.Time
}

// add counts a flow for an address. A full set takes no new address, as
// a full kernel set does; its traffic goes to the overflow counter.
func (s *addrSet) add(a netip.Addr, packets, bytes uint64, now time.Time) {
	e := s.elems[a]
	if e == nil {
		if len(s.elems) >= s.capacity && s.timeout > 0 && now.Sub(s.lastSweep) >= time.Second {
			s.sweep(now)
		}
		if len(s.elems) >= s.capacity {
			s.overflow.Packets = satAdd(s.overflow.Packets, packets)
			s.overflow.Bytes = satAdd(s.overflow.Bytes, bytes)
			return
		}
		e = &element{}
		s.elems[a] = e
	}
	e.packets = satAdd(e.packets, packets)
	e.bytes = satAdd(e.bytes, bytes)
	e.last = now
}

// sweep forgets the addresses idle longer than the timeout.
func (s *addrSet) sweep(now time.Time) {
	s.lastSweep = now
	if s.timeout <= 0 {
		return
	}
	for a, e := range s.elems {
		if now.Sub(e.last) > s.timeout {
			delete(s.elems, a)
		}
	}
}

// tagCounter is a tag entry's count in one direction.
type tagCounter struct {
	tag, description string
	direction        tag.Direction
	packets, bytes   uint64
}

// tagMatcher is a tag entry counted from flows. As the kernel's rules do,
// each entry counts on its own: a flow may count for several tags.
type tagMatcher struct {
	v4, v6                bool
	local, remote, except []netip.Prefix
	protos                []uint8 // empty: any
	ports                 []config.PortRange
	in, out               *tagCounter
}

func anyContains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// match reports whether the flow goes to (in) or comes from (out) the
// entry's local side, with the other fields matching.
func (m *tagMatcher) match(f *Flow, in bool) bool {
	local, remote, port := f.Src, f.Dst, f.SrcPort
	if in {
		local, remote, port = f.Dst, f.Src, f.DstPort
	}
	if local.Is4() && !m.v4 || local.Is6() && !m.v6 {
		return false
	}
	if !anyContains(m.local, local) {
		return false
	}
	if len(m.remote) > 0 && !anyContains(m.remote, remote) || anyContains(m.except, remote) {
		return false
	}
	if len(m.protos) > 0 && !slices.Contains(m.protos, f.Proto) {
		return false
	}
	if len(m.ports) > 0 {
		ok := false
		for _, r := range m.ports {
			if port >= r.Low && port <= r.High {
				ok = true
				break
			}
		}
		return ok
	}
	return true
}

var protoNumbers = map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}

type setKey struct {
	tag       string
	family    family.Address
	direction tag.Direction
}

type tagKey struct {
	tag       string
	direction tag.Direction
}

// newPlan compiles the flows entries of a file. Counters of the entries
// that old already counted carry over: a reload keeps every count of a tag
// that stays, dropping only the addresses its networks no longer hold.
func newPlan(f *config.File, old *plan, now time.Time) *plan {
	p := &plan{}
	oldSets := make(map[setKey]*addrSet)
	oldTags := make(map[tagKey]*tagCounter)
	if old != nil {
		for _, s := range old.sets {
			oldSets[setKey{s.tag, s.family, s.direction}] = s
		}
		for _, t := range old.records {
			oldTags[tagKey{t.tag, t.direction}] = t
		}
	}
	if f == nil {
		return p
	}
	for _, e := range f.Addresses {
		if e.Source != config.SourceFlows {
			continue
		}
		for _, fam := range e.Families() {
			entry := &addrEntry{}
			nets := e.NetworksOf(fam)
			for _, d := range e.Directions() {
				s := oldSets[setKey{e.Tag, family.Address(fam), d}]
				if s == nil {
					s = &addrSet{tag: e.Tag, family: family.Address(fam), direction: d, elems: make(map[netip.Addr]*element)}
				}
				s.description, s.networks, s.capacity, s.timeout = e.Description, nets, int(e.SetSize(fam)), e.Timeout
				for a := range s.elems {
					if !anyContains(nets, a) {
						delete(s.elems, a)
					}
				}
				p.sets = append(p.sets, s)
				if d == tag.In {
					entry.in = s
				} else {
					entry.out = s
				}
			}
			l := &p.v4
			if fam == "ipv6" {
				l = &p.v6
			}
			for _, n := range nets {
				l.add(n, entry)
			}
		}
	}
	for _, e := range f.Accounting {
		if e.Source != config.SourceFlows {
			continue
		}
		m := &tagMatcher{
			v4: e.Family != "ipv6", v6: e.Family != "ipv4",
			local: e.Local, remote: e.Remote, except: e.RemoteExcept, ports: e.Ports,
		}
		for _, pr := range e.Protocol {
			m.protos = append(m.protos, protoNumbers[pr])
		}
		for _, d := range e.Directions() {
			t := oldTags[tagKey{e.Tag, d}]
			if t == nil {
				t = &tagCounter{tag: e.Tag, direction: d}
			}
			t.description = e.Description
			p.records = append(p.records, t)
			if d == tag.In {
				m.in = t
			} else {
				m.out = t
			}
		}
		p.tags = append(p.tags, m)
	}
	if len(f.Flows.Exporters) > 0 {
		p.filters = make(map[netip.Addr]*filter)
		for _, x := range f.Flows.Exporters {
			fl := &filter{}
			for _, i := range x.InputInterfaces {
				if fl.in == nil {
					fl.in = make(map[uint32]bool)
				}
				fl.in[i] = true
			}
			for _, i := range x.OutputInterfaces {
				if fl.out == nil {
					fl.out = make(map[uint32]bool)
				}
				fl.out[i] = true
			}
			p.filters[x.Address] = fl
		}
	}
	return p
}

// outcome is what counting a flow did, for the telemetry.
type outcome int

const (
	counted   outcome = iota
	unwatched         // no entry holds either address
	filtered          // an entry holds one, but the exporter's filters reject the flow
)

// count attributes a flow: out to the entry that holds its source, in to
// the one that holds its destination, and to each tag entry it matches.
func (p *plan) count(f *Flow, flt *filter, now time.Time) outcome {
	matched, done := false, false
	in, out := flt.passIn(f), flt.passOut(f)
	if e := p.lookup(f.Src); e != nil && e.out != nil {
		matched = true
		if out {
			e.out.add(f.Src, f.Packets, f.Bytes, now)
			done = true
		}
	}
	if e := p.lookup(f.Dst); e != nil && e.in != nil {
		matched = true
		if in {
			e.in.add(f.Dst, f.Packets, f.Bytes, now)
			done = true
		}
	}
	for _, m := range p.tags {
		for _, c := range []struct {
			t    *tagCounter
			in   bool
			pass bool
		}{{m.in, true, in}, {m.out, false, out}} {
			if c.t == nil || !m.match(f, c.in) {
				continue
			}
			matched = true
			if c.pass {
				c.t.packets = satAdd(c.t.packets, f.Packets)
				c.t.bytes = satAdd(c.t.bytes, f.Bytes)
				done = true
			}
		}
	}
	switch {
	case done:
		return counted
	case matched:
		return filtered
	}
	return unwatched
}
