package exporter

import (
	"errors"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
)

// aggregated is what a read did, beside the tracked series it changed.
type aggregated struct {
	// sets are the sets read, for their gauges.
	sets []namespaceSets
	// waiting are the collectors whose first read the series they could feed
	// wait for.
	waiting []Collector
	// carriedChanged tells that what a series carries changed: a counter
	// vanished or was zeroed, and the state file should keep it soon.
	carriedChanged bool
}

// aggregate applies one read of every collector to the tracked series: it
// does no I/O and logs nothing, so that tables of reads test it. The rules
// it keeps are those of docs/counters.md: a series waits until every
// collector of its namespace that could feed it has read once, a collector that
// fails withholds the series it fed, and each series' counters are
// tracked by track.go's rules. Called with e.mu held.
func (e *Exporter) aggregate(collectors []Collector, results []result, now time.Time) aggregated {
	e.dirty = true
	e.reads++
	ok := make(map[int]bool, len(collectors))
	listed := make(map[collectorKey]bool, len(collectors))
	listedNS := make(map[string]bool)
	nsCollectors := make(map[string][]collectorKey)
	for i, s := range collectors {
		if errors.Is(results[i].err, ErrCollectorGone) {
			continue
		}
		sk := collectorKey{s.Name, s.NetNS}
		listed[sk], listedNS[s.NetNS] = true, true
		nsCollectors[s.NetNS] = append(nsCollectors[s.NetNS], sk)
		id := e.collectorID(sk)
		if results[i].err == nil {
			ok[id] = true
			e.readOnce[sk] = true
		}
	}
	e.forget(listedNS)

	// Until every collector of a namespace has read once, the series it could
	// feed wait: a sum missing its part would jump when the part comes.
	var agg aggregated
	pending := make(map[string][]Feeds)
	completeNow := make(map[string]bool)
	for ns, sks := range nsCollectors {
		completeNow[ns] = true
		for _, sk := range sks {
			completeNow[ns] = completeNow[ns] && ok[e.srcIDs[sk]]
		}
	}
	for _, s := range collectors {
		sk := collectorKey{s.Name, s.NetNS}
		if listed[sk] && !e.readOnce[sk] {
			pending[s.NetNS] = append(pending[s.NetNS], s.Feeds)
			agg.waiting = append(agg.waiting, s)
		}
	}
	waitTag := func(netns string, t family.Table) bool {
		for _, f := range pending[netns] {
			if f.tag(t) {
				return true
			}
		}
		return false
	}
	waitSets := func(netns string) bool {
		for _, f := range pending[netns] {
			if f.sets() {
				return true
			}
		}
		return false
	}

	for i, s := range collectors {
		sk := collectorKey{s.Name, s.NetNS}
		if results[i].err != nil {
			continue
		}
		src := e.srcIDs[sk]
		born := e.bornAt(s.NetNS)
		r := results[i].reading
		waiting := len(pending[s.NetNS]) > 0
		for j := range r.Records {
			rec := &r.Records[j]
			if waiting && waitTag(s.NetNS, rec.Family) {
				continue
			}
			e.observeRecord(seriesKey{s.NetNS, rec.Tag, rec.Direction, rec.Family}, rec, src, born)
		}
		if len(r.Sets) == 0 || waitSets(s.NetNS) {
			continue
		}
		agg.sets = append(agg.sets, namespaceSets{s.NetNS, r.Sets})
		for _, set := range r.Sets {
			d := e.tagStateOf(tagKey{s.NetNS, set.Tag})
			d.describe(e.reads, set.Description)
			d.shown = e.reads
			if set.Overflow != nil {
				g := setGroup{s.NetNS, set.Tag, set.Family, set.Direction}
				trackOf(e.overflows, g, born).observe(collector.ID(set.Where), 0, set.MadeAtZero, src, *set.Overflow)
			}
			idx := e.addrs.setIndex(collector.ID(set.Where), src)
			e.addrs.readSet(idx, set.Handle)
			g := e.addrs.group(addrGroupKey{s.NetNS, set.Tag, set.Direction}, e.withNS)
			for _, el := range set.Elements {
				e.addrs.observe(g, el.Addr, born, idx, set.MadeAtZero, collector.Counter{Packets: el.Packets, Bytes: el.Bytes})
			}
		}
	}

	failed := func(src int) bool { return !ok[src] }
	changed := e.applyTags(failed, func(k seriesKey) bool { return waitTag(k.netns, k.tableFamily) })
	for _, g := range e.addrs.groups {
		if g != nil {
			g.wait = waitSets(g.netns)
		}
	}
	changed = e.addrs.apply(failed) || changed
	overflowsChanged, _ := applyAll(e.overflows, failed, func(k setGroup) bool { return waitSets(k.netns) })
	agg.carriedChanged = overflowsChanged || changed
	for ns := range completeNow {
		if completeNow[ns] {
			e.complete[ns] = now
		}
	}
	return agg
}

