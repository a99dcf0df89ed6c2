package exporter

import (
	"github.com/ipacct/ipacct_exporter/collector"
)

// Counter tracking: what keeps a served series monotonic while the kernel
// counters it sums come, go, are zeroed or are restored.
//
// A served series is the sum of its parts: the kernel counters that feed it
// (rules, named counters, set elements, flows entries). The tracker remembers
// each part's last value under an identity that survives what operators do
// (the collectors' ID: where the counter is and what it matches, not its
// handle or values) and keeps in carried what parts that vanished or were
// zeroed had counted. The served value is carried plus the parts' values:
//
//   - a part that grew: its growth counts.
//   - a new part: all of its value counts (it counted since it was made).
//   - a part that vanished: what it had counted stays, in carried. What it
//     counted after the last read is lost.
//   - a part found below its last value was zeroed (iptables -Z, nft reset,
//     a rule reloaded without counters) or recreated from a save (nft -f of
//     a listing, iptables-restore -c): see judge.
//
// So the served value is the kernel's sum until a counter of the series
// vanishes or is zeroed, and from then on that sum plus what such counters
// had counted. Dropping what is carried when every part of a series was
// reset at once would serve the kernel's sum again, but Prometheus would
// then miss the new traffic whenever it passed the old total by the next
// scrape: carrying on is exact.

// restoreDivisor: a recreated counter found below its last value is taken
// as restored from a save when it holds at least 1/restoreDivisor of that
// value. A save holds about what the counter had; a zeroed counter holds
// one scrape interval's traffic, a small part of its history.
const restoreDivisor = 2

// part is one kernel counter of a series.
type part struct {
	id     uint64 // the collector's identity of the counter (Record.ID)
	src    int    // the collector it came from, as numbered by the exporter
	handle uint64 // the kernel object's handle at the last read, 0 when unknown
	last   collector.Counter

	// This read's observation, while a read is applied.
	seen       bool
	madeAtZero bool // the exporter made the counter at zero: see judge
	curHandle  uint64
	cur        collector.Counter
}

// track is one served series' state between scrapes.
type track struct {
	carried collector.Counter
	parts   []part
	// created is the unix time in milliseconds when the series was known
	// to be zero, for a series that appeared while the exporter ran; 0
	// when unknown (it was there at start, or its namespace was new).
	created int64
	// shown tells whether a scrape has served the series. One that
	// appears while the exporter runs is served at 0 first: Prometheus
	// never counts a series' first sample, and this one's first value is
	// traffic.
	shown bool
	// withheld is set by a read in which a collector that fed the series
	// failed: the series is not served, since its sum would drop.
	withheld bool
	// observed marks the series as seen in the read being applied.
	observed bool
	// index finds the parts of a series of many (one tag over thousands
	// of rules) by identity, in order; nil for a few, which a scan finds.
	index map[partID][]int
}

type partID struct {
	id  uint64
	src int
}

// indexFrom is the number of parts from which a series keeps an index.
const indexFrom = 16

// value is what the series serves: carried plus its parts' last values.
func (t *track) value() collector.Counter {
	v := t.carried
	for _, p := range t.parts {
		v = add(v, p.last)
	}
	return v
}

func add(a, b collector.Counter) collector.Counter {
	return collector.Counter{Packets: a.Packets + b.Packets, Bytes: a.Bytes + b.Bytes}
}

