package managed

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// ErrNotOurs means a table of the managed name exists that the exporter did
// not create. It is left alone.
var ErrNotOurs = errors.New("exists but was not created by ipacct_exporter (it lacks the chain " + MarkerChain + "): choose another table name in rules.yaml, or delete it")

// Changes says what an Apply did: what it found in the kernel that differed
// from the ruleset, and wrote.
type Changes struct {
	Created bool // the table was created
	// Added names the chains created; Rewritten those whose rules or hook
	// differed and were written again; Removed those the ruleset lacks.
	Added, Rewritten, Removed []string
	// Unchanged counts the entry chains kept, counters and all.
	Unchanged int
	// SetsAdded, SetsRewritten and SetsRemoved name the per-address sets
	// created, made again because they differed, and deleted; SetsKept
	// counts those kept, with their counters.
	SetsAdded, SetsRewritten, SetsRemoved []string
	SetsKept                              int
	// ElementsRemoved counts the addresses deleted from kept sets because
	// their entry no longer holds them.
	ElementsRemoved int
	// ObjectsRemoved names the stateful objects (named counters, quotas, …)
	// and flowtables that someone added to the table.
	ObjectsRemoved []string
}

// Empty reports whether Apply left the kernel as it was.
func (c Changes) Empty() bool {
	return !c.Created && c.ElementsRemoved == 0 &&
		len(c.Added)+len(c.Rewritten)+len(c.Removed)+len(c.SetsAdded)+len(c.SetsRewritten)+len(c.SetsRemoved)+len(c.ObjectsRemoved) == 0
}

// describe lists, for the log, what was missing (and so created), what
// differed (and was written again) and what was removed, each as "chain
// NAME", "set NAME", "object NAME", ….
func (c Changes) describe() (missing, changed, removed string) {
	if c.Created {
		missing = "the table"
	} else {
		missing = names(kinded("chain", c.Added), kinded("set", c.SetsAdded))
	}
	changed = names(kinded("chain", c.Rewritten), kinded("set", c.SetsRewritten))
	removed = names(kinded("chain", c.Removed), kinded("set", c.SetsRemoved), c.ObjectsRemoved)
	return missing, changed, removed
}

// kinded puts the kind before each name: "chain input".
func kinded(kind string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = kind + " " + n
	}
	return out
}

// names joins the lists for a log line, at most maxDescribed names.
func names(lists ...[]string) string {
	all := slices.Concat(lists...)
	if len(all) > maxDescribed {
		all = append(all[:maxDescribed], fmt.Sprintf("and %d more", len(all)-maxDescribed))
	}
	return strings.Join(all, ", ")
}

// maxDescribed bounds the names in a list of a log line.
const maxDescribed = 20

// applyOptions say how Apply treats what it finds.
type applyOptions struct {
	// dropStrays deletes from kept sets the addresses their entry no
	// longer holds: after a reload changed the networks. A repair leaves
	// the elements alone: they are the counts, not the rules.
	dropStrays bool
	// adopt takes a table that lacks the marker chain as ours: the caller
	// knows it is the table it made, and someone deleted the marker.
	adopt bool
	// structure compares the chains and sets by name and kind only, not
	// their rules: the cheap check. Its plan must not be committed.
	structure bool
}

// Apply makes the managed table hold rs, in one netlink transaction: the
// kernel applies all of it or none of it. It compares every chain, rule and
// set of the table with rs: what is equal stays, counters and all; a chain
// whose rules differ gets rs's rules again; a set that differs is made
// again, empty; and what rs lacks is deleted, since the table is the
// exporter's alone. Entry chains are named after their rules, so a changed
// entry is a new chain, and every other chain counts on.
func Apply(conn *nftables.Conn, rs *Ruleset) (Changes, error) {
	ch, err := plan(conn, rs, applyOptions{dropStrays: true})
	if err != nil || ch.Empty() {
		return ch, err
	}
	return ch, commit(conn, rs)
}