// bornAt returns the created time, in unix milliseconds, of a series that
// appears now in the namespace: the last read in which all of its collectors
// succeeded, when the series was not there. 0 before the namespace's first
// complete read: what is there then is history, not new traffic.
func (e *Exporter) bornAt(netns string) int64 {
	if t, ok := e.complete[netns]; ok {
		return t.UnixMilli()
	}
	return 0
}

// trackOf returns the series' track, making it when the series is new.
func trackOf[K comparable](m map[K]*track, k K, born int64) *track {
	t := m[k]
	if t == nil {
		t = &track{created: born, shown: born == 0}
		m[k] = t
	}
	return t
}

// tracked is a series' state that a read is applied to: *track, and the
// tag series' *tagTrack, which embeds it.
type tracked interface {
	apply(failed func(src int) bool) (alive, carriedChanged bool)
	hold()
}

// applyAll ends a read for every series of m, dropping those that are
// gone. It tells whether what any of them carries changed, and whether any
// was dropped. Series that wait for a collector's first read (loaded from the
// state file) stay as they are, withheld.
func applyAll[K comparable, T tracked](m map[K]T, failed func(src int) bool, wait func(K) bool) (carriedChanged, dropped bool) {
	for k, t := range m {
		if wait(k) {
			t.hold()
			continue
		}
		alive, changed := t.apply(failed)
		carriedChanged = carriedChanged || changed
		if !alive {
			delete(m, k)
			dropped = true
		}
	}
	return carriedChanged, dropped
}

func (k setGroup) namespace() string  { return k.netns }
func (k seriesKey) namespace() string { return k.netns }

// collectorID numbers a collector for the parts it feeds.
func (e *Exporter) collectorID(sk collectorKey) int {
	id, ok := e.srcIDs[sk]
	if !ok {
		id = e.nextSrc
		e.nextSrc++
		e.srcIDs[sk] = id
	}
	return id
}

// forget drops what is remembered of namespaces that this scrape did not
// list, such as deleted namespaces, so that churn does not grow memory.
func (e *Exporter) forget(listedNS map[string]bool) {
	// A collector left out of one scrape of a namespace still listed (it
	// vanished mid-read) keeps its number: its series are withheld, not
	// orphaned.
	for k := range e.srcIDs {
		if !listedNS[k.netns] {
			delete(e.srcIDs, k)
			delete(e.readOnce, k)
		}
	}
	for ns := range e.complete {
		if !listedNS[ns] {
			delete(e.complete, ns)
		}
	}
	if dropNS(e.tags, listedNS, seriesKey.namespace) {
		e.tagOrder = nil
	}
	e.addrs.forget(listedNS)
	dropNS(e.overflows, listedNS, setGroup.namespace)
}

// dropNS drops the series of namespaces not listed, and tells whether it
// dropped any.
func dropNS[K comparable, T any](m map[K]T, listed map[string]bool, netns func(K) string) (dropped bool) {
	for k := range m {
		if !listed[netns(k)] {
			delete(m, k)
			dropped = true
		}
	}
	return dropped
}