// observe records one part's value in the read being applied. Parts with
// one id in one series (identical rules in one chain) are told apart by
// their order, which is the kernel's: the n-th observation of an id is the
// n-th part with it.
func (t *track) observe(id, handle uint64, madeAtZero bool, src int, v collector.Counter) {
	t.observed = true
	if t.index == nil && len(t.parts) >= indexFrom {
		t.index = make(map[partID][]int, len(t.parts))
		for i, p := range t.parts {
			k := partID{p.id, p.src}
			t.index[k] = append(t.index[k], i)
		}
	}
	if t.index != nil {
		for _, i := range t.index[partID{id, src}] {
			if p := &t.parts[i]; !p.seen {
				p.seen, p.curHandle, p.cur, p.madeAtZero = true, handle, v, madeAtZero
				return
			}
		}
	} else {
		for i := range t.parts {
			p := &t.parts[i]
			if p.id == id && p.src == src && !p.seen {
				p.seen, p.curHandle, p.cur, p.madeAtZero = true, handle, v, madeAtZero
				return
			}
		}
	}
	if t.index != nil {
		k := partID{id, src}
		t.index[k] = append(t.index[k], len(t.parts))
	}
	t.parts = append(t.parts, part{id: id, src: src, seen: true, curHandle: handle, cur: v, handle: newPart, madeAtZero: madeAtZero})
}

// newPart marks, in part.handle, a part that this read found first.
const newPart = ^uint64(0)

// judge returns what a part read again adds to what its series carries,
// from its last and current values and handles:
//
//   - it grew: nothing; its growth counts.
//   - zeroed: its last value, and all of its new value counts. A counter
//     is zeroed when it is still the same kernel object, when it was
//     recreated in the exporter's own table (whose counters it makes at
//     zero), or when it holds less than half its last value.
//   - restored from a save: what it lost, so that the served value holds
//     and only its growth from now on counts.
func judge(last, cur collector.Counter, lastHandle, curHandle uint64, madeAtZero bool) collector.Counter {
	recreated := lastHandle != 0 && curHandle != 0 && lastHandle != curHandle
	switch {
	case madeAtZero && recreated:
		return last
	case cur.Bytes >= last.Bytes && cur.Packets >= last.Packets:
		return collector.Counter{}
	case curHandle != 0 && curHandle == lastHandle, cur.Bytes < last.Bytes/restoreDivisor:
		return last
	}
	return collector.Counter{Packets: sub(last.Packets, cur.Packets), Bytes: sub(last.Bytes, cur.Bytes)}
}

// apply ends a read for the series: failed tells the collectors that failed
// in it. alive is false when the series is gone: no part is left.
// carriedChanged tells whether what the series carries changed, which the
// state file must then keep soon.
func (t *track) apply(failed func(src int) bool) (alive, carriedChanged bool) {
	before := t.carried
	for _, p := range t.parts {
		if p.handle != newPart && failed(p.src) {
			// A collector that fed the series failed: keep the old state,
			// forget this read, serve nothing. The parts found new in this
			// read are found again, whole, in the next one.
			t.withheld = true
			t.reset()
			return true, false
		}
	}
	t.withheld = false
	kept := t.parts[:0]
	for _, p := range t.parts {
		if p.handle == newPart {
			p.handle, p.last = p.curHandle, p.cur
			kept = append(kept, p.clear())
			continue
		}
		if !p.seen {
			t.carried = add(t.carried, p.last)
			continue
		}
		t.carried = add(t.carried, judge(p.last, p.cur, p.handle, p.curHandle, p.madeAtZero))
		p.handle, p.last = p.curHandle, p.cur
		kept = append(kept, p.clear())
	}
	if len(kept) != len(t.parts) {
		t.index = nil // positions moved
	}
	t.parts = kept
	t.observed = false
	return len(t.parts) > 0, t.carried != before
}

// hold withholds the series without applying the read: it waits for a
// collector's first read.
func (t *track) hold() { t.withheld = true }

// reset forgets a read's observations.
func (t *track) reset() {
	kept := t.parts[:0]
	for _, p := range t.parts {
		if p.handle != newPart {
			kept = append(kept, p.clear())
		}
	}
	if len(kept) != len(t.parts) {
		t.index = nil
	}
	t.parts = kept
	t.observed = false
}

func (p part) clear() part {
	p.seen, p.curHandle, p.cur = false, 0, collector.Counter{}
	return p
}