// commit sends the transaction that plan queued on conn.
func commit(conn *nftables.Conn, rs *Ruleset) error {
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("applying table inet %s: %w", rs.Table, err)
	}
	return nil
}

// chainAction is what plan does to a chain of the ruleset.
type chainAction int

const (
	keepChain     chainAction = iota
	addChain                  // missing: create it with its rules
	rewriteChain              // rules differ: flush it and add them again
	recreateChain             // a hook or policy differs: delete it and create it
)

// plan reads the managed table and queues on conn the transaction that
// makes it hold rs, without sending it, and says what it would change.
// Order matters within the transaction: every chain that changes is
// flushed first, dropping its references to chains and sets; then sets
// are made; then chains in the order of rs.chains, so that a jump names a
// chain that exists; and what rs lacks is deleted last.
func plan(conn *nftables.Conn, rs *Ruleset, opts applyOptions) (Changes, error) {
	var ch Changes
	table := rs.tableOf()
	have, err := observe(conn, table, !opts.structure)
	if err != nil {
		return ch, err
	}
	if have == nil {
		ch.Created = true
		conn.AddTable(table)
		have = &observed{}
	} else if have.chains[MarkerChain] == nil && !opts.adopt {
		return ch, fmt.Errorf("table inet %s %w", rs.Table, ErrNotOurs)
	}

	// Sets first: a set made again takes the chain that adds to it along.
	setAction := map[string]chainAction{}
	wantSets := map[string]bool{}
	for _, s := range rs.Sets {
		wantSets[s.Name] = true
		switch h := have.sets[s.Name]; {
		case h == nil:
			setAction[s.Name] = addChain
		case !sameSet(h, s):
			setAction[s.Name] = rewriteChain
		}
	}
	prio := nftables.ChainPriority(rs.Priority)
	want := rs.chains()
	actions := make([]chainAction, len(want))
	wantChains := map[string]bool{}
	for i, wc := range want {
		wantChains[wc.name] = true
		h := have.chains[wc.name]
		switch {
		case h == nil:
			actions[i] = addChain
		case !wc.sameKind(h.chain, prio):
			actions[i] = recreateChain
			conn.FlushChain(h.chain)
			conn.DelChain(h.chain)
		case !opts.structure && !slices.Equal(h.rules, wc.fingerprints()) ||
			setAction[wc.addsTo] == rewriteChain:
			actions[i] = rewriteChain
			conn.FlushChain(h.chain)
		}
	}
	var stale []*nftables.Chain
	for name, h := range have.chains {
		if !wantChains[name] {
			conn.FlushChain(h.chain)
			stale = append(stale, h.chain)
			ch.Removed = append(ch.Removed, name)
		}
	}

	for _, s := range rs.Sets {
		switch setAction[s.Name] {
		case rewriteChain:
			conn.DelSet(have.sets[s.Name])
			ch.SetsRewritten = append(ch.SetsRewritten, s.Name)
		case addChain:
			ch.SetsAdded = append(ch.SetsAdded, s.Name)
		default:
			ch.SetsKept++
			if opts.dropStrays {
				n, err := dropStrays(conn, have.sets[s.Name], s.Networks)
				if err != nil {
					return ch, err
				}
				ch.ElementsRemoved += n
			}
			continue
		}
		if err := conn.AddSet(s.nftSet(table), nil); err != nil {
			return ch, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}

	entries := map[string]bool{}
	for _, c := range rs.Chains {
		entries[c.Name] = true
	}
	for i, wc := range want {
		c := have.chains[wc.name]
		switch actions[i] {
		case keepChain:
			if entries[wc.name] {
				ch.Unchanged++
			}
			continue
		case addChain, recreateChain:
			c = &observedChain{chain: conn.AddChain(wc.chain(table, prio))}
			switch {
			case actions[i] == addChain && !(ch.Created && wc.name == MarkerChain):
				ch.Added = append(ch.Added, wc.name)
			case actions[i] == recreateChain:
				ch.Rewritten = append(ch.Rewritten, wc.name)
			}
		case rewriteChain:
			ch.Rewritten = append(ch.Rewritten, wc.name)
		}
		if err := addRules(conn, c.chain, wc.rules); err != nil {
			return ch, err
		}
	}

	// Last, what rs lacks: the chains, all flushed above before any is
	// deleted, as one may jump to another; then the sets they added to.
	for _, c := range stale {
		conn.DelChain(c)
	}
	slices.Sort(ch.Removed)
	for name, s := range have.sets {
		// Anonymous sets (the shards' verdict maps) go with their rules.
		if !wantSets[name] && !s.Anonymous {
			conn.DelSet(s)
			ch.SetsRemoved = append(ch.SetsRemoved, name)
		}
	}
	slices.Sort(ch.SetsRemoved)
	for _, o := range have.objects {
		conn.DeleteObject(o)
		ch.ObjectsRemoved = append(ch.ObjectsRemoved, "object "+o.Name)
	}
	for _, f := range have.flowtables {
		conn.DelFlowtable(f)
		ch.ObjectsRemoved = append(ch.ObjectsRemoved, "flowtable "+f.Name)
	}
	return ch, nil
}

// Cleanup deletes the managed table, and nothing else. A table that is not
// there is no error; one that is not ours is.
func Cleanup(conn *nftables.Conn, name string) (deleted bool, err error) {
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	have, err := observe(conn, table, false)
	switch {
	case err != nil || have == nil:
		return false, err
	case have.chains[MarkerChain] == nil:
		return false, fmt.Errorf("table inet %s %w", name, ErrNotOurs)
	}
	conn.DelTable(table)
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("deleting table inet %s: %w", name, err)
	}
	return true, nil
}

