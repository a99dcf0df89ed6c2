package managed

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// action is what a plan does to a chain or set of the ruleset.
type action int

const (
	keep     action = iota // equal: left alone, counters and all
	add                    // missing: created
	rewrite                // a chain's rules differ: flushed and written again; a set differs: made again, empty
	recreate               // a chain's hook or policy differs: deleted and created
)

// tablePlan is the transaction that makes the managed table hold a
// ruleset, as data: plan computes it from the ruleset and what observe
// read, without the kernel, and commit sends it.
type tablePlan struct {
	table  *nftables.Table
	prio   nftables.ChainPriority // of the base chains
	create bool                   // the table is missing
	chains []chainStep            // every chain of the ruleset, in an order they can be made in
	sets   []setStep              // every per-address set, in file order
	// What the ruleset lacks, by name: deleted, since the table is the
	// exporter's alone.
	staleChains []*nftables.Chain
	staleSets   []*nftables.Set
	objects     []*nftables.NamedObj
	flowtables  []*nftables.Flowtable
	// checkOnly: observe read no rules, so the plan does not know which
	// chains changed. It answers whether the structure is intact, and is
	// never committed.
	checkOnly bool
	entries   map[string]bool // the chains of rs.Chains, which Changes.Unchanged counts
}

// chainStep is a chain of the ruleset and what the plan does to it.
type chainStep struct {
	want   wantChain
	action action
	have   *nftables.Chain // the kernel's chain; nil when added
}

// setStep is a per-address set of the ruleset and what the plan does to it.
type setStep struct {
	want   Set
	action action
	have   *nftables.Set // the kernel's set; nil when added
	// strays are the addresses a kept set holds outside its networks:
	// counted under an entry that no longer holds them.
	strays []nftables.SetElement
}

// plan computes the transaction that makes the table observed (have, nil
// when there is none) hold rs. A table without the marker chain is not
// ours, unless adopt says the caller knows it made it and someone deleted
// the marker. Addresses outside their set's networks are dropped from kept
// sets when have holds the sets' elements (a reload); a repair does not
// read them, and leaves them: they are the counts, not the rules.
func plan(rs *Ruleset, have *observed, adopt bool) (*tablePlan, error) {
	p := &tablePlan{table: rs.tableOf(), prio: nftables.ChainPriority(rs.Priority), entries: map[string]bool{}}
	for _, c := range rs.Chains {
		p.entries[c.Name] = true
	}
	switch {
	case have == nil:
		p.create = true
		have = &observed{depth: withElements}
	case have.chains[MarkerChain] == nil && !adopt:
		return nil, fmt.Errorf("table inet %s %w", rs.Table, ErrNotOurs)
	}
	p.checkOnly = have.depth < withRules
	// Sets first: a set made again takes the chain that adds to it along.
	p.planSets(rs, have)
	p.planChains(rs, have)
	p.planStale(have)
	return p, nil
}

// planSets decides what becomes of each set of rs.
func (p *tablePlan) planSets(rs *Ruleset, have *observed) {
	for _, s := range rs.Sets {
		st := setStep{want: s, have: have.sets[s.Name]}
		switch {
		case st.have == nil:
			st.action = add
		case !sameSet(st.have, s):
			st.action = rewrite
		case have.depth >= withElements:
			st.strays = strays(have.elements[s.Name], s.Networks)
		}
		p.sets = append(p.sets, st)
	}
}

// planChains decides what becomes of each chain of rs, after planSets.
func (p *tablePlan) planChains(rs *Ruleset, have *observed) {
	setAction := map[string]action{}
	for _, st := range p.sets {
		setAction[st.want.Name] = st.action
	}
	for _, wc := range rs.chains() {
		cs := chainStep{want: wc}
		h := have.chains[wc.name]
		switch {
		case h == nil:
			cs.action = add
		case !wc.sameKind(h.chain, p.prio):
			cs.action = recreate
		case !p.checkOnly && !slices.Equal(h.rules, wc.fingerprints()) || setAction[wc.addsTo] == rewrite:
			cs.action = rewrite
		}
		if h != nil {
			cs.have = h.chain
		}
		p.chains = append(p.chains, cs)
	}
}

// planStale lists, by name, what the table holds and the plan's chains and
// sets do not: all of it goes.
func (p *tablePlan) planStale(have *observed) {
	want := map[string]bool{}
	for _, cs := range p.chains {
		want["chain "+cs.want.name] = true
	}
	for _, st := range p.sets {
		want["set "+st.want.Name] = true
	}
	for _, name := range sortedKeys(have.chains) {
		if !want["chain "+name] {
			p.staleChains = append(p.staleChains, have.chains[name].chain)
		}
	}
	for _, name := range sortedKeys(have.sets) {
		// Anonymous sets (the shards' verdict maps) go with their rules.
		if s := have.sets[name]; !want["set "+name] && !s.Anonymous {
			p.staleSets = append(p.staleSets, s)
		}
	}
	p.objects, p.flowtables = have.objects, have.flowtables
}

// strays are the addresses of elems outside networks.
func strays(elems [][]byte, networks []netip.Prefix) []nftables.SetElement {
	var out []nftables.SetElement
	for _, key := range elems {
		a, ok := netip.AddrFromSlice(key)
		if ok && !slices.ContainsFunc(networks, func(p netip.Prefix) bool { return p.Contains(a) }) {
			out = append(out, nftables.SetElement{Key: key})
		}
	}
	return out
}

// sortedKeys are m's keys in order, so that a plan, and the messages it
// sends, do not depend on the order of a map.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// changes says what the plan changes, for the log and the caller.
func (p *tablePlan) changes() Changes {
	ch := Changes{Created: p.create}
	for _, cs := range p.chains {
		switch {
		case cs.action == keep && p.entries[cs.want.name]:
			ch.Unchanged++
		case cs.action == add && !(p.create && cs.want.name == MarkerChain):
			ch.Added = append(ch.Added, cs.want.name)
		case cs.action == rewrite || cs.action == recreate:
			ch.Rewritten = append(ch.Rewritten, cs.want.name)
		}
	}
	for _, st := range p.sets {
		switch st.action {
		case keep:
			ch.SetsKept++
			ch.ElementsRemoved += len(st.strays)
		case add:
			ch.SetsAdded = append(ch.SetsAdded, st.want.Name)
		case rewrite:
			ch.SetsRewritten = append(ch.SetsRewritten, st.want.Name)
		}
	}
	for _, c := range p.staleChains {
		ch.Removed = append(ch.Removed, c.Name)
	}
	for _, s := range p.staleSets {
		ch.SetsRemoved = append(ch.SetsRemoved, s.Name)
	}
	for _, o := range p.objects {
		ch.ObjectsRemoved = append(ch.ObjectsRemoved, "object "+o.Name)
	}
	for _, f := range p.flowtables {
		ch.ObjectsRemoved = append(ch.ObjectsRemoved, "flowtable "+f.Name)
	}
	return ch
}