func addRules(conn *nftables.Conn, c *nftables.Chain, rules []Rule) error {
	for _, r := range rules {
		var ud []byte
		if r.Comment != "" {
			ud = userData(r.Comment)
		}
		exprs := r.Exprs
		if m := r.GotoMap; m != nil {
			key := m.Family.SetType()
			vmap := &nftables.Set{Table: c.Table, Anonymous: true, Constant: true, IsMap: true,
				KeyType: key, DataType: nftables.TypeVerdict}
			elems := make([]nftables.SetElement, len(m.Keys))
			for i, k := range m.Keys {
				elems[i] = nftables.SetElement{Key: k, VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: m.Chains[i]}}
			}
			if err := conn.AddSet(vmap, elems); err != nil {
				return fmt.Errorf("chain %s: verdict map: %w", c.Name, err)
			}
			exprs = append(slices.Clip(exprs), &expr.Lookup{SourceRegister: 1, SetName: vmap.Name, SetID: vmap.ID, IsDestRegSet: true})
		}
		conn.AddRule(&nftables.Rule{Table: c.Table, Chain: c, Exprs: exprs, UserData: ud})
	}
	return nil
}

// dropStrays deletes from a kept set the addresses outside its networks:
// they were counted under an entry that no longer holds them.
func dropStrays(conn *nftables.Conn, s *nftables.Set, networks []netip.Prefix) (int, error) {
	elems, err := conn.GetSetElements(s)
	if err != nil {
		return 0, fmt.Errorf("reading set %s: %w", s.Name, err)
	}
	var strays []nftables.SetElement
	for _, e := range elems {
		a, ok := netip.AddrFromSlice(e.Key)
		if ok && !slices.ContainsFunc(networks, func(p netip.Prefix) bool { return p.Contains(a) }) {
			strays = append(strays, nftables.SetElement{Key: e.Key})
		}
	}
	if len(strays) == 0 {
		return 0, nil
	}
	if err := conn.SetDeleteElements(s, strays); err != nil {
		return 0, fmt.Errorf("set %s: %w", s.Name, err)
	}
	return len(strays), nil
}
